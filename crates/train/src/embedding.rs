//! `--mode embedding`: a projection head on top of the frozen pretrained embedder, trained with an
//! additive angular margin loss (ArcFace, or CosFace) on the training identities, evaluated on
//! held-out identities with and without the head, and exported as a model pack.
//!
//! The head starts as the identity and the class centres as the people's mean embeddings, so epoch 0
//! is exactly the pretrained model and training only has to learn the correction. The exported head
//! is the epoch with the best TAR at FAR 1e-3 on the validation people, epoch 0 included: a head that
//! does not beat the pretrained embedder there is not shipped.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::{Module, Param};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::AdamConfig;
use burn::prelude::*;
use facegate_core::{CalibrationPoint, HeadSpec, PackSpec, ProjectionHead, cosine};
use facegate_eval::calibration::ScoreHistogram;
use facegate_eval::metrics::{VERIFICATION_FOLDS, equal_error_rate, roc_curve, tar_at_far, ten_fold_accuracy};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::FaceDataset;
use crate::error::TrainError;
use crate::fit::{FitConfig, FitOutcome, RunContext, TrainTask, Validation, fit};
use crate::report::{EpochMetrics, plot_curves, write_json};
use crate::split::{SplitFractions, split_by_identity};

/// Folder of the exported pack inside a run.
pub const PACK_DIR: &str = "pack";

/// The margin loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginLoss {
    /// Additive angular margin: `cos(θ + m)` for the true class.
    ArcFace,
    /// Additive cosine margin: `cos θ − m` for the true class.
    CosFace,
}

/// Head training settings.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingOptions {
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// ArcFace or CosFace.
    pub loss: MarginLoss,
    /// Margin `m` (radians for ArcFace).
    pub margin: f32,
    /// Logit scale `s`.
    pub scale: f32,
    /// Seed of the identity split, batch order and pair sampling.
    pub seed: u64,
    /// Held-out shares of the people.
    #[serde(skip)]
    pub fractions: SplitFractions,
    /// Continue from the run's checkpoint.
    pub resume: bool,
    /// Name of the exported pack.
    pub pack_name: String,
}

impl Default for EmbeddingOptions {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 128,
            learning_rate: 1e-4,
            loss: MarginLoss::ArcFace,
            margin: 0.3,
            scale: 32.0,
            seed: 42,
            fractions: SplitFractions::default(),
            resume: false,
            pack_name: "adapted".into(),
        }
    }
}

/// The trainable part: the projection and the training identities' class centres.
#[derive(Module, Debug)]
pub struct HeadModel {
    /// `[input, output]`: `y = x · W`.
    projection: Param<Tensor<2>>,
    /// `[classes, output]`.
    centres: Param<Tensor<2>>,
}

impl HeadModel {
    fn new(dim: usize, centres: Vec<f32>, classes: usize, device: &Device) -> Self {
        let mut identity = vec![0f32; dim * dim];
        (0..dim).for_each(|i| identity[i * dim + i] = 1.0);
        Self {
            projection: Param::from_tensor(Tensor::from_data(TensorData::new(identity, [dim, dim]), device)),
            centres: Param::from_tensor(Tensor::from_data(TensorData::new(centres, [classes, dim]), device)),
        }
    }

    /// Cosines `[batch, classes]` between projected inputs and the centres.
    fn cosines(&self, input: Tensor<2>) -> Tensor<2> {
        let projected = l2_normalize(input.matmul(self.projection.val()));
        projected.matmul(l2_normalize(self.centres.val()).transpose())
    }

    /// The projection as the pipeline's head (`[output, input]` rows).
    fn head(&self) -> Result<ProjectionHead, TrainError> {
        let [input, output] = self.projection.val().dims();
        let values: Vec<f32> = self
            .projection
            .val()
            .transpose()
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| TrainError::Record(format!("reading the head: {e:?}")))?;
        Ok(ProjectionHead::new(values, input, output)?)
    }
}

fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// The head with the best validation TAR so far (epoch 0: the identity, i.e. the pretrained model).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BestHead {
    epoch: usize,
    tar_at_far_1e3: f64,
    accuracy: f64,
    #[serde(skip)]
    head: Option<ProjectionHead>,
}

const BEST_HEAD_WEIGHTS: &str = "best-head.safetensors";
const BEST_HEAD_STATE: &str = "best-head.json";

impl BestHead {
    fn new(epoch: usize, figures: &VerificationFigures, head: ProjectionHead) -> Self {
        Self { epoch, tar_at_far_1e3: figures.tar_at_far_1e3, accuracy: figures.accuracy, head: Some(head) }
    }

    fn save(&self, run_dir: &Path) -> Result<(), TrainError> {
        let head = self.head.as_ref().ok_or_else(|| TrainError::Record("no head to save".into()))?;
        crate::dataset::write_atomic(&run_dir.join(BEST_HEAD_WEIGHTS), &head.to_safetensors()?)?;
        write_json(&run_dir.join(BEST_HEAD_STATE), self)
    }

    fn load(run_dir: &Path, dim: usize) -> Result<Option<Self>, TrainError> {
        let state = run_dir.join(BEST_HEAD_STATE);
        let Ok(text) = std::fs::read(&state) else { return Ok(None) };
        let mut best: Self =
            serde_json::from_slice(&text).map_err(|e| TrainError::Record(format!("{}: {e}", state.display())))?;
        let weights = run_dir.join(BEST_HEAD_WEIGHTS);
        let bytes = std::fs::read(&weights).map_err(TrainError::io(&weights))?;
        let spec =
            HeadSpec { file: weights.display().to_string(), sha256: String::new(), input_size: dim, output_size: dim };
        best.head = Some(ProjectionHead::from_safetensors(&bytes, &spec)?);
        Ok(Some(best))
    }
}

struct EmbeddingTask {
    best: Mutex<BestHead>,
    run_dir: PathBuf,
    inputs: Vec<Vec<f32>>,
    labels: Vec<usize>,
    classes: usize,
    validation: Vec<Vec<f32>>,
    validation_people: Vec<usize>,
    options: EmbeddingOptions,
    device: Device,
    loss: CrossEntropyLoss,
}

impl EmbeddingTask {
    fn margin_logits(&self, cosines: Tensor<2>, labels: &[usize]) -> Tensor<2> {
        let (m, s) = (self.options.margin, self.options.scale);
        let mut one_hot = vec![0f32; labels.len() * self.classes];
        labels.iter().enumerate().for_each(|(row, &label)| one_hot[row * self.classes + label] = 1.0);
        let one_hot: Tensor<2> =
            Tensor::from_data(TensorData::new(one_hot, [labels.len(), self.classes]), &self.device);
        let target = match self.options.loss {
            MarginLoss::CosFace => cosines.clone().sub_scalar(m),
            MarginLoss::ArcFace => {
                let cos = cosines.clone().clamp(-1.0 + 1e-6, 1.0 - 1e-6);
                let sin = cos.clone().powf_scalar(2.0).neg().add_scalar(1.0).sqrt();
                let shifted = cos.clone().mul_scalar(m.cos()) - sin.mul_scalar(m.sin());
                // Past θ = π − m, cos(θ + m) stops decreasing; use the linear extension there.
                let beyond = cos.clone().lower_equal_elem((std::f32::consts::PI - m).cos());
                shifted.mask_where(beyond, cos.sub_scalar(m * (std::f32::consts::PI - m).sin()))
            }
        };
        (one_hot.clone() * target + one_hot.neg().add_scalar(1.0) * cosines).mul_scalar(s)
    }

    fn validation_figures(&self, head: &ProjectionHead) -> VerificationFigures {
        projected_verification(head, &self.validation, &self.validation_people, self.options.seed)
    }
}

