//! One image analysed for a decision: every face (at most a given number) with its template and, per
//! face, whatever else the decision needs (sharpness, liveness, the kept frame, the aligned crop), in one
//! struct per face.

use std::time::{Duration, Instant};

use image::RgbImage;

use crate::align::align_face;
use crate::detect::DetectedFace;
use crate::embed::Embedding;
use crate::error::PipelineError;
use crate::geometry::BoundingBox;
use crate::image_input::{DecodeLimits, decode_image};
use crate::keep::KeptFace;
use crate::liveness::LivenessScore;
use crate::pipeline::{AnalyzedFace, Pipeline, StageTimings};
use crate::sharpness::face_sharpness;

/// What an analysis computes per face beyond its box, landmarks and template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extras {
    /// Sharpness of the aligned crop (the quality gates of enrolment and doors).
    pub sharpness: bool,
    /// The face on the kept frame (collections that keep them, migrations).
    pub kept: bool,
    /// Liveness (presentation-attack detection), with the pack's liveness models.
    pub liveness: bool,
    /// The aligned crop as a JPEG, to show (never stored).
    pub crop: bool,
    /// The best templates the pack makes, whatever the pipeline's [`crate::Mirror`] policy: every face
    /// with its mirror image too. For templates that are kept (enrolment, ignore lists: made once, met
    /// by every probe after) and searches through the record (sightings by photo).
    pub best_template: bool,
}

/// One face of an analysed image.
#[derive(Debug, Clone)]
pub struct FaceAnalysis {
    /// Where it is and how sure the detector is.
    pub face: DetectedFace,
    /// Its template.
    pub embedding: Embedding,
    /// Sharpness of its aligned crop, when asked for.
    pub sharpness: Option<f32>,
    /// Its liveness, when asked for.
    pub liveness: Option<LivenessScore>,
    /// The face on the kept frame, when asked for (`None` too for degenerate landmarks).
    pub kept: Option<KeptFace>,
    /// Its aligned crop (112×112) as a JPEG, when asked for.
    pub crop: Option<Vec<u8>>,
}

impl AsRef<DetectedFace> for FaceAnalysis {
    fn as_ref(&self) -> &DetectedFace {
        &self.face
    }
}

impl From<FaceAnalysis> for AnalyzedFace {
    fn from(face: FaceAnalysis) -> Self {
        AnalyzedFace { face: face.face, embedding: face.embedding }
    }
}

/// An analysed image.
#[derive(Debug, Clone)]
pub struct ImageAnalysis {
    /// Decoded width.
    pub width: u32,
    /// Decoded height.
    pub height: u32,
    /// Faces, best detection score first, at most the number asked for.
    pub faces: Vec<FaceAnalysis>,
    /// More faces were found than asked for; only the best ones were analysed.
    pub faces_truncated: bool,
    /// Time per stage.
    pub timings: StageTimings,
    /// Time spent decoding (zero for an image given as pixels).
    pub decode: Duration,
}

/// Quality of the aligned crops returned to be shown (112×112, a few kB each).
const CROP_JPEG_QUALITY: u8 = 90;

/// `face` of `image` aligned onto the 112×112 template, as a JPEG.
fn aligned_jpeg(image: &RgbImage, face: &DetectedFace) -> Option<Vec<u8>> {
    jpeg(&align_face(image, &face.landmarks)?.image)
}

/// An image as a JPEG (quality 90).
pub fn jpeg(image: &RgbImage) -> Option<Vec<u8>> {
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, CROP_JPEG_QUALITY);
    image.write_with_encoder(encoder).ok()?;
    Some(jpeg)
}

/// A face with its surroundings, as a person looks at it and as a detector finds it again: its box
/// widened by 60 % of its size on each side (within the image), scaled down to at most `max_side`.
pub fn face_shot(image: &RgbImage, bbox: &BoundingBox, max_side: u32) -> Option<RgbImage> {
    let margin = bbox.width.max(bbox.height) * 0.6;
    let (width, height) = (image.width() as f32, image.height() as f32);
    let left = (bbox.x - margin).clamp(0.0, width);
    let top = (bbox.y - margin).clamp(0.0, height);
    let right = (bbox.x + bbox.width + margin).clamp(0.0, width);
    let bottom = (bbox.y + bbox.height + margin).clamp(0.0, height);
    let (w, h) = ((right - left) as u32, (bottom - top) as u32);
    if w < 2 || h < 2 {
        return None;
    }
    let (left, top) = (left as u32, top as u32);
    if w.max(h) <= max_side {
        return Some(image::imageops::crop_imm(image, left, top, w, h).to_image());
    }
    let scale = max_side as f32 / w.max(h) as f32;
    let (sw, sh) = (((w as f32 * scale) as u32).max(1), ((h as f32 * scale) as u32).max(1));
    Some(crate::resample::resize(image, Some([left, top, w, h]), sw, sh))
}

impl Pipeline {
    /// Every face of `image` (at most `max_faces`, best detection scores first) with its template and
    /// the `extras` asked for.
    ///
    /// # Errors
    /// [`PipelineError::Config`] when liveness is asked of a pack without liveness models; inference
    /// failures.
    pub fn analyze_image(
        &self,
        image: &RgbImage,
        max_faces: usize,
        extras: Extras,
    ) -> Result<ImageAnalysis, PipelineError> {
        let analysis = self.analyze_limited_with(image, max_faces, extras.best_template)?;
        let faces_truncated = analysis.detected > analysis.faces.len();
        let mut faces = Vec::with_capacity(analysis.faces.len());
        for AnalyzedFace { face, embedding } in analysis.faces {
            faces.push(FaceAnalysis {
                sharpness: extras.sharpness.then(|| face_sharpness(image, &face)),
                liveness: if extras.liveness { Some(self.liveness(image, &face)?) } else { None },
                kept: if extras.kept { KeptFace::cut(image, &face) } else { None },
                crop: if extras.crop { aligned_jpeg(image, &face) } else { None },
                face,
                embedding,
            });
        }
        Ok(ImageAnalysis {
            width: image.width(),
            height: image.height(),
            faces,
            faces_truncated,
            timings: analysis.timings,
            decode: Duration::ZERO,
        })
    }

    /// [`Pipeline::analyze_image`] of an encoded image, decoded within `limits`.
    ///
    /// # Errors
    /// [`PipelineError::Image`] for a bad image; as [`Pipeline::analyze_image`].
    pub fn analyze_encoded(
        &self,
        bytes: &[u8],
        limits: &DecodeLimits,
        max_faces: usize,
        extras: Extras,
    ) -> Result<ImageAnalysis, PipelineError> {
        let started = Instant::now();
        let image = decode_image(bytes, limits)?;
        let decode = started.elapsed();
        Ok(ImageAnalysis { decode, ..self.analyze_image(&image, max_faces, extras)? })
    }
}
