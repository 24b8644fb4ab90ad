//! Stage 1: face detection. Every detector gives boxes, 5 landmarks in the ArcFace order (subject's
//! right eye, left eye, nose tip, right mouth corner, left mouth corner) and a score in 0..1.

mod scrfd;
mod yunet;

pub use scrfd::ScrfdDetector;
pub use yunet::YuNetDetector;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::geometry::{BoundingBox, Point};
use crate::pack::ModelSpec;

/// One face found in an image, in the image's own pixel coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DetectedFace {
    /// Face box in pixels.
    pub bbox: BoundingBox,
    /// Face box in 0..1 fractions of the image width and height.
    pub bbox_normalized: BoundingBox,
    /// Right eye, left eye, nose tip, right mouth corner, left mouth corner (the subject's sides).
    pub landmarks: [Point; 5],
    /// Detector confidence in 0..1 (a detector score, not a probability).
    pub score: f32,
}

/// Detection settings shared by all detectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Faces scoring below this are dropped.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are suppressed.
    pub nms_iou: f32,
    /// At most this many faces are returned, best first.
    pub max_faces: usize,
    /// Images whose longest side exceeds this are downscaled before detection (dynamic-size detectors).
    pub max_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self { score_threshold: 0.7, nms_iou: 0.3, max_faces: 100, max_side: 640 }
    }
}

/// A face detector: image in, faces out, best score first.
pub trait Detector: Send + Sync {
    /// Finds faces in an RGB image.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the model fails to run.
    fn detect(&self, image: &RgbImage, config: &DetectorConfig) -> Result<Vec<DetectedFace>, PipelineError>;
}

/// Greedy non-maximum suppression: keeps the best-scoring face of each overlapping group, at most `max`.
pub fn nms(mut faces: Vec<DetectedFace>, iou_threshold: f32, max: usize) -> Vec<DetectedFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DetectedFace> = Vec::new();
    for face in faces {
        if kept.len() >= max {
            break;
        }
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou_threshold) {
            kept.push(face);
        }
    }
    kept
}

/// The largest face: the subject of an enrolment photo or a probe when bystanders are also found.
pub fn largest_face<T: AsRef<DetectedFace>>(faces: Vec<T>) -> Option<T> {
    faces.into_iter().max_by(|a, b| a.as_ref().bbox.area().total_cmp(&b.as_ref().bbox.area()))
}

impl AsRef<DetectedFace> for DetectedFace {
    fn as_ref(&self) -> &DetectedFace {
        self
    }
}

/// The labelled person's face in a photo centred on them (a dataset photo, an LFW image): among faces
/// at least half as large as the largest, the one nearest the image centre (the larger on a tie).
/// Bystanders behind the subject are smaller or off-centre.
pub fn subject_face(faces: Vec<DetectedFace>, width: f32, height: f32) -> Option<DetectedFace> {
    let largest = faces.iter().map(|f| f.bbox.area()).fold(0.0f32, f32::max);
    let distance = |f: &DetectedFace| {
        let (cx, cy) = (f.bbox.x + f.bbox.width / 2.0 - width / 2.0, f.bbox.y + f.bbox.height / 2.0 - height / 2.0);
        cx * cx + cy * cy
    };
    let candidates: Vec<DetectedFace> = faces.into_iter().filter(|f| f.bbox.area() >= 0.5 * largest).collect();
    let nearest = candidates.iter().map(distance).fold(f32::INFINITY, f32::min);
    candidates.into_iter().filter(|f| distance(f) <= nearest).max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
}

/// A model input prepared from an image: planar float tensor plus the scale that maps it back.
pub(crate) struct DetectorInput {
    pub(crate) tensor: Vec<f32>,
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// Input pixels per image pixel.
    pub(crate) scale: f32,
}

