//! Training in Rust with [burn](https://burn.dev): the CNN workflow (convolution, pooling, dense
//! layers; SGD with momentum or Adam; cross-entropy; fit, then evaluate) on a folder of labelled faces.
//!
//! 1. [`DatasetListing::read`] lists `DATASET/<person>/<photo>` and refuses bad datasets;
//!    [`prepare_faces`] detects and aligns every photo with facegate's own pipeline (cached).
//! 2. [`train_classifier`] trains the classifier CNN from scratch ([`Classifier`] loads it to predict);
//!    [`train_embedding_head`] trains a projection head on the frozen embedder and exports a pack.
//! 3. Both run the loop in [`fit`]: per-epoch validation, checkpoints, exact `--resume`, and a stop
//!    flag for Ctrl-C.
//!
//! burn's own `Learner` is not used: this loop derives each epoch's batch order and augmentation from
//! the seed and the epoch alone, which is what makes a resumed run equal an uninterrupted one.

mod classifier;
mod dataset;
mod embedding;
mod error;
pub mod fit;
mod report;
mod split;

pub use burn::tensor::Device;
pub use classifier::{
    CLASSIFIER_FORMAT, Classifier, ClassifierMeta, ClassifierOptions, ClassifierReport, ClassifierRun, ClassifierTest,
    FaceCnn, MIN_INPUT_SIZE, MODEL_DIR, OptimizerKind, Prediction, train_classifier,
};
pub use dataset::{DatasetListing, FaceDataset, FaceSample, PrepCache, prepare_faces, pretrained_embeddings};
pub use embedding::{
    EmbeddingOptions, EmbeddingReport, EmbeddingRun, EmbeddingTest, MarginLoss, PACK_DIR, VerificationFigures,
    train_embedding_head, verification,
};
pub use error::TrainError;
pub use fit::{FitConfig, FitOutcome, Quiet, RunContext, TrainObserver, TrainTask, Validation};
pub use report::{EpochMetrics, plot_curves};
pub use split::{Split, SplitFractions, split_by_identity, split_by_image};

/// Seeds the backend's generator and draws a model's initial weights from it, under a lock: the
/// generator is shared by the process, and burn initialises parameters lazily (on first use), so the
/// weights are forced here, before another run in the same process can draw from the generator.
pub(crate) fn seeded_init<M: burn::module::Module>(device: &Device, seed: u64, init: impl FnOnce() -> M) -> M {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    let model = init();
    // Clones share the lazy state: reading every parameter of one initialises them for both.
    drop(model.clone().into_record());
    model
}

/// The device to train on: the pure-Rust CPU backend, or with the `cuda` feature and `gpu`, the first
/// NVIDIA GPU.
///
/// # Errors
/// [`TrainError::Config`] when a GPU is asked for in a build without the `cuda` feature.
pub fn training_device(gpu: bool) -> Result<Device, TrainError> {
    if !gpu {
        return Ok(Device::flex());
    }
    #[cfg(feature = "cuda")]
    {
        Ok(Device::cuda(0))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(TrainError::Config("this facegate was built without GPU training (cargo feature `cuda`)".into()))
    }
}
