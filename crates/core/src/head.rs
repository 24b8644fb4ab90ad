//! A trained linear projection applied to the embedder's output: the adapted templates of a pack made
//! by `facegate train --mode embedding`. Weights arrive as SafeTensors bytes (one `weight` tensor,
//! `[output, input]`, f32), the layout of a linear layer without bias.

use serde::{Deserialize, Serialize};

use crate::embed::Embedding;
use crate::error::PipelineError;

/// Name of the weight tensor inside the SafeTensors file.
pub const HEAD_WEIGHT_TENSOR: &str = "weight";

/// How a pack's projection head is described in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadSpec {
    /// SafeTensors file, relative to the pack's folder (absolute once the pack is registered).
    pub file: String,
    /// Expected sha256 of the file, lowercase hex.
    pub sha256: String,
    /// Length of the embedder's output the head takes.
    pub input_size: usize,
    /// Length of the adapted embedding.
    pub output_size: usize,
}

/// `y = W x`, then L2-normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionHead {
    weight: Vec<f32>,
    input_size: usize,
    output_size: usize,
}

impl ProjectionHead {
    /// A head from a row-major `[output_size, input_size]` matrix.
    ///
    /// # Errors
    /// [`PipelineError::Config`] when the sizes do not match the data or a weight is not finite.
    pub fn new(weight: Vec<f32>, input_size: usize, output_size: usize) -> Result<Self, PipelineError> {
        if input_size == 0 || output_size == 0 || weight.len() != input_size * output_size {
            return Err(PipelineError::Config(format!(
                "projection head of {} weights is not {output_size}x{input_size}",
                weight.len()
            )));
        }
        if weight.iter().any(|w| !w.is_finite()) {
            return Err(PipelineError::Config("projection head has non-finite weights".into()));
        }
        Ok(Self { weight, input_size, output_size })
    }

    /// Parses the SafeTensors file a pack ships, checking it against the manifest's sizes.
    ///
    /// # Errors
    /// [`PipelineError::Config`] for a malformed file, a missing tensor, or sizes that differ from `spec`.
    pub fn from_safetensors(bytes: &[u8], spec: &HeadSpec) -> Result<Self, PipelineError> {
        let bad = |why: String| PipelineError::Config(format!("projection head {}: {why}", spec.file));
        let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let view = tensors.tensor(HEAD_WEIGHT_TENSOR).map_err(|e| bad(e.to_string()))?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape() != [spec.output_size, spec.input_size] {
            return Err(bad(format!(
                "tensor `{HEAD_WEIGHT_TENSOR}` is {:?} {:?}, expected F32 [{}, {}]",
                view.dtype(),
                view.shape(),
                spec.output_size,
                spec.input_size
            )));
        }
        let weight = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Self::new(weight, spec.input_size, spec.output_size)
    }

    /// The SafeTensors bytes of this head (what `from_safetensors` reads).
    ///
    /// # Errors
    /// [`PipelineError::Config`] if serialisation fails.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, PipelineError> {
        let bytes: Vec<u8> = self.weight.iter().flat_map(|w| w.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            vec![self.output_size, self.input_size],
            &bytes,
        )
        .map_err(|e| PipelineError::Config(e.to_string()))?;
        safetensors::serialize([(HEAD_WEIGHT_TENSOR, view)], None).map_err(|e| PipelineError::Config(e.to_string()))
    }

    /// Length of the embeddings the head takes.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Length of the embeddings the head gives.
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// Projects raw values (any length-`input_size` vector) without normalising.
    pub fn project_raw(&self, values: &[f32]) -> Vec<f32> {
        self.weight.chunks_exact(self.input_size).map(|row| row.iter().zip(values).map(|(w, x)| w * x).sum()).collect()
    }

    /// The adapted template of a pretrained embedding.
    ///
    /// # Errors
    /// [`PipelineError::Config`] when the embedding's length is not the head's input size, or the
    /// projection is zero.
    pub fn project(&self, embedding: &Embedding) -> Result<Embedding, PipelineError> {
        if embedding.len() != self.input_size {
            return Err(PipelineError::Config(format!(
                "projection head takes {} values, the embedder gives {}",
                self.input_size,
                embedding.len()
            )));
        }
        Embedding::from_raw(self.project_raw(embedding.as_slice()))
            .ok_or_else(|| PipelineError::Config("projection head maps this face to zero".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_safetensors_and_projects() {
        let head = ProjectionHead::new(vec![0.0, 1.0, 2.0, 0.0], 2, 2).expect("head");
        let bytes = head.to_safetensors().expect("serialise");
        let spec = HeadSpec { file: "head.safetensors".into(), sha256: String::new(), input_size: 2, output_size: 2 };
        let loaded = ProjectionHead::from_safetensors(&bytes, &spec).expect("parse");
        assert_eq!(loaded, head);
        let e = Embedding::from_raw(vec![1.0, 0.0]).expect("unit");
        // [0 1; 2 0] · [1 0] = [0 2] → [0 1]
        assert_eq!(loaded.project(&e).expect("project").as_slice(), &[0.0, 1.0]);
        let wrong = HeadSpec { output_size: 3, ..spec };
        assert!(ProjectionHead::from_safetensors(&bytes, &wrong).is_err());
        assert!(ProjectionHead::from_safetensors(b"not a safetensors file", &wrong).is_err());
    }
}
