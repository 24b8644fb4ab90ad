//! SCRFD (InsightFace) with keypoints, on fixed 640×640 exports: the image is letterboxed (scaled to fit,
//! padded right and bottom). Two anchors per cell; boxes and landmarks are distances from the anchor centre.

use image::RgbImage;

use super::{DetectedFace, Detector, DetectorConfig, nms, output_at, prepare_input, to_image_space};
use crate::error::PipelineError;
use crate::geometry::{BoundingBox, Point};
use crate::onnx::{ModelFile, OnnxModel};

const STRIDES: [usize; 3] = [8, 16, 32];
const ANCHORS_PER_CELL: usize = 2;
const DEFAULT_INPUT: [u32; 2] = [640, 640];

/// The SCRFD detector (500M or 2.5G with keypoints).
pub struct ScrfdDetector {
    model: OnnxModel,
}

impl ScrfdDetector {
    /// Builds the session from the model file's bytes in an initialised ONNX Runtime environment.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when ONNX Runtime rejects the model.
    pub fn load(file: ModelFile<'_>) -> Result<Self, PipelineError> {
        Ok(Self { model: OnnxModel::load(file)? })
    }
}

impl Detector for ScrfdDetector {
    fn detect(&self, image: &RgbImage, config: &DetectorConfig) -> Result<Vec<DetectedFace>, PipelineError> {
        let [width, height] = self.model.spec().input_size.unwrap_or(DEFAULT_INPUT);
        let scale = (width as f32 / image.width() as f32).min(height as f32 / image.height() as f32);
        let input = prepare_input(image, scale, width as usize, height as usize, self.model.spec());
        let shape = [1, 3, input.height, input.width];
        let candidates = self.model.run(shape, input.tensor, |outputs| {
            let mut faces = Vec::new();
            for stride in STRIDES {
                let cols = input.width / stride;
                let anchors = cols * (input.height / stride) * ANCHORS_PER_CELL;
                let scores = output_at(outputs, 1, anchors)?;
                let boxes = output_at(outputs, 4, anchors)?;
                let kps = output_at(outputs, 10, anchors)?;
                let s = stride as f32;
                for i in 0..anchors {
                    let score = scores[i];
                    if score < config.score_threshold {
                        continue;
                    }
                    let cell = i / ANCHORS_PER_CELL;
                    let cx = (cell % cols) as f32 * s;
                    let cy = (cell / cols) as f32 * s;
                    let d = &boxes[i * 4..i * 4 + 4];
                    let (x1, y1, x2, y2) = (cx - d[0] * s, cy - d[1] * s, cx + d[2] * s, cy + d[3] * s);
                    let k = &kps[i * 10..i * 10 + 10];
                    let landmarks: [Point; 5] =
                        std::array::from_fn(|n| Point::new(cx + k[2 * n] * s, cy + k[2 * n + 1] * s));
                    let bbox = BoundingBox { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
                    faces.push(to_image_space(bbox, landmarks, score, input.scale, image));
                }
            }
            Ok(faces)
        })?;
        Ok(nms(candidates, config.nms_iou, config.max_faces))
    }
}
