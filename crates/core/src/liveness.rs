//! Liveness (presentation-attack detection) as a pipeline stage: Minivision's Silent-Face-Anti-Spoofing
//! MiniFASNet models, each on a crop around the detector's box at its own scale, preprocessed as the
//! original `src/generate_patches.py` `CropImage` does (the box scaled about its centre, shifted back
//! inside the image, cut out and resized bilinearly to the model's input, BGR 0..255), their softmaxes
//! averaged as the original `test.py` fuses them. The score is the fused "real" probability-like value:
//! not a calibrated probability; the threshold comes from measured error rates.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::geometry::BoundingBox;
use crate::onnx::{ModelFile, OnnxModel, OrtEnvironment, RuntimeConfig};
use crate::pack::{LivenessSpec, ModelSpec};

/// Index of the "real" class in the models' 3 outputs (0: print, 1: real, 2: replay).
const REAL_CLASS: usize = 1;

/// One face's liveness: the fused score, the threshold it was held to, and the decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LivenessScore {
    /// Fused "real" score in 0..1 (not a probability).
    pub score: f32,
    /// The threshold: live at or above it.
    pub threshold: f32,
    /// `score >= threshold`.
    pub live: bool,
}

/// One MiniFASNet model and the scale of its crop.
struct LivenessModel {
    model: OnnxModel,
    scale: f32,
}

/// The models of a liveness pack, fused.
pub struct Liveness {
    spec: LivenessSpec,
    models: Vec<LivenessModel>,
}

impl Liveness {
    /// Builds the sessions from `(manifest entry, file bytes)` of each model of `spec`.
    ///
    /// # Errors
    /// [`PipelineError::Config`] for a model without `crop_scale` or input size;
    /// [`PipelineError::Inference`] when ONNX Runtime rejects one.
    pub fn load(
        environment: &OrtEnvironment,
        spec: &LivenessSpec,
        models: &[(&ModelSpec, &[u8])],
        runtime: &RuntimeConfig,
    ) -> Result<Self, PipelineError> {
        let mut loaded = Vec::with_capacity(models.len());
        for (model_spec, bytes) in models {
            let scale = model_spec.crop_scale.filter(|s| *s > 0.0).ok_or_else(|| {
                PipelineError::Config(format!("liveness model {} has no crop_scale", model_spec.name))
            })?;
            if model_spec.input_size.is_none() {
                return Err(PipelineError::Config(format!("liveness model {} has no input_size", model_spec.name)));
            }
            loaded.push(LivenessModel {
                model: OnnxModel::load(ModelFile { environment, spec: model_spec, bytes, runtime })?,
                scale,
            });
        }
        if loaded.is_empty() {
            return Err(PipelineError::Config(format!("liveness pack {} has no model", spec.name)));
        }
        Ok(Self { spec: spec.clone(), models: loaded })
    }

    /// The liveness pack's manifest entry.
    pub fn spec(&self) -> &LivenessSpec {
        &self.spec
    }

    /// The liveness of the face in `bbox` of `image` (the whole frame: the models look at the
    /// surroundings of the face, where a print's or a screen's edges show).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a run fails; [`PipelineError::ModelOutput`] for an output that
    /// is not 3 finite logits.
    pub fn score(&self, image: &RgbImage, bbox: &BoundingBox) -> Result<LivenessScore, PipelineError> {
        let mut sum = 0.0f32;
        for model in &self.models {
            let spec = model.model.spec();
            let [width, height] = spec.input_size.unwrap_or([80, 80]);
            let tensor = crop_tensor(image, bbox, model.scale, width, height, spec);
            sum += model.model.run([1, 3, height as usize, width as usize], tensor, |outputs| {
                let (_, shape, data) =
                    outputs.first().ok_or_else(|| PipelineError::ModelOutput("liveness model: no output".into()))?;
                if data.len() != 3 || data.iter().any(|v| !v.is_finite()) {
                    return Err(PipelineError::ModelOutput(format!("liveness output shape {shape:?}")));
                }
                let top = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exp: Vec<f32> = data.iter().map(|v| (v - top).exp()).collect();
                Ok(exp[REAL_CLASS] / exp.iter().sum::<f32>())
            })?;
        }
        let score = sum / self.models.len() as f32;
        let threshold = self.spec.threshold;
        Ok(LivenessScore { score, threshold, live: score >= threshold })
    }
}

