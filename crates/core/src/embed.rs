//! Stage 3: embedding. Aligned crops (112×112 unless the model's alignment says otherwise) are
//! normalised per the model's manifest entry, run through the CNN in one batch (each face and, with
//! flip-averaging, its mirror image; in runs of `max_batch` for a fixed-batch model), and L2-normalised.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::Alignment;
use crate::error::PipelineError;
use crate::onnx::{ModelFile, OnnxModel};
use crate::pack::ModelSpec;

/// An L2-normalised face embedding: the template stored in galleries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises a raw vector to unit length; `None` for an all-zero or non-finite vector.
    pub fn from_raw(mut values: Vec<f32>) -> Option<Self> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        values.iter_mut().for_each(|v| *v /= norm);
        Some(Self(values))
    }

    /// The unit-length values.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-dimensional embedding (never produced by the embedder).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Cosine similarity in -1..=1 (both sides are unit length, so this is the dot product).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        crate::compare::cosine(&self.0, &other.0)
    }
}

/// Embedding options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedderConfig {
    /// Average each face's embedding with its mirror image's (more robust; costs a second crop per face).
    pub flip: bool,
    /// Overrides the manifest's `(mean, std)`; for ablations only.
    pub normalization: Option<([f32; 3], [f32; 3])>,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        Self { flip: true, normalization: None }
    }
}

/// A face embedding CNN taking aligned crops.
pub struct Embedder {
    model: OnnxModel,
}

impl Embedder {
    /// Builds the session from the model file's bytes in an initialised ONNX Runtime environment.
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

    /// The alignment the model takes (crop size and template).
    pub fn alignment(&self) -> Alignment {
        self.model.spec().alignment()
    }

    /// Embeds aligned crops in order, in one model run (or runs of `max_batch` where the model has a
    /// fixed batch size).
    ///
    /// # Errors
    /// [`PipelineError::Config`] for a crop of the wrong size, [`PipelineError::Inference`] when the run
    /// fails, [`PipelineError::ModelOutput`] for a degenerate output.
    pub fn embed(&self, faces: &[&RgbImage], config: &EmbedderConfig) -> Result<Vec<Embedding>, PipelineError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.alignment().size;
        if let Some(bad) = faces.iter().find(|f| f.dimensions() != (size, size)) {
            return Err(PipelineError::Config(format!(
                "aligned crop is {:?}, expected {size}x{size}",
                bad.dimensions()
            )));
        }
        let (mean, std) = config.normalization.unwrap_or((self.model.spec().mean, self.model.spec().std));
        let copies = if config.flip { 2 } else { 1 };
        let batch = faces.len() * copies;
        let side = size as usize;
        let plane = side * side;
        let mut tensor = vec![0.0f32; batch * 3 * plane];
        let order = self.model.spec().channel_order.rgb_indices();
        for (f, face) in faces.iter().enumerate() {
            for copy in 0..copies {
                let base = (f * copies + copy) * 3 * plane;
                for (x, y, pixel) in face.enumerate_pixels() {
                    let x = if copy == 1 { side - 1 - x as usize } else { x as usize };
                    let at = y as usize * side + x;
                    for c in 0..3 {
                        tensor[base + c * plane + at] = (f32::from(pixel[order[c]]) - mean[c]) / std[c];
                    }
                }
            }
        }
        let run_size = self.model.spec().max_batch.unwrap_or(batch).clamp(1, batch);
        let (mut data, mut rest, mut run) = (Vec::new(), tensor, 0);
        while !rest.is_empty() {
            // The whole batch moves into one run without a copy; a fixed-batch model takes it in parts.
            let tail = rest.split_off((run_size * 3 * plane).min(rest.len()));
            let input = std::mem::replace(&mut rest, tail);
            let items = input.len() / (3 * plane);
            run += 1;
            let output = self.model.run([items, 3, side, side], input, |outputs| {
                let (_, shape, data) =
                    outputs.first().ok_or_else(|| PipelineError::ModelOutput("embedder produced no output".into()))?;
                if data.is_empty() || data.len() % items != 0 || shape.first() != Some(&(items as i64)) {
                    return Err(PipelineError::ModelOutput(format!(
                        "unexpected embedding shape {shape:?} (run {run})"
                    )));
                }
                Ok(data.to_vec())
            })?;
            data.extend(output);
        }
        let dim = data.len() / batch;
        data.chunks(dim * copies)
            .map(|chunk| {
                let summed: Vec<f32> = (0..dim).map(|i| (0..copies).map(|c| chunk[c * dim + i]).sum()).collect();
                Embedding::from_raw(summed)
                    .ok_or_else(|| PipelineError::ModelOutput("embedding is zero or not finite".into()))
            })
            .collect()
    }
}