/// Verification figures of `embeddings` after `head`.
fn projected_verification(
    head: &ProjectionHead,
    embeddings: &[Vec<f32>],
    people: &[usize],
    seed: u64,
) -> VerificationFigures {
    let projected: Vec<Vec<f32>> = embeddings.iter().map(|e| normalized_projection(head, e)).collect();
    verification(&projected, people, seed)
}

impl TrainTask for EmbeddingTask {
    type Model = HeadModel;

    fn train_len(&self) -> usize {
        self.labels.len()
    }

    fn train_batch(&self, model: &HeadModel, batch: &[usize], _rng: &mut ChaCha8Rng) -> (Tensor<1>, usize) {
        let dim = self.inputs[0].len();
        let flat: Vec<f32> = batch.iter().flat_map(|&i| self.inputs[i].iter().copied()).collect();
        let labels: Vec<usize> = batch.iter().map(|&i| self.labels[i]).collect();
        let cosines = model.cosines(Tensor::from_data(TensorData::new(flat, [batch.len(), dim]), &self.device));
        let targets: Tensor<1, Int> = Tensor::from_data(
            TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [labels.len()]),
            &self.device,
        );
        let predicted: Tensor<1, Int> = cosines.clone().argmax(1).flatten(0, 1);
        let correct = predicted.equal(targets.clone()).int().sum().into_scalar::<i64>().max(0) as usize;
        (self.loss.forward(self.margin_logits(cosines, &labels), targets), correct)
    }

    /// Also keeps the best head so far (saved beside the checkpoint, so `--resume` keeps it too).
    fn validate(&self, model: &HeadModel, epoch: usize) -> Validation {
        let Ok(head) = model.head() else {
            return Validation { loss: None, accuracy: 0.0, tar_at_far_1e3: None };
        };
        let figures = self.validation_figures(&head);
        if let Ok(mut best) = self.best.lock() {
            let better = (figures.tar_at_far_1e3, figures.accuracy) > (best.tar_at_far_1e3, best.accuracy);
            if better {
                *best = BestHead::new(epoch, &figures, head);
                if let Err(error) = best.save(&self.run_dir) {
                    tracing::warn!(%error, "could not save the best head");
                }
            }
        }
        Validation { loss: None, accuracy: figures.accuracy, tar_at_far_1e3: Some(figures.tar_at_far_1e3) }
    }
}

fn normalized_projection(head: &ProjectionHead, embedding: &[f32]) -> Vec<f32> {
    let mut y = head.project_raw(embedding);
    let norm = y.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    y.iter_mut().for_each(|v| *v /= norm);
    y
}

/// Verification and identification figures over every pair of a set of embeddings.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationFigures {
    /// Images.
    pub images: usize,
    /// People.
    pub people: usize,
    /// Same-person pairs.
    pub genuine_pairs: usize,
    /// Different-person pairs.
    pub impostor_pairs: usize,
    /// 10-fold accuracy on all genuine pairs and as many random impostor pairs (LFW-style).
    pub accuracy: f64,
    /// True accept rate at a false accept rate of 1e-3, over all pairs.
    pub tar_at_far_1e3: f64,
    /// Equal error rate, over all pairs.
    pub eer: f64,
    /// Nearest-neighbour identification: each image against all the others (rank-1 accuracy).
    pub rank1_identification: f64,
}

/// Every pair's score, split into genuine and impostor, and each image's nearest other image.
struct PairScores {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
    /// Index of the most similar other image (the last of equals), per image.
    nearest: Vec<Option<usize>>,
}

fn pair_scores(embeddings: &[Vec<f32>], people: &[usize]) -> PairScores {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    let mut best: Vec<Option<(f32, usize)>> = vec![None; embeddings.len()];
    let mut offer = |i: usize, j: usize, score: f32| {
        if best[i].is_none_or(|(top, _)| score >= top) {
            best[i] = Some((score, j));
        }
    };
    for i in 0..embeddings.len() {
        for j in i + 1..embeddings.len() {
            let score = cosine(&embeddings[i], &embeddings[j]);
            if people[i] == people[j] {
                genuine.push(score)
            } else {
                impostor.push(score)
            }
            // Each image meets the others in increasing index order, as a scan of its row would.
            offer(i, j, score);
            offer(j, i, score);
        }
    }
    PairScores { genuine, impostor, nearest: best.into_iter().map(|b| b.map(|(_, j)| j)).collect() }
}

