//! The one seam through which the gallery has images analysed: an [`Analyser`] turns an encoded image
//! into its faces (with the extras a decision needs) with a pack's models, and says what each loaded
//! pack can do. The HTTP API implements it over its pools of pipelines (off the async runtime, within
//! its memory budget); [`Pipelines`] implements it in place for the command line and tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use facegate_core::{Calibration, DecodeLimits, Embedding, Extras, ImageAnalysis, KeptFace, Pipeline, PipelineError};

/// Why an image could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The pack is not loaded here.
    #[error("pack `{pack}` is not loaded; loaded: {loaded:?}")]
    UnknownPack {
        /// The pack asked for.
        pack: String,
        /// The packs that are, sorted.
        loaded: Vec<String>,
    },
    /// Liveness was asked of a pack without liveness models.
    #[error("this pack has no liveness models: ask without `liveness`")]
    NoLiveness,
    /// The pipeline failed: a bad image ([`PipelineError::Image`], the caller's fault) or a model.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The analyser itself failed (a worker that panicked, a budget that closed).
    #[error("analysis failed: {0}")]
    Failed(String),
}

impl AnalysisError {
    /// The image itself is at fault (unreadable, too large): the caller should send another.
    pub fn is_bad_image(&self) -> bool {
        matches!(self, Self::Pipeline(PipelineError::Image(_)))
    }
}

/// Analyses images with the packs loaded here.
#[async_trait]
pub trait Analyser: Send + Sync {
    /// The calibration of `pack` (its thresholds at each false-match rate).
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`].
    fn calibration(&self, pack: &str) -> Result<&Calibration, AnalysisError>;

    /// The version of the templates `pack` makes, or `None` when it is not loaded here.
    fn template_version(&self, pack: &str) -> Option<String>;

    /// The length of `pack`'s templates.
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`].
    fn embedding_size(&self, pack: &str) -> Result<u32, AnalysisError>;

    /// Whether `pack` has liveness models.
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`].
    fn has_liveness(&self, pack: &str) -> Result<bool, AnalysisError>;

    /// Every face of an encoded image (at most the analyser's face limit) with its template and
    /// `extras`, by `pack`.
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`], [`AnalysisError::NoLiveness`] when liveness is asked of a pack
    /// without it, [`AnalysisError::Pipeline`] for a bad image or a failing model.
    async fn analyse(&self, pack: &str, image: Bytes, extras: Extras) -> Result<ImageAnalysis, AnalysisError>;

    /// Templates of faces on the kept frame, by `pack` (a migration's target).
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`]; model failures.
    async fn embed_kept(&self, pack: &str, faces: Vec<KeptFace>) -> Result<Vec<Embedding>, AnalysisError>;
}

/// Loaded pipelines by pack, run in place on the calling thread: the command line's analyser (one
/// image at a time), and a gallery's default (no packs) until one is given.
#[derive(Default)]
pub struct Pipelines {
    packs: BTreeMap<String, Arc<Pipeline>>,
    limits: DecodeLimits,
    max_faces: usize,
}

impl Pipelines {
    /// No packs yet; images decoded within `limits`, at most `max_faces` faces analysed per image.
    pub fn new(limits: DecodeLimits, max_faces: usize) -> Self {
        Self { packs: BTreeMap::new(), limits, max_faces }
    }

    /// The same with `pipeline` loaded as `pack`.
    pub fn with(mut self, pack: impl Into<String>, pipeline: Arc<Pipeline>) -> Self {
        self.packs.insert(pack.into(), pipeline);
        self
    }

    fn pipeline(&self, pack: &str) -> Result<&Arc<Pipeline>, AnalysisError> {
        self.packs.get(pack).ok_or_else(|| AnalysisError::UnknownPack {
            pack: pack.to_string(),
            loaded: self.packs.keys().cloned().collect(),
        })
    }
}

#[async_trait]
impl Analyser for Pipelines {
    fn calibration(&self, pack: &str) -> Result<&Calibration, AnalysisError> {
        Ok(self.pipeline(pack)?.calibration())
    }

    fn template_version(&self, pack: &str) -> Option<String> {
        self.packs.get(pack).map(|p| p.template_version())
    }

    fn embedding_size(&self, pack: &str) -> Result<u32, AnalysisError> {
        Ok(u32::try_from(self.pipeline(pack)?.embedding_size()).unwrap_or(u32::MAX))
    }

    fn has_liveness(&self, pack: &str) -> Result<bool, AnalysisError> {
        Ok(self.pipeline(pack)?.liveness_spec().is_some())
    }

    async fn analyse(&self, pack: &str, image: Bytes, extras: Extras) -> Result<ImageAnalysis, AnalysisError> {
        let pipeline = self.pipeline(pack)?;
        if extras.liveness && pipeline.liveness_spec().is_none() {
            return Err(AnalysisError::NoLiveness);
        }
        Ok(pipeline.analyze_encoded(&image, &self.limits, self.max_faces, extras)?)
    }

    async fn embed_kept(&self, pack: &str, faces: Vec<KeptFace>) -> Result<Vec<Embedding>, AnalysisError> {
        let refs: Vec<&KeptFace> = faces.iter().collect();
        Ok(self.pipeline(pack)?.embed_kept(&refs)?)
    }
}
