//! The training loop shared by both modes: shuffled mini-batches, one optimizer step per batch,
//! validation after each epoch, and a checkpoint (weights, optimizer state, history) after each
//! epoch, so `--resume` continues exactly where a stopped run left off. The batch order and the
//! augmentation of epoch `e` depend only on the seed and `e`, which makes a resumed run equal to an
//! uninterrupted one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::report::EpochMetrics;

const CHECKPOINT: &str = "checkpoint";
const MODEL_FILE: &str = "model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";

/// A model and the data it learns from.
pub trait TrainTask {
    /// The network being trained.
    type Model: Module;

    /// Number of training examples.
    fn train_len(&self) -> usize;

    /// Loss (a one-element tensor on the autodiff device) and number of correct predictions for the
    /// training examples at `batch`; `rng` drives augmentation.
    fn train_batch(&self, model: &Self::Model, batch: &[usize], rng: &mut ChaCha8Rng) -> (Tensor<1>, usize);

    /// Validation figures of `model` (already in validation mode) after `epoch` (1-based).
    fn validate(&self, model: &Self::Model, epoch: usize) -> Validation;
}

/// Validation figures of one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// Loss, where the task has one.
    pub loss: Option<f64>,
    /// Accuracy.
    pub accuracy: f64,
    /// TAR at FAR 1e-3, for verification tasks.
    pub tar_at_far_1e3: Option<f64>,
}

/// Hears about progress (the command line draws progress bars).
pub trait TrainObserver {
    /// An epoch begins.
    fn epoch_started(&self, epoch: usize, epochs: usize, batches: usize);
    /// A batch is done; running means of the epoch so far.
    fn batch_done(&self, mean_loss: f64, accuracy: f64);
    /// An epoch is done, validation included.
    fn epoch_done(&self, metrics: &EpochMetrics);
}

/// An observer that ignores everything (tests, benchmarks).
pub struct Quiet;

impl TrainObserver for Quiet {
    fn epoch_started(&self, _: usize, _: usize, _: usize) {}
    fn batch_done(&self, _: f64, _: f64) {}
    fn epoch_done(&self, _: &EpochMetrics) {}
}

/// Where and how a run happens: its folder, device, progress listener and stop flag.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    /// Folder of the run (checkpoint, outputs).
    pub dir: &'a Path,
    /// Device to train on (its autodiff form is used for training).
    pub device: &'a burn::tensor::Device,
    /// Hears about progress.
    pub observer: &'a dyn TrainObserver,
    /// Checked before every batch; set by Ctrl-C.
    pub stop: &'a AtomicBool,
}

/// Loop settings.
#[derive(Debug, Clone)]
pub struct FitConfig {
    /// Total epochs (a resumed run counts the ones already done).
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f64,
    /// Seed of batch order and augmentation.
    pub seed: u64,
    /// Folder of the run; the checkpoint lives in `checkpoint/` inside.
    pub run_dir: PathBuf,
    /// Continue from the checkpoint in `run_dir` if there is one.
    pub resume: bool,
    /// Identifies data and settings; a checkpoint made with another one is refused.
    pub fingerprint: String,
}