/// Figures for `embeddings` (unit length) of `people`.
pub fn verification(embeddings: &[Vec<f32>], people: &[usize], seed: u64) -> VerificationFigures {
    let PairScores { genuine, mut impostor, nearest } = pair_scores(embeddings, people);
    let roc = roc_curve(&genuine, &impostor);
    let tar = tar_at_far(&genuine, &impostor, 1e-3);
    let eer = equal_error_rate(&roc);
    let impostor_pairs = impostor.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    impostor.shuffle(&mut rng);
    impostor.truncate(genuine.len());
    let mut balanced: Vec<(f32, bool)> =
        genuine.iter().map(|&g| (g, true)).chain(impostor.iter().map(|&i| (i, false))).collect();
    balanced.shuffle(&mut rng);
    let scored: Vec<(usize, f32, bool)> =
        balanced.iter().enumerate().map(|(k, &(score, same))| (k % VERIFICATION_FOLDS, score, same)).collect();
    let folds = ten_fold_accuracy(&scored);
    let accuracy = folds.iter().map(|f| f.0).sum::<f64>() / folds.len().max(1) as f64;
    let rank1 = nearest.iter().enumerate().filter(|&(i, j)| j.is_some_and(|j| people[j] == people[i])).count() as f64
        / embeddings.len().max(1) as f64;
    let distinct: std::collections::BTreeSet<usize> = people.iter().copied().collect();
    VerificationFigures {
        images: embeddings.len(),
        people: distinct.len(),
        genuine_pairs: genuine.len(),
        impostor_pairs,
        accuracy,
        tar_at_far_1e3: tar,
        eer,
        rank1_identification: rank1,
    }
}

/// Threshold against FMR from held-out pairs, for the FMRs they resolve.
fn calibration(embeddings: &[Vec<f32>], people: &[usize]) -> Vec<CalibrationPoint> {
    let templates: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    ScoreHistogram::of_all_pairs(&templates, people, jobs).calibration()
}

/// Test figures with and without the head.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingTest {
    /// The pretrained embedder alone (plain nearest neighbour / cosine).
    pub without_head: VerificationFigures,
    /// With the trained head.
    pub with_head: VerificationFigures,
}

/// The JSON report of an embedding run.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingReport {
    /// Always `embedding`.
    pub mode: &'static str,
    /// The dataset folder.
    pub dataset: PathBuf,
    /// The pack whose detector and embedder the head sits on.
    pub base_pack: String,
    /// The exported pack's folder.
    pub pack_dir: PathBuf,
    /// People per split: train, validation, test.
    pub people_per_split: [usize; 3],
    /// Images per split.
    pub images_per_split: [usize; 3],
    /// People left out for too few images.
    pub excluded_people: usize,
    /// Photos left out for having no face.
    pub skipped_faceless: Vec<PathBuf>,
    /// The settings.
    pub options: EmbeddingOptions,
    /// Per-epoch figures.
    pub history: Vec<EpochMetrics>,
    /// Mean seconds per epoch.
    pub seconds_per_epoch: f64,
    /// The epoch whose head was exported: the best validation TAR at FAR 1e-3; 0 means no epoch beat
    /// the pretrained embedder on the validation people, and the pack's head is the identity.
    pub selected_epoch: usize,
    /// Held-out identities, with and without the head.
    pub test: EmbeddingTest,
    /// The pack's calibration table (from the test identities).
    pub calibration: Vec<CalibrationPoint>,
}

