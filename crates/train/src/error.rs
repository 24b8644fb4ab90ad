//! Errors of dataset preparation and training.

use std::path::PathBuf;

use facegate_core::PipelineError;

/// Everything that stops a training run. Dataset problems are reported in full so the user can fix
/// them all at once; nothing is silently left out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The dataset path is not a folder.
    #[error("{0}: not a folder (expected one subfolder of photos per person)")]
    NotADirectory(PathBuf),
    /// No person folder holds any image.
    #[error("{0}: no person folders with images (expected DATASET/<person>/<photo>.jpg)")]
    EmptyDataset(PathBuf),
    /// People with too few images to be split and learned.
    #[error(
        "{} people have fewer than {min} images: {}; add photos, or pass --min-images {min} to leave them out",
        people.len(),
        list(people.iter().map(|(name, n)| format!("{name} ({n})")))
    )]
    TooFewImages {
        /// The threshold.
        min: usize,
        /// Each person and their image count.
        people: Vec<(String, usize)>,
    },
    /// Fewer people than the mode needs.
    #[error("{found} people usable, at least {needed} are needed for this mode")]
    TooFewPeople {
        /// People found.
        found: usize,
        /// People needed.
        needed: usize,
    },
    /// Images in which no face was found.
    #[error(
        "no face found in {} images: {}; remove them, or pass --skip-faceless to leave them out (they are listed in the report)",
        paths.len(),
        list(paths.iter().map(|p| p.display().to_string()))
    )]
    NoFace {
        /// The images.
        paths: Vec<PathBuf>,
    },
    /// An image that does not decode.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PipelineError,
    },
    /// The pipeline failed (model inference).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint or model file is unreadable or does not fit the configuration.
    #[error("{0}")]
    Record(String),
    /// Inconsistent options.
    #[error("{0}")]
    Config(String),
    /// Writing a pack failed.
    #[error(transparent)]
    Models(#[from] facegate_models::ModelsError),
}

impl TrainError {
    /// An I/O error at `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// The first few items, then how many more.
fn list(items: impl Iterator<Item = String>) -> String {
    const SHOWN: usize = 8;
    let items: Vec<String> = items.collect();
    let mut text = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}
