//! `--mode classifier`: the CNN of the brief, trained from scratch on the aligned crops.
//! Conv(32, 3×3, ReLU) → MaxPool 2×2 → Conv(64, 3×3, ReLU) → MaxPool 2×2 → Flatten → Dense(128, ReLU)
//! → Dense(N) with softmax (inside the cross-entropy loss while training, explicit when predicting).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::softmax;
use image::RgbImage;
use image::imageops::FilterType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dataset::FaceDataset;
use crate::error::TrainError;
use crate::fit::{FitConfig, FitOutcome, RunContext, TrainTask, Validation, fit};
use crate::report::{EpochMetrics, plot_curves, write_json};
use crate::split::{Split, SplitFractions, split_by_image};

/// Format tag of `classifier.json`.
pub const CLASSIFIER_FORMAT: &str = "facegate-classifier-v1";
/// Folder of the trained model inside a run.
pub const MODEL_DIR: &str = "model";
const META_FILE: &str = "classifier.json";
const WEIGHTS_FILE: &str = "weights.bpk";
/// Pixels are scaled to 0..1, then `(x - 0.5) / 0.25`.
const PIXEL_MEAN: f32 = 0.5;
const PIXEL_STD: f32 = 0.25;
/// Largest shift of the augmentation, as a share of the input side.
const MAX_SHIFT: f32 = 0.06;
/// Brightness factor range of the augmentation.
const BRIGHTNESS: (f32, f32) = (0.8, 1.2);
const EVAL_BATCH: usize = 128;

/// The network.
#[derive(Module, Debug)]
pub struct FaceCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    dense: Linear,
    output: Linear,
    relu: Relu,
}

impl FaceCnn {
    /// A freshly initialised network for `input_size`² RGB inputs and `classes` people.
    pub fn new(input_size: usize, classes: usize, device: &Device) -> Self {
        let side = flattened_side(input_size);
        Self {
            conv1: Conv2dConfig::new([3, 32], [3, 3]).init(device),
            conv2: Conv2dConfig::new([32, 64], [3, 3]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            dense: LinearConfig::new(64 * side * side, 128).init(device),
            output: LinearConfig::new(128, classes).init(device),
            relu: Relu::new(),
        }
    }

    /// Logits `[batch, classes]` of a `[batch, 3, size, size]` input.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(input)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.output.forward(self.relu.forward(self.dense.forward(x)))
    }
}

/// Side of the feature map before flattening: two valid 3×3 convolutions, each followed by a 2×2 pool.
fn flattened_side(input_size: usize) -> usize {
    (input_size.saturating_sub(2) / 2).saturating_sub(2) / 2
}

/// Smallest input side the network takes.
pub const MIN_INPUT_SIZE: usize = 16;

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with momentum.
    Sgd,
    /// Adam.
    Adam,
}

impl OptimizerKind {
    /// Default step size.
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Self::Sgd => 0.01,
            Self::Adam => 1e-3,
        }
    }

    fn init(self, momentum: f64) -> ModuleOptimizer {
        match self {
            Self::Sgd => SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(momentum).with_dampening(0.0)))
                .init(),
            Self::Adam => AdamConfig::new().init(),
        }
    }
}

/// Classifier training settings.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierOptions {
    /// Crops are resized to this square side.
    pub input_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f64,
    /// SGD or Adam.
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    /// Random flips, shifts and brightness on training images.
    pub augment: bool,
    /// Seed of initialisation, split, batch order and augmentation.
    pub seed: u64,
    /// Held-out shares.
    #[serde(skip)]
    pub fractions: SplitFractions,
    /// Continue from the run's checkpoint.
    pub resume: bool,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            input_size: 64,
            epochs: 15,
            batch_size: 32,
            learning_rate: OptimizerKind::Adam.default_learning_rate(),
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            augment: true,
            seed: 42,
            fractions: SplitFractions::default(),
            resume: false,
        }
    }
}

/// Images resized to the input side, as RGB bytes, with their labels.
struct Images {
    pixels: Vec<Vec<u8>>,
    labels: Vec<usize>,
    size: usize,
}