/// How `fit` ended.
pub enum FitOutcome<M> {
    /// Every epoch ran.
    Finished {
        /// The trained model.
        model: M,
        /// One entry per epoch.
        history: Vec<EpochMetrics>,
    },
    /// Stopped by the `stop` flag; the checkpoint of the last finished epoch is kept.
    Interrupted {
        /// Epochs finished (and checkpointed).
        completed: usize,
        /// Their metrics.
        history: Vec<EpochMetrics>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    fingerprint: String,
    epochs_done: usize,
    history: Vec<EpochMetrics>,
}

/// Trains `model` on `task`, checking `stop` before every batch.
///
/// # Errors
/// Checkpoint I/O, or a checkpoint that belongs to other data or settings.
pub fn fit<T: TrainTask>(
    task: &T,
    mut model: T::Model,
    mut optimizer: ModuleOptimizer,
    config: &FitConfig,
    observer: &dyn TrainObserver,
    stop: &AtomicBool,
) -> Result<FitOutcome<T::Model>, TrainError> {
    let checkpoint = config.run_dir.join(CHECKPOINT);
    let mut history = Vec::new();
    if config.resume {
        let state;
        (state, model, optimizer) = load_checkpoint(&checkpoint, &config.fingerprint, model, optimizer)?;
        if let Some(state) = state {
            tracing::info!(epochs_done = state.epochs_done, "resuming from {}", checkpoint.display());
            history = state.history;
        }
    }
    let batch_size = config.batch_size.max(1);
    for epoch in history.len()..config.epochs {
        let started = Instant::now();
        let mut rng = epoch_rng(config.seed, epoch);
        let mut order: Vec<usize> = (0..task.train_len()).collect();
        order.shuffle(&mut rng);
        observer.epoch_started(epoch + 1, config.epochs, order.len().div_ceil(batch_size));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for batch in order.chunks(batch_size) {
            if stop.load(Ordering::SeqCst) {
                return Ok(FitOutcome::Interrupted { completed: epoch, history });
            }
            let (loss, batch_correct) = task.train_batch(&model, batch, &mut rng);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            let gradients = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, gradients);
            loss_sum += value * batch.len() as f64;
            correct += batch_correct;
            seen += batch.len();
            observer.batch_done(loss_sum / seen as f64, correct as f64 / seen as f64);
        }
        let validation = task.validate(&model.valid(), epoch + 1);
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            validation_loss: validation.loss,
            validation_accuracy: validation.accuracy,
            validation_tar_at_far_1e3: validation.tar_at_far_1e3,
            seconds: started.elapsed().as_secs_f64(),
        };
        observer.epoch_done(&metrics);
        history.push(metrics);
        let state = CheckpointState { fingerprint: config.fingerprint.clone(), epochs_done: epoch + 1, history };
        save_checkpoint(&checkpoint, &model, &optimizer, &state)?;
        history = state.history;
    }
    Ok(FitOutcome::Finished { model, history })
}

/// The generator of epoch `epoch`: a function of the seed and the epoch only.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Writes the checkpoint into a fresh folder, then swaps it in: a crash leaves the old one or the new one.
fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<(), TrainError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(TrainError::io(parent))?;
    let staging = tempfile::Builder::new().prefix(".checkpoint-").tempdir_in(parent).map_err(TrainError::io(parent))?;
    let record = |e: burn::store::RecordError| TrainError::Record(format!("writing checkpoint: {e}"));
    model.clone().into_record().save(staging.path().join(MODEL_FILE)).map_err(record)?;
    optimizer.save(staging.path().join(OPTIMIZER_FILE)).map_err(record)?;
    crate::report::write_json(&staging.path().join(STATE_FILE), state)?;
    let previous = parent.join(".checkpoint-previous");
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(TrainError::io(&previous))?;
    }
    if dir.exists() {
        fs::rename(dir, &previous).map_err(TrainError::io(dir))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, dir).map_err(TrainError::io(dir))?;
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(TrainError::io(&previous))?;
    }
    Ok(())
}

type Restored<M> = (Option<CheckpointState>, M, ModuleOptimizer);

fn load_checkpoint<M: Module>(
    dir: &Path,
    fingerprint: &str,
    model: M,
    optimizer: ModuleOptimizer,
) -> Result<Restored<M>, TrainError> {
    let previous = dir.parent().unwrap_or(Path::new(".")).join(".checkpoint-previous");
    let dir = if dir.join(STATE_FILE).is_file() {
        dir.to_path_buf()
    } else if previous.join(STATE_FILE).is_file() {
        previous
    } else {
        return Ok((None, model, optimizer));
    };
    let text = fs::read(dir.join(STATE_FILE)).map_err(TrainError::io(dir.join(STATE_FILE)))?;
    let state: CheckpointState = serde_json::from_slice(&text)
        .map_err(|e| TrainError::Record(format!("{}: {e}", dir.join(STATE_FILE).display())))?;
    if state.fingerprint != fingerprint {
        return Err(TrainError::Record(format!(
            "{} was made with other data or settings; start a new run (another --out) or restore them",
            dir.display()
        )));
    }
    let bad = |what: &str, e: burn::store::RecordError| TrainError::Record(format!("{} {what}: {e}", dir.display()));
    let record = ModuleRecord::load(dir.join(MODEL_FILE)).map_err(|e| bad("model", e))?;
    let model = model.try_load_record(record).map_err(|e| bad("model", e))?;
    let optimizer = optimizer.load(dir.join(OPTIMIZER_FILE)).map_err(|e| bad("optimizer", e))?;
    Ok((Some(state), model, optimizer))
}