/// The crop of the original `CropImage._get_new_box`: the box scaled by `scale` about its centre (at
/// most to the image's size), shifted back inside the image; integer pixel bounds, inclusive.
pub fn crop_box(image_width: u32, image_height: u32, bbox: &BoundingBox, scale: f32) -> [u32; 4] {
    let (src_w, src_h) = (image_width as f32, image_height as f32);
    let (box_w, box_h) = (bbox.width.max(1.0), bbox.height.max(1.0));
    let scale = scale.min((src_h - 1.0) / box_h).min((src_w - 1.0) / box_w);
    let (new_w, new_h) = (box_w * scale, box_h * scale);
    let (cx, cy) = (bbox.x + box_w / 2.0, bbox.y + box_h / 2.0);
    let (mut left, mut top, mut right, mut bottom) =
        (cx - new_w / 2.0, cy - new_h / 2.0, cx + new_w / 2.0, cy + new_h / 2.0);
    if left < 0.0 {
        right -= left;
        left = 0.0;
    }
    if top < 0.0 {
        bottom -= top;
        top = 0.0;
    }
    if right > src_w - 1.0 {
        left -= right - src_w + 1.0;
        right = src_w - 1.0;
    }
    if bottom > src_h - 1.0 {
        top -= bottom - src_h + 1.0;
        bottom = src_h - 1.0;
    }
    let clamp = |v: f32, most: f32| v.clamp(0.0, most) as u32;
    [clamp(left, src_w - 1.0), clamp(top, src_h - 1.0), clamp(right, src_w - 1.0), clamp(bottom, src_h - 1.0)]
}

/// The crop resized to `width` × `height` as OpenCV's bilinear `resize` does (pixel centres aligned,
/// edges replicated), as a planar tensor in the model's channel order and normalisation.
fn crop_tensor(
    image: &RgbImage,
    bbox: &BoundingBox,
    scale: f32,
    width: u32,
    height: u32,
    spec: &ModelSpec,
) -> Vec<f32> {
    let [x0, y0, x1, y1] = crop_box(image.width(), image.height(), bbox, scale);
    let (crop_w, crop_h) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
    let (sx, sy) = (crop_w / width as f32, crop_h / height as f32);
    let (w, h) = (width as usize, height as usize);
    let plane = w * h;
    let order = spec.channel_order.rgb_indices();
    let mut tensor = vec![0.0f32; 3 * plane];
    for y in 0..h {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, crop_h - 1.0);
        let (row0, wy) = (fy.floor(), fy - fy.floor());
        let row1 = (row0 + 1.0).min(crop_h - 1.0);
        for x in 0..w {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, crop_w - 1.0);
            let (col0, wx) = (fx.floor(), fx - fx.floor());
            let col1 = (col0 + 1.0).min(crop_w - 1.0);
            let at = |col: f32, row: f32| image.get_pixel(x0 + col as u32, y0 + row as u32);
            let (p00, p01, p10, p11) = (at(col0, row0), at(col1, row0), at(col0, row1), at(col1, row1));
            for c in 0..3 {
                let k = order[c];
                let top = f32::from(p00[k]) * (1.0 - wx) + f32::from(p01[k]) * wx;
                let bottom = f32::from(p10[k]) * (1.0 - wx) + f32::from(p11[k]) * wx;
                let value = top * (1.0 - wy) + bottom * wy;
                tensor[c * plane + y * w + x] = (value - spec.mean[c]) / spec.std[c];
            }
        }
    }
    tensor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_is_scaled_about_the_box_and_shifted_inside_the_image() {
        let bbox = BoundingBox { x: 100.0, y: 100.0, width: 50.0, height: 60.0 };
        assert_eq!(crop_box(640, 480, &bbox, 2.0), [75, 70, 175, 190]);
        // Near the left edge the crop keeps its size and moves right.
        let edge = BoundingBox { x: 5.0, y: 100.0, width: 50.0, height: 60.0 };
        assert_eq!(crop_box(640, 480, &edge, 2.0), [0, 70, 100, 190]);
        // A scale larger than the image allows is reduced to fit.
        let [left, top, right, bottom] = crop_box(200, 100, &bbox, 4.0);
        assert!(right - left <= 199 && bottom - top <= 99, "{:?}", (left, top, right, bottom));
    }
}
