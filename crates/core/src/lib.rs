//! The facegate recognition pipeline, in four stages:
//!
//! 1. **Detect** faces with a CNN detector that also gives 5 landmarks ([`Detector`]: YuNet or SCRFD).
//! 2. **Align** each face onto its embedder's template (the standard 112×112 ArcFace one unless the
//!    manifest says otherwise) with a least-squares similarity transform ([`Alignment`]); a pack may
//!    first place the landmarks again with a landmark model ([`LandmarkModel`]).
//! 3. **Embed** the aligned crops with a CNN ([`Embedder`]), batched, L2-normalised, flip-averaged.
//! 4. **Compare** embeddings by cosine score and decide at a threshold calibrated to a false-match rate
//!    ([`Calibration`]).
//!
//! The crate has no I/O of its own: images arrive as bytes ([`decode_image`]), models as bytes plus the
//! [`ModelSpec`] that describes them; reading files and fetching models is `facegate-models`' job.
//! ONNX Runtime must have been initialised (see `facegate_models::ModelCache::onnxruntime`) before a model loads.
//!
//! ```no_run
//! # fn demo(pipeline: &facegate_core::Pipeline, a: &[u8], b: &[u8]) -> Result<(), facegate_core::PipelineError> {
//! use facegate_core::{decode_image, DecodeLimits};
//! let faces_a = pipeline.analyze(&decode_image(a, &DecodeLimits::default())?)?;
//! let faces_b = pipeline.analyze(&decode_image(b, &DecodeLimits::default())?)?;
//! let score = faces_a[0].embedding.cosine(&faces_b[0].embedding);
//! let decision = pipeline.calibration().decide(score, 1e-3)?;
//! println!("score {score:.3}, same person: {}", decision.same);
//! # Ok(()) }
//! ```

mod align;
mod analysis;
mod compare;
mod detect;
mod dispatch;
mod embed;
mod error;
mod geometry;
mod head;
mod image_input;
mod keep;
mod landmarks;
mod liveness;
mod onnx;
mod pack;
mod pipeline;
mod resample;
mod sharpness;

pub use align::{
    ALIGNED_SIZE, ARCFACE_TEMPLATE, AlignedFace, Alignment, SimilarityTransform, align_face, crop_box_face,
    estimate_similarity,
};
pub use analysis::{Extras, FaceAnalysis, ImageAnalysis, face_shot, jpeg};
pub use compare::{CALIBRATION_FMRS, Calibration, CalibrationPoint, DEFAULT_TARGET_FMR, Decision, cosine};
pub use detect::{
    DetectedFace, Detector, DetectorConfig, ScrfdDetector, YuNetDetector, largest_face, nms, subject_face,
};
pub use dispatch::{ChosenBy, DISPATCH_MIN_COSINE, RuntimeChoice, RuntimeTrial, dispatch};
pub use embed::{Embedder, EmbedderConfig, Embedding, HARD_FACE_SCORE, HARD_FACE_YAW, Mirror, face_yaw, is_hard_face};
pub use error::{ImageError, PipelineError};
pub use geometry::{BoundingBox, Point};
pub use head::{HEAD_WEIGHT_TENSOR, HeadSpec, ProjectionHead};
pub use image_input::{DecodeCost, DecodeLimits, decode_cost, decode_image};
pub use keep::{KEPT_FRAME, KEPT_SIZE, KeptFace};
pub use landmarks::LandmarkModel;
pub use liveness::{Liveness, LivenessScore, crop_box as liveness_crop_box};
pub use onnx::{Backend, EmbedderRuntime, ModelFile, OpenVino, OrtEnvironment, Precision, RuntimeConfig, cpu_has_bf16};
pub use pack::{
    AlignmentSpec, ChannelOrder, DEFAULT_PACK, LivenessSpec, Manifest, ModelFormat, ModelKind, ModelSpec, OpenVinoSpec,
    PackSpec, PinnedFile, RuntimeSpec, WeightsFile,
};
pub use pipeline::{AlignMode, AnalyzedFace, LimitedAnalysis, Pipeline, PipelineConfig, StageTimings};
pub use sharpness::{face_sharpness, sharpness};
