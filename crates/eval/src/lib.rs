//! Evaluation, one home for what `facegate eval` and training both need:
//!
//! - [`lfw`]: the LFW pairs protocol (10 folds of matched and mismatched pairs) and its image list;
//! - [`metrics`]: accuracy with a cross-validated threshold, TAR at a fixed FAR, ROC, EER;
//! - [`calibration`]: the threshold-against-FMR table of a pack, from every pair of a labelled set
//!   (at [`facegate_core::CALIBRATION_FMRS`], rows the pairs resolve);
//! - [`subject`]: the labelled person's face in a dataset photo (detection, one low-threshold retry,
//!   the centred face), and its template;
//! - [`work`]: the work queue that spreads items over workers that each hold their own pipeline.
//!
//! The CLI only prints and plots what these return; training uses the same calibration, subject choice
//! and queue.

pub mod calibration;
pub mod lfw;
pub mod liveness;
pub mod metrics;
pub mod subject;
pub mod work;

/// Failures of evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A protocol or image file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A protocol file is malformed.
    #[error("{0}")]
    Protocol(String),
    /// The pipeline failed on an image.
    #[error("{path}: {source}")]
    Pipeline {
        /// The image.
        path: String,
        /// Why.
        source: facegate_core::PipelineError,
    },
    /// A worker thread panicked or left an item undone.
    #[error("evaluation worker failed: {0}")]
    Worker(String),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io { path: path.display().to_string(), source }
}
