//! YuNet (2023mar, libfacedetection.train), run at the image's own aspect ratio: the image is downscaled
//! to `max_side` if larger and zero-padded up to multiples of 32, never stretched to 640×640.

use image::RgbImage;

use super::{DetectedFace, Detector, DetectorConfig, nms, output_at, prepare_input, to_image_space};
use crate::error::PipelineError;
use crate::geometry::{BoundingBox, Point};
use crate::onnx::{ModelFile, OnnxModel};

const STRIDES: [usize; 3] = [8, 16, 32];
const ALIGN: u32 = 32;

/// The YuNet detector on a dynamic-input ONNX export.
pub struct YuNetDetector {
    model: OnnxModel,
}

impl YuNetDetector {
    /// Builds the session from the model file's bytes in an initialised ONNX Runtime environment.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when ONNX Runtime rejects the model.
    pub fn load(file: ModelFile<'_>) -> Result<Self, PipelineError> {
        Ok(Self { model: OnnxModel::load(file)? })
    }
}

impl Detector for YuNetDetector {
    fn detect(&self, image: &RgbImage, config: &DetectorConfig) -> Result<Vec<DetectedFace>, PipelineError> {
        let longest = image.width().max(image.height());
        let scale = if longest > config.max_side { config.max_side as f32 / longest as f32 } else { 1.0 };
        let scaled_w = ((image.width() as f32 * scale).round() as u32).max(1);
        let scaled_h = ((image.height() as f32 * scale).round() as u32).max(1);
        let width = scaled_w.div_ceil(ALIGN) * ALIGN;
        let height = scaled_h.div_ceil(ALIGN) * ALIGN;
        let input = prepare_input(image, scale, width as usize, height as usize, self.model.spec());
        let shape = [1, 3, input.height, input.width];
        let candidates = self.model.run(shape, input.tensor, |outputs| {
            let mut faces = Vec::new();
            for stride in STRIDES {
                let cols = input.width / stride;
                let rows = input.height / stride;
                let anchors = cols * rows;
                let named = |prefix: &str, width: usize| {
                    outputs
                        .iter()
                        .find(|(name, _, _)| name == &format!("{prefix}_{stride}"))
                        .map(|(_, _, data)| *data)
                        .filter(|data| data.len() == anchors * width)
                        .map_or_else(|| output_at(outputs, width, anchors), Ok)
                };
                let cls = named("cls", 1)?;
                let obj = named("obj", 1)?;
                let bbox = named("bbox", 4)?;
                let kps = named("kps", 10)?;
                let s = stride as f32;
                for i in 0..anchors {
                    let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                    if score < config.score_threshold {
                        continue;
                    }
                    let (col, row) = ((i % cols) as f32, (i / cols) as f32);
                    let b = &bbox[i * 4..i * 4 + 4];
                    let cx = (col + b[0]) * s;
                    let cy = (row + b[1]) * s;
                    let w = b[2].exp() * s;
                    let h = b[3].exp() * s;
                    let k = &kps[i * 10..i * 10 + 10];
                    let landmarks: [Point; 5] =
                        std::array::from_fn(|n| Point::new((k[2 * n] + col) * s, (k[2 * n + 1] + row) * s));
                    let bbox = BoundingBox { x: cx - w / 2.0, y: cy - h / 2.0, width: w, height: h };
                    faces.push(to_image_space(bbox, landmarks, score, input.scale, image));
                }
            }
            Ok(faces)
        })?;
        Ok(nms(candidates, config.nms_iou, config.max_faces))
    }
}