impl Images {
    fn new(dataset: &FaceDataset, indices: &[usize], size: usize) -> Self {
        let pixels = indices.iter().map(|&i| resize(&dataset.samples[i].crop, size)).collect();
        Self { pixels, labels: indices.iter().map(|&i| dataset.samples[i].person).collect(), size }
    }
}

fn resize(crop: &RgbImage, size: usize) -> Vec<u8> {
    let side = size as u32;
    if crop.width() == side && crop.height() == side {
        crop.as_raw().clone()
    } else {
        image::imageops::resize(crop, side, side, FilterType::Triangle).into_raw()
    }
}

/// A `[batch, 3, size, size]` input, normalised; with `augment`, each image is flipped at random,
/// shifted by up to 6 % of its side and brightened or darkened by up to 20 %.
fn input_tensor(images: &[&[u8]], size: usize, mut augment: Option<&mut ChaCha8Rng>, device: &Device) -> Tensor<4> {
    let plane = size * size;
    let mut data = vec![0f32; images.len() * 3 * plane];
    let max_shift = (size as f32 * MAX_SHIFT).round() as i64;
    for (n, pixels) in images.iter().enumerate() {
        let (flip, dx, dy, gain) = match augment.as_deref_mut() {
            Some(rng) => (
                rng.random_bool(0.5),
                rng.random_range(-max_shift..=max_shift),
                rng.random_range(-max_shift..=max_shift),
                rng.random_range(BRIGHTNESS.0..=BRIGHTNESS.1),
            ),
            None => (false, 0, 0, 1.0),
        };
        let last = size as i64 - 1;
        for y in 0..size {
            let sy = (y as i64 - dy).clamp(0, last) as usize;
            for x in 0..size {
                let mut sx = (x as i64 - dx).clamp(0, last) as usize;
                if flip {
                    sx = size - 1 - sx;
                }
                let source = (sy * size + sx) * 3;
                for c in 0..3 {
                    let value = (f32::from(pixels[source + c]) * gain).min(255.0) / 255.0;
                    data[n * 3 * plane + c * plane + y * size + x] = (value - PIXEL_MEAN) / PIXEL_STD;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, size, size]), device)
}

fn label_tensor(labels: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(values, [labels.len()]), device)
}

fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let predicted: Tensor<1, Int> = logits.argmax(1).flatten(0, 1);
    predicted.equal(labels).int().sum().into_scalar::<i64>().max(0) as usize
}

/// Loss, accuracy and each image's `(max probability, correct)` of a model on labelled images.
fn evaluate(
    model: &FaceCnn,
    images: &Images,
    loss: &CrossEntropyLoss,
    device: &Device,
) -> (f64, f64, Vec<(f32, bool)>) {
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let mut confidences = Vec::with_capacity(images.labels.len());
    for (pixels, labels) in images.pixels.chunks(EVAL_BATCH).zip(images.labels.chunks(EVAL_BATCH)) {
        let refs: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        let logits = model.forward(input_tensor(&refs, images.size, None, device));
        let targets = label_tensor(labels, device);
        loss_sum += f64::from(loss.forward(logits.clone(), targets.clone()).into_scalar::<f32>()) * labels.len() as f64;
        correct += correct_count(logits.clone(), targets);
        let probabilities: Vec<f32> = softmax(logits, 1).into_data().try_into_vec::<f32>().unwrap_or_default();
        let classes = probabilities.len() / labels.len().max(1);
        for (row, &label) in probabilities.chunks(classes.max(1)).zip(labels) {
            let (best, p) = argmax(row);
            confidences.push((p, best == label));
        }
    }
    let n = images.labels.len().max(1) as f64;
    (loss_sum / n, correct as f64 / n, confidences)
}

fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter().copied().enumerate().fold((0, f32::MIN), |best, (i, p)| if p > best.1 { (i, p) } else { best })
}

struct ClassifierTask {
    train: Images,
    validation: Images,
    augment: bool,
    device: Device,
    loss: CrossEntropyLoss,
}

impl TrainTask for ClassifierTask {
    type Model = FaceCnn;

    fn train_len(&self) -> usize {
        self.train.labels.len()
    }

