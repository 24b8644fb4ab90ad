//! Optional stage between detection and alignment: a small CNN that places the 5 landmarks again from
//! the detector's box, for embedders trained on its landmark convention (Open Model Zoo's
//! `landmarks-regression-retail-0009` for `face-reidentification-retail-0095`).

use image::RgbImage;

use crate::align::sample_bilinear;
use crate::error::PipelineError;
use crate::geometry::{BoundingBox, Point};
use crate::onnx::{ModelFile, OnnxModel};
use crate::pack::ModelSpec;

/// Input side of a landmark model without an `input_size` in its manifest entry, pixels.
const DEFAULT_SIDE: u32 = 48;

/// A landmark regression CNN: the face box stretched to its input, 5 points out, each `(x, y)` as a
/// fraction of the box.
pub struct LandmarkModel {
    model: OnnxModel,
}

impl LandmarkModel {
    /// Builds the session from the model file's bytes.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when ONNX Runtime rejects the model.
    pub fn load(file: ModelFile<'_>) -> Result<Self, PipelineError> {
        Ok(Self { model: OnnxModel::load(file)? })
    }

    /// The manifest entry of the model.
    pub fn spec(&self) -> &ModelSpec {
        self.model.spec()
    }

    /// The 5 landmarks of the face in `bbox`, image pixels, in the detector's order (right eye, left eye,
    /// nose tip, right and left mouth corners: the subject's sides).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the run fails, [`PipelineError::ModelOutput`] for an output
    /// that is not 10 finite values.
    pub fn locate(&self, image: &RgbImage, bbox: &BoundingBox) -> Result<[Point; 5], PipelineError> {
        let spec = self.model.spec();
        let [width, height] = spec.input_size.unwrap_or([DEFAULT_SIDE, DEFAULT_SIDE]);
        let (w, h) = (width as usize, height as usize);
        let plane = w * h;
        let order = spec.channel_order.rgb_indices();
        let (step_x, step_y) = (bbox.width / width as f32, bbox.height / height as f32);
        let mut tensor = vec![0.0f32; 3 * plane];
        for y in 0..h {
            for x in 0..w {
                let source_x = bbox.x + (x as f32 + 0.5) * step_x - 0.5;
                let source_y = bbox.y + (y as f32 + 0.5) * step_y - 0.5;
                let pixel = sample_bilinear(image, source_x, source_y);
                for c in 0..3 {
                    tensor[c * plane + y * w + x] = (f32::from(pixel[order[c]]) - spec.mean[c]) / spec.std[c];
                }
            }
        }
        self.model.run([1, 3, h, w], tensor, |outputs| {
            let (_, shape, data) = outputs
                .first()
                .ok_or_else(|| PipelineError::ModelOutput("landmark model produced no output".into()))?;
            if data.len() != 10 || data.iter().any(|v| !v.is_finite()) {
                return Err(PipelineError::ModelOutput(format!("unexpected landmark output shape {shape:?}")));
            }
            Ok(std::array::from_fn(|i| {
                Point::new(bbox.x + data[2 * i] * bbox.width, bbox.y + data[2 * i + 1] * bbox.height)
            }))
        })
    }
}
