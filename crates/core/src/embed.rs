//! Stage 3: embedding. Aligned crops (112×112 unless the model's alignment says otherwise) are
//! normalised per the model's manifest entry, run through the CNN in one batch (each face and, with
//! flip-averaging, its mirror image; in runs of `max_batch` for a fixed-batch model), and L2-normalised.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::Alignment;
use crate::error::PipelineError;
use crate::onnx::{Backend, ModelFile, OnnxModel, OpenVino, Precision};
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

/// Which faces are embedded with their mirror image too (the template the mean of both: a little more
/// robust, a second model run per face).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mirror {
    /// Every face.
    #[default]
    Always,
    /// Templates that are kept (enrolment) and hard faces: ones the detector is unsure of, or turned
    /// away (see [`is_hard_face`]).
    Hard,
    /// Templates that are kept only: a probe is embedded once.
    Kept,
    /// None (an ablation).
    Never,
}

impl Mirror {
    /// Whether `face` is embedded with its mirror image under this policy; `kept`: its template is kept.
    pub fn applies(self, face: &crate::DetectedFace, kept: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Hard => kept || is_hard_face(face),
            Self::Kept => kept,
            Self::Never => false,
        }
    }
}

/// A detector score under which a face counts as hard.
pub const HARD_FACE_SCORE: f32 = 0.8;

/// A yaw (the nose's distance from the middle of the eyes, in eye distances) over which a face counts as
/// hard.
pub const HARD_FACE_YAW: f32 = 0.2;

/// A face the mirror helps: the detector is unsure of it ([`HARD_FACE_SCORE`]) or it is turned away
/// ([`HARD_FACE_YAW`], from the landmarks).
pub fn is_hard_face(face: &crate::DetectedFace) -> bool {
    face.score < HARD_FACE_SCORE || face_yaw(face) > HARD_FACE_YAW
}

/// How far a face is turned, from its landmarks: the nose's distance from the middle of the eyes in eye
/// distances (0 frontal, about 0.5 in profile).
pub fn face_yaw(face: &crate::DetectedFace) -> f32 {
    let [right_eye, left_eye, nose, ..] = face.landmarks;
    let eyes = ((left_eye.x - right_eye.x).powi(2) + (left_eye.y - right_eye.y).powi(2)).sqrt().max(1.0);
    ((nose.x - (right_eye.x + left_eye.x) / 2.0) / eyes).abs()
}

/// Embedding options.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EmbedderConfig {
    /// Which faces are embedded with their mirror image too; `None`: the pack's choice
    /// ([`crate::PackSpec::mirror`]), set when the pipeline is loaded.
    pub mirror: Option<Mirror>,
    /// Overrides the manifest's `(mean, std)`; for ablations only.
    pub normalization: Option<([f32; 3], [f32; 3])>,
}

impl EmbedderConfig {
    /// The mirror policy in force ([`Mirror::Always`] where none was chosen).
    pub fn mirror_policy(&self) -> Mirror {
        self.mirror.unwrap_or_default()
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

    /// Compiles the model's bytes (an ONNX file, or an IR's graph and its `weights`) for OpenVINO's CPU
    /// plugin at `precision`, with `threads` inference threads.
    ///
    /// # Errors
    /// [`PipelineError::OpenVino`] when OpenVINO does not read, reshape or compile the model.
    pub fn load_openvino(
        openvino: &OpenVino,
        spec: &ModelSpec,
        files: (&[u8], Option<&[u8]>),
        precision: Precision,
        threads: usize,
    ) -> Result<Self, PipelineError> {
        let side = spec.alignment().size;
        Ok(Self { model: OnnxModel::load_openvino(openvino, spec, files, side, precision, threads)? })
    }

    /// The runtime and precision the embedder runs on.
    pub fn runtime(&self) -> (Backend, Precision) {
        self.model.runtime()
    }

    /// The manifest entry of the model.
    pub fn spec(&self) -> &ModelSpec {
        self.model.spec()
    }

    /// The alignment the model takes (crop size and template).
    pub fn alignment(&self) -> Alignment {
        self.model.spec().alignment()
    }

    /// Embeds aligned crops in order, each with its mirror image too unless the policy is
    /// [`Mirror::Never`] (crops embedded here are kept templates, or have no landmarks to judge), in one
    /// model run (or runs of `max_batch` where the model has a fixed batch size).
    ///
    /// # Errors
    /// As [`Embedder::embed_mirrored`].
    pub fn embed(&self, faces: &[&RgbImage], config: &EmbedderConfig) -> Result<Vec<Embedding>, PipelineError> {
        let mirrored = vec![config.mirror_policy() != Mirror::Never; faces.len()];
        self.embed_mirrored(faces, &mirrored, config)
    }

    /// Embeds aligned crops in order, each with its mirror image too where `mirrored` says so, in one
    /// model run (or runs of `max_batch` where the model has a fixed batch size).
    ///
    /// # Errors
    /// [`PipelineError::Config`] for a crop of the wrong size or a `mirrored` of another length,
    /// [`PipelineError::Inference`] when the run fails, [`PipelineError::ModelOutput`] for a degenerate
    /// output.
    pub fn embed_mirrored(
        &self,
        faces: &[&RgbImage],
        mirrored: &[bool],
        config: &EmbedderConfig,
    ) -> Result<Vec<Embedding>, PipelineError> {
        if mirrored.len() != faces.len() {
            return Err(PipelineError::Config("one mirror choice per face".into()));
        }
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
        let copies: Vec<usize> = mirrored.iter().map(|m| if *m { 2 } else { 1 }).collect();
        let batch: usize = copies.iter().sum();
        let side = size as usize;
        let plane = side * side;
        let mut tensor = vec![0.0f32; batch * 3 * plane];
        let order = self.model.spec().channel_order.rgb_indices();
        let mut item = 0;
        for (face, copies) in faces.iter().zip(&copies) {
            for copy in 0..*copies {
                let base = item * 3 * plane;
                item += 1;
                for (x, y, pixel) in face.enumerate_pixels() {
                    let x = if copy == 1 { side - 1 - x as usize } else { x as usize };
                    let at = y as usize * side + x;
                    for c in 0..3 {
                        tensor[base + c * plane + at] = (f32::from(pixel[order[c]]) - mean[c]) / std[c];
                    }
                }
            }
        }
        let run_size = self.model.max_batch().unwrap_or(batch).clamp(1, batch);
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
        let mut rows = data.chunks(dim);
        copies
            .iter()
            .map(|copies| {
                let mut summed = vec![0.0f32; dim];
                for row in rows.by_ref().take(*copies) {
                    summed.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
                Embedding::from_raw(summed)
                    .ok_or_else(|| PipelineError::ModelOutput("embedding is zero or not finite".into()))
            })
            .collect()
    }
}