    fn train_batch(&self, model: &FaceCnn, batch: &[usize], rng: &mut ChaCha8Rng) -> (Tensor<1>, usize) {
        let pixels: Vec<&[u8]> = batch.iter().map(|&i| self.train.pixels[i].as_slice()).collect();
        let labels: Vec<usize> = batch.iter().map(|&i| self.train.labels[i]).collect();
        let input = input_tensor(&pixels, self.train.size, self.augment.then_some(rng), &self.device);
        let targets = label_tensor(&labels, &self.device);
        let logits = model.forward(input);
        let correct = correct_count(logits.clone(), targets.clone());
        (self.loss.forward(logits, targets), correct)
    }

    fn validate(&self, model: &FaceCnn, _epoch: usize) -> Validation {
        let device = self.device.clone().inner();
        if self.validation.labels.is_empty() {
            return Validation { loss: None, accuracy: 0.0, tar_at_far_1e3: None };
        }
        let (loss, accuracy, _) = evaluate(model, &self.validation, &self.loss, &device);
        Validation { loss: Some(loss), accuracy, tar_at_far_1e3: None }
    }
}

/// Test-split figures.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierTest {
    /// Cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// The rejection threshold saved with the model.
    pub min_confidence: f32,
    /// Share of test images answered (not rejected) at that threshold.
    pub answered_share: f64,
    /// Accuracy on the answered ones.
    pub answered_accuracy: f64,
}

/// What a classifier run produced.
pub enum ClassifierRun {
    /// Trained and evaluated; the model, report and plot are written.
    Finished {
        /// The run's report (also `report.json`).
        report: Box<ClassifierReport>,
    },
    /// Stopped early; the checkpoint is kept for `--resume`.
    Interrupted {
        /// Epochs done.
        completed: usize,
    },
}

/// The JSON report of a classifier run.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierReport {
    /// Always `classifier`.
    pub mode: &'static str,
    /// The dataset folder.
    pub dataset: PathBuf,
    /// The pack whose detector and alignment made the crops.
    pub pack: String,
    /// The people, in class order.
    pub people: Vec<String>,
    /// Images per split: train, validation, test.
    pub split_sizes: [usize; 3],
    /// People left out for too few images.
    pub excluded_people: Vec<(String, usize)>,
    /// Photos left out for having no face.
    pub skipped_faceless: Vec<PathBuf>,
    /// The settings.
    pub options: ClassifierOptions,
    /// Training device.
    pub device: String,
    /// Per-epoch figures.
    pub history: Vec<EpochMetrics>,
    /// Mean seconds per epoch.
    pub seconds_per_epoch: f64,
    /// Test-split figures.
    pub test: ClassifierTest,
    /// Where the model was written.
    pub model_dir: PathBuf,
}

