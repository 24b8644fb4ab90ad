//! The labelled person's face in a dataset photo (LFW, a training folder): detected at the pipeline's
//! threshold, else once more at [`RETRY_SCORE_THRESHOLD`]; among the faces found, the centred one
//! ([`facegate_core::subject_face`]). Probes sent to the API are different: there the subject is the
//! largest face ([`facegate_core::largest_face`]).

use facegate_core::{BoundingBox, DetectedFace, DetectorConfig, Embedding, Pipeline, PipelineError, subject_face};
use image::RgbImage;
use serde::Serialize;

/// Detector threshold of the retry on photos where the pipeline's threshold finds no face.
pub const RETRY_SCORE_THRESHOLD: f32 = 0.2;

/// How a photo's face was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceSource {
    /// At the pipeline's detector threshold.
    Detected,
    /// Only at [`RETRY_SCORE_THRESHOLD`].
    LowThresholdRetry,
    /// Not found: the centre half of the photo stands in (evaluation only, so every pair is scored).
    CentreCrop,
}

/// The subject's face in `image`, and how it was found; `None` when no face is found even at the retry
/// threshold.
///
/// # Errors
/// Detector failures.
pub fn find_subject(
    pipeline: &Pipeline,
    image: &RgbImage,
) -> Result<Option<(DetectedFace, FaceSource)>, PipelineError> {
    let mut faces = pipeline.detect(image)?;
    let mut source = FaceSource::Detected;
    if faces.is_empty() {
        let retry = DetectorConfig { score_threshold: RETRY_SCORE_THRESHOLD, ..pipeline.config().detector };
        faces = pipeline.detect_with(image, &retry)?;
        source = FaceSource::LowThresholdRetry;
    }
    Ok(subject_face(faces, image.width() as f32, image.height() as f32).map(|face| (face, source)))
}

/// The template of the subject's face in `image`; when none is found, of the photo's centre half.
///
/// # Errors
/// Pipeline failures.
pub fn subject_template(pipeline: &Pipeline, image: &RgbImage) -> Result<(Embedding, FaceSource), PipelineError> {
    let (embedding, source) = match find_subject(pipeline, image)? {
        Some((face, source)) => (pipeline.embed_faces(image, std::slice::from_ref(&face))?.pop(), source),
        None => {
            let (w, h) = (image.width() as f32, image.height() as f32);
            let centre = BoundingBox { x: w * 0.25, y: h * 0.25, width: w * 0.5, height: h * 0.5 };
            let crop = pipeline.alignment().crop_box(image, &centre);
            (pipeline.embed_aligned(&[&crop.image])?.pop(), FaceSource::CentreCrop)
        }
    };
    let embedding = embedding.ok_or_else(|| PipelineError::ModelOutput("the embedder returned no template".into()))?;
    Ok((embedding, source))
}