/// What an embedding run produced.
pub enum EmbeddingRun {
    /// Trained, evaluated and exported.
    Finished {
        /// The run's report (also `report.json`).
        report: Box<EmbeddingReport>,
    },
    /// Stopped early; the checkpoint is kept for `--resume`.
    Interrupted {
        /// Epochs done.
        completed: usize,
    },
}

/// Trains the head on `embeddings` (the frozen embedder's output for each sample), evaluates it on the
/// held-out people and writes the pack, `report.json` and `curves.svg` into `run_dir`.
///
/// # Errors
/// Too few people for three splits; checkpoint or output I/O.
pub fn train_embedding_head(
    dataset: &FaceDataset,
    embeddings: &[Vec<f32>],
    dataset_root: &Path,
    base_pack: &PackSpec,
    options: &EmbeddingOptions,
    run: RunContext<'_>,
) -> Result<EmbeddingRun, TrainError> {
    let persons: Vec<usize> = dataset.samples.iter().map(|s| s.person).collect();
    let split = split_by_identity(&persons, options.fractions, options.seed);
    let count_people = |part: &[usize]| part.iter().map(|&i| persons[i]).collect::<std::collections::BTreeSet<_>>();
    let (train_people, validation_people, test_people) =
        (count_people(&split.train), count_people(&split.validation), count_people(&split.test));
    if train_people.len() < 2 || validation_people.len() < 2 || test_people.len() < 2 {
        return Err(TrainError::TooFewPeople { found: dataset.people.len(), needed: 6 });
    }
    let dim = embeddings.first().map_or(0, Vec::len);
    let class_of: std::collections::BTreeMap<usize, usize> =
        train_people.iter().enumerate().map(|(class, &person)| (person, class)).collect();
    let mut centres = vec![0f32; class_of.len() * dim];
    for &i in &split.train {
        let class = class_of[&persons[i]];
        centres[class * dim..(class + 1) * dim].iter_mut().zip(&embeddings[i]).for_each(|(c, e)| *c += e);
    }
    let (run_dir, device) = (run.dir, run.device);
    let train_device = device.clone().autodiff();
    // Deterministic already (identity and class means); seeded for the backend's own use.
    let model =
        crate::seeded_init(&train_device, options.seed, || HeadModel::new(dim, centres, class_of.len(), &train_device));
    let validation: Vec<Vec<f32>> = split.validation.iter().map(|&i| embeddings[i].clone()).collect();
    let validation_persons: Vec<usize> = split.validation.iter().map(|&i| persons[i]).collect();
    let resumed_best = if options.resume { BestHead::load(run_dir, dim)? } else { None };
    let best = match resumed_best {
        Some(best) => best,
        None => {
            let identity = model.head()?;
            let figures = projected_verification(&identity, &validation, &validation_persons, options.seed);
            let best = BestHead::new(0, &figures, identity);
            std::fs::create_dir_all(run_dir).map_err(TrainError::io(run_dir))?;
            best.save(run_dir)?;
            best
        }
    };
    let task = EmbeddingTask {
        best: Mutex::new(best),
        run_dir: run_dir.to_path_buf(),
        inputs: split.train.iter().map(|&i| embeddings[i].clone()).collect(),
        labels: split.train.iter().map(|&i| class_of[&persons[i]]).collect(),
        classes: class_of.len(),
        validation,
        validation_people: validation_persons,
        options: options.clone(),
        device: train_device.clone(),
        loss: CrossEntropyLossConfig::new().init(&train_device),
    };
    let mut hash = Sha256::new();
    dataset.samples.iter().for_each(|s| hash.update(s.digest.as_bytes()));
    hash.update(
        format!(
            "embedding {} {} {:?} {} {} {} {}",
            options.batch_size,
            options.learning_rate,
            options.loss,
            options.margin,
            options.scale,
            options.seed,
            base_pack.embedder
        )
        .as_bytes(),
    );
    let config = FitConfig {
        epochs: options.epochs,
        batch_size: options.batch_size,
        learning_rate: options.learning_rate,
        seed: options.seed,
        run_dir: run_dir.to_path_buf(),
        resume: options.resume,
        fingerprint: hex::encode(hash.finalize()),
    };
    let history = match fit(&task, model, AdamConfig::new().init(), &config, run.observer, run.stop)? {
        FitOutcome::Finished { history, .. } => history,
        FitOutcome::Interrupted { completed, .. } => return Ok(EmbeddingRun::Interrupted { completed }),
    };
    let best = task.best.into_inner().map_err(|_| TrainError::Config("best-head lock poisoned".into()))?;
    let head = best.head.clone().ok_or_else(|| TrainError::Record("no head was kept".into()))?;
    let test_embeddings: Vec<Vec<f32>> = split.test.iter().map(|&i| embeddings[i].clone()).collect();
    let test_persons: Vec<usize> = split.test.iter().map(|&i| persons[i]).collect();
    let projected: Vec<Vec<f32>> = test_embeddings.iter().map(|e| normalized_projection(&head, e)).collect();
    let test = EmbeddingTest {
        without_head: verification(&test_embeddings, &test_persons, options.seed),
        with_head: verification(&projected, &test_persons, options.seed),
    };
    let calibration = calibration(&projected, &test_persons);
    let pack = PackSpec {
        name: options.pack_name.clone(),
        detector: base_pack.detector.clone(),
        landmarks: base_pack.landmarks.clone(),
        liveness: base_pack.liveness.clone(),
        embedder: base_pack.embedder.clone(),
        description: format!(
            "{} + projection head trained on {} people of {} ({:?}, m={}, s={})",
            base_pack.description,
            train_people.len(),
            dataset_root.display(),
            options.loss,
            options.margin,
            options.scale
        ),
        head: None,
        // Its calibration was measured on mirrored templates; nobody measured it without.
        mirror: facegate_core::Mirror::Always,
        calibration: calibration.clone(),
    };
    let pack_dir = run_dir.join(PACK_DIR);
    facegate_models::write_pack_dir(&pack_dir, pack, &head)?;
    let seconds_per_epoch = history.iter().map(|m| m.seconds).sum::<f64>() / history.len().max(1) as f64;
    let report = EmbeddingReport {
        mode: "embedding",
        dataset: dataset_root.to_path_buf(),
        base_pack: base_pack.name.clone(),
        pack_dir,
        people_per_split: [train_people.len(), validation_people.len(), test_people.len()],
        images_per_split: [split.train.len(), split.validation.len(), split.test.len()],
        excluded_people: dataset.excluded_people.len(),
        skipped_faceless: dataset.skipped_faceless.clone(),
        options: options.clone(),
        history,
        seconds_per_epoch,
        selected_epoch: best.epoch,
        test,
        calibration,
    };
    write_json(&run_dir.join("report.json"), &report)?;
    let title = format!(
        "projection head ({:?}): test TAR@FAR1e-3 {:.2} % → {:.2} %",
        options.loss,
        report.test.without_head.tar_at_far_1e3 * 100.0,
        report.test.with_head.tar_at_far_1e3 * 100.0
    );
    plot_curves(&report.history, &title, &run_dir.join("curves.svg"))?;
    Ok(EmbeddingRun::Finished { report: Box::new(report) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_scores_and_nearest_neighbours() {
        let unit = |a: f32| vec![a.cos(), a.sin()];
        // People 0, 0, 1, 1 at angles 0, 0.1, 1.0, 0.15: image 3 sits next to person 0's photos.
        let embeddings = vec![unit(0.0), unit(0.1), unit(1.0), unit(0.15)];
        let people = [0, 0, 1, 1];
        let scores = pair_scores(&embeddings, &people);
        assert_eq!((scores.genuine.len(), scores.impostor.len()), (2, 4));
        assert_eq!(scores.nearest, vec![Some(1), Some(3), Some(3), Some(1)]);
        let figures = verification(&embeddings, &people, 1);
        assert_eq!(figures.rank1_identification, 0.5, "images 0 and 2 find their own person first");
    }
}