/// Trains the classifier, evaluates it on the test split and writes `model/`, `report.json` and
/// `curves.svg` into `run_dir`.
///
/// # Errors
/// Too few people, bad options, checkpoint or output I/O.
pub fn train_classifier(
    dataset: &FaceDataset,
    dataset_root: &Path,
    pack: &str,
    options: &ClassifierOptions,
    run: RunContext<'_>,
) -> Result<ClassifierRun, TrainError> {
    if dataset.people.len() < 2 {
        return Err(TrainError::TooFewPeople { found: dataset.people.len(), needed: 2 });
    }
    if options.input_size < MIN_INPUT_SIZE {
        return Err(TrainError::Config(format!("--input-size must be at least {MIN_INPUT_SIZE}")));
    }
    let persons: Vec<usize> = dataset.samples.iter().map(|s| s.person).collect();
    let split = split_by_image(&persons, options.fractions, options.seed);
    let (run_dir, device) = (run.dir, run.device);
    let train_device = device.clone().autodiff();
    let model = crate::seeded_init(&train_device, options.seed, || {
        FaceCnn::new(options.input_size, dataset.people.len(), &train_device)
    });
    let task = ClassifierTask {
        train: Images::new(dataset, &split.train, options.input_size),
        validation: Images::new(dataset, &split.validation, options.input_size),
        augment: options.augment,
        device: train_device.clone(),
        loss: CrossEntropyLossConfig::new().init(&train_device),
    };
    let config = FitConfig {
        epochs: options.epochs,
        batch_size: options.batch_size,
        learning_rate: options.learning_rate,
        seed: options.seed,
        run_dir: run_dir.to_path_buf(),
        resume: options.resume,
        fingerprint: fingerprint(dataset, &split, options),
    };
    let (model, history) =
        match fit(&task, model, options.optimizer.init(options.momentum), &config, run.observer, run.stop)? {
            FitOutcome::Finished { model, history } => (model.valid(), history),
            FitOutcome::Interrupted { completed, .. } => return Ok(ClassifierRun::Interrupted { completed }),
        };
    let plain = device.clone();
    let loss = CrossEntropyLossConfig::new().init(&plain);
    let (_, _, validation_confidences) = evaluate(&model, &task.validation, &loss, &plain);
    let min_confidence = default_min_confidence(&validation_confidences);
    let test_images = Images::new(dataset, &split.test, options.input_size);
    let (test_loss, test_accuracy, test_confidences) = evaluate(&model, &test_images, &loss, &plain);
    let answered: Vec<&(f32, bool)> = test_confidences.iter().filter(|c| c.0 >= min_confidence).collect();
    let test = ClassifierTest {
        loss: test_loss,
        accuracy: test_accuracy,
        min_confidence,
        answered_share: answered.len() as f64 / test_confidences.len().max(1) as f64,
        answered_accuracy: answered.iter().filter(|c| c.1).count() as f64 / answered.len().max(1) as f64,
    };
    let model_dir = run_dir.join(MODEL_DIR);
    let meta = ClassifierMeta {
        format: CLASSIFIER_FORMAT.to_string(),
        classes: dataset.people.clone(),
        input_size: options.input_size,
        pack: pack.to_string(),
        min_confidence,
        architecture: "Conv32-3x3-ReLU, MaxPool2, Conv64-3x3-ReLU, MaxPool2, Flatten, Dense128-ReLU, DenseN-softmax"
            .to_string(),
        test_accuracy,
    };
    save_model(&model, &meta, &model_dir)?;
    let seconds_per_epoch = history.iter().map(|m| m.seconds).sum::<f64>() / history.len().max(1) as f64;
    let report = ClassifierReport {
        mode: "classifier",
        dataset: dataset_root.to_path_buf(),
        pack: pack.to_string(),
        people: dataset.people.clone(),
        split_sizes: [split.train.len(), split.validation.len(), split.test.len()],
        excluded_people: dataset.excluded_people.clone(),
        skipped_faceless: dataset.skipped_faceless.clone(),
        options: options.clone(),
        device: format!("{device:?}"),
        history,
        seconds_per_epoch,
        test,
        model_dir,
    };
    write_json(&run_dir.join("report.json"), &report)?;
    let title = format!(
        "classifier, {} people, {:?}: test accuracy {:.1} %",
        dataset.people.len(),
        options.optimizer,
        report.test.accuracy * 100.0
    );
    plot_curves(&report.history, &title, &run_dir.join("curves.svg"))?;
    Ok(ClassifierRun::Finished { report: Box::new(report) })
}

/// Identifies the data, split and settings that shape training (not the epoch count: a run may be
/// extended by resuming with more epochs).
fn fingerprint(dataset: &FaceDataset, split: &Split, options: &ClassifierOptions) -> String {
    let mut hash = Sha256::new();
    for sample in &dataset.samples {
        hash.update(sample.digest.as_bytes());
        hash.update(sample.person.to_le_bytes());
    }
    hash.update(format!("{:?}", split.train).as_bytes());
    hash.update(
        format!(
            "classifier {} {} {} {:?} {} {} {}",
            options.input_size,
            options.batch_size,
            options.learning_rate,
            options.optimizer,
            options.momentum,
            options.augment,
            options.seed
        )
        .as_bytes(),
    );
    hex::encode(hash.finalize())
}

/// The 10th percentile of the confidence of correct validation answers (at least 0.2): below it,
/// an answer is more likely a stranger or a bad photo than one of the known people.
fn default_min_confidence(confidences: &[(f32, bool)]) -> f32 {
    let mut correct: Vec<f32> = confidences.iter().filter(|c| c.1).map(|c| c.0).collect();
    if correct.is_empty() {
        return 0.5;
    }
    correct.sort_by(f32::total_cmp);
    correct[correct.len() / 10].clamp(0.2, 0.95)
}