/// Scales the image by `scale`, pastes it at the top-left of a `width` × `height` canvas (zero padding)
/// and writes it as a normalised NCHW tensor in the model's channel order.
pub(crate) fn prepare_input(
    image: &RgbImage,
    scale: f32,
    width: usize,
    height: usize,
    spec: &ModelSpec,
) -> DetectorInput {
    let (iw, ih) = image.dimensions();
    let sw = ((iw as f32 * scale).round() as u32).clamp(1, width as u32);
    let sh = ((ih as f32 * scale).round() as u32).clamp(1, height as u32);
    let resized;
    let source = if (sw, sh) == (iw, ih) {
        image
    } else {
        resized = crate::resample::resize(image, None, sw, sh);
        &resized
    };
    let plane = width * height;
    let mut tensor = vec![0.0f32; 3 * plane];
    let order = spec.channel_order.rgb_indices();
    let pad: [f32; 3] = std::array::from_fn(|c| (0.0 - spec.mean[c]) / spec.std[c]);
    for (c, value) in pad.iter().enumerate() {
        tensor[c * plane..(c + 1) * plane].fill(*value);
    }
    for (y, row) in source.rows().enumerate() {
        for (x, pixel) in row.enumerate() {
            let at = y * width + x;
            for c in 0..3 {
                tensor[c * plane + at] = (f32::from(pixel[order[c]]) - spec.mean[c]) / spec.std[c];
            }
        }
    }
    DetectorInput { tensor, width, height, scale: source.width() as f32 / iw as f32 }
}

/// Maps a face from model-input coordinates back to the image and fills in the normalised box.
pub(crate) fn to_image_space(
    bbox: BoundingBox,
    landmarks: [Point; 5],
    score: f32,
    scale: f32,
    image: &RgbImage,
) -> DetectedFace {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let inv = 1.0 / scale;
    let bbox = bbox.scaled(inv, inv).clipped(w, h);
    DetectedFace {
        bbox,
        bbox_normalized: bbox.scaled(1.0 / w, 1.0 / h),
        landmarks: landmarks.map(|p| Point::new(p.x * inv, p.y * inv)),
        score,
    }
}

/// Finds the output tensor of one kind (`width` values per anchor) at one stride.
pub(crate) fn output_at<'a>(
    outputs: &'a [(String, Vec<i64>, &'a [f32])],
    width: usize,
    anchors: usize,
) -> Result<&'a [f32], PipelineError> {
    outputs
        .iter()
        .find(|(_, shape, data)| shape.last() == Some(&(width as i64)) && data.len() == anchors * width)
        .map(|(_, _, data)| *data)
        .ok_or_else(|| PipelineError::ModelOutput(format!("no output with {anchors} anchors of {width} values")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> DetectedFace {
        DetectedFace {
            bbox: BoundingBox { x, y: 0.0, width: 10.0, height: 10.0 },
            bbox_normalized: BoundingBox::default(),
            landmarks: [Point::default(); 5],
            score,
        }
    }

    #[test]
    fn subject_is_the_large_face_nearest_the_centre() {
        let sized = |x: f32, y: f32, side: f32| DetectedFace {
            bbox: BoundingBox { x, y, width: side, height: side },
            ..face(0.0, 0.9)
        };
        // 100×100 photo: a big bystander at the edge, the subject centred, a tiny face at the very centre.
        let faces = vec![sized(0.0, 0.0, 40.0), sized(32.0, 32.0, 36.0), sized(48.0, 48.0, 4.0)];
        assert_eq!(subject_face(faces, 100.0, 100.0).map(|f| f.bbox.x), Some(32.0));
        assert!(subject_face(Vec::new(), 100.0, 100.0).is_none());
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let kept = nms(vec![face(0.0, 0.5), face(1.0, 0.9), face(50.0, 0.7)], 0.3, 10);
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
        assert_eq!(nms(vec![face(0.0, 0.5), face(50.0, 0.7)], 0.3, 1).len(), 1);
    }
}