/// `classifier.json`: what the weights mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierMeta {
    /// [`CLASSIFIER_FORMAT`].
    pub format: String,
    /// Person names, in output order.
    pub classes: Vec<String>,
    /// Input side.
    pub input_size: usize,
    /// Pack whose detector and alignment the crops came from (use the same when classifying).
    pub pack: String,
    /// Answers below this probability are "unknown".
    pub min_confidence: f32,
    /// The layers, for people reading the file.
    pub architecture: String,
    /// Test accuracy at the end of training.
    pub test_accuracy: f64,
}

fn save_model(model: &FaceCnn, meta: &ClassifierMeta, dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    model
        .clone()
        .into_record()
        .save(dir.join(WEIGHTS_FILE))
        .map_err(|e| TrainError::Record(format!("writing {}: {e}", dir.join(WEIGHTS_FILE).display())))?;
    write_json(&dir.join(META_FILE), meta)
}

/// One face's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The person, or `None` when the best probability is below the threshold.
    pub person: Option<String>,
    /// The most likely person, whatever the threshold.
    pub best_guess: String,
    /// Probability of the best guess.
    pub confidence: f32,
    /// The three most likely people with their probabilities.
    pub top: Vec<(String, f32)>,
}

/// A trained classifier, loaded for prediction on the CPU.
pub struct Classifier {
    meta: ClassifierMeta,
    model: FaceCnn,
    device: Device,
}

impl Classifier {
    /// Loads `classifier.json` and the weights from a model folder (or a run folder holding `model/`).
    ///
    /// # Errors
    /// Missing or unreadable files, another format, weights that do not fit.
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let dir = if dir.join(META_FILE).is_file() { dir.to_path_buf() } else { dir.join(MODEL_DIR) };
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read(&meta_path).map_err(TrainError::io(&meta_path))?;
        let meta: ClassifierMeta =
            serde_json::from_slice(&text).map_err(|e| TrainError::Record(format!("{}: {e}", meta_path.display())))?;
        if meta.format != CLASSIFIER_FORMAT || meta.classes.len() < 2 || meta.input_size < MIN_INPUT_SIZE {
            return Err(TrainError::Record(format!("{}: not a {CLASSIFIER_FORMAT} model", meta_path.display())));
        }
        let device = Device::flex();
        let weights = dir.join(WEIGHTS_FILE);
        let bad = |e: burn::store::RecordError| TrainError::Record(format!("{}: {e}", weights.display()));
        let record = ModuleRecord::load(&weights).map_err(bad)?;
        let model = FaceCnn::new(meta.input_size, meta.classes.len(), &device).try_load_record(record).map_err(bad)?;
        Ok(Self { meta, model, device })
    }

    /// What the model knows.
    pub fn meta(&self) -> &ClassifierMeta {
        &self.meta
    }

    /// Answers for aligned 112×112 crops; `min_confidence` overrides the saved threshold.
    pub fn classify(&self, crops: &[RgbImage], min_confidence: Option<f32>) -> Vec<Prediction> {
        if crops.is_empty() {
            return Vec::new();
        }
        let threshold = min_confidence.unwrap_or(self.meta.min_confidence);
        let pixels: Vec<Vec<u8>> = crops.iter().map(|c| resize(c, self.meta.input_size)).collect();
        let refs: Vec<&[u8]> = pixels.iter().map(Vec::as_slice).collect();
        let logits = self.model.forward(input_tensor(&refs, self.meta.input_size, None, &self.device));
        let probabilities: Vec<f32> = softmax(logits, 1).into_data().try_into_vec::<f32>().unwrap_or_default();
        probabilities
            .chunks(self.meta.classes.len())
            .map(|row| {
                let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                let (best, confidence) = ranked[0];
                let name = |i: usize| self.meta.classes[i].clone();
                Prediction {
                    person: (confidence >= threshold).then(|| name(best)),
                    best_guess: name(best),
                    confidence,
                    top: ranked.iter().take(3).map(|&(i, p)| (name(i), p)).collect(),
                }
            })
            .collect()
    }
}
