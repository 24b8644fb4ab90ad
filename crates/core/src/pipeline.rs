//! The four stages put together: one [`Pipeline`] per model pack, loaded once and shared.

use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

use crate::align::{AlignedFace, Alignment, SimilarityTransform, warp_similarity};
use crate::compare::Calibration;
use crate::detect::{DetectedFace, Detector, DetectorConfig, ScrfdDetector, YuNetDetector};
use crate::dispatch::RuntimeChoice;
use crate::embed::{Embedder, EmbedderConfig, Embedding};
use crate::error::PipelineError;
use crate::geometry::Point;
use crate::head::ProjectionHead;
use crate::keep::KeptFace;
use crate::landmarks::LandmarkModel;
use crate::liveness::{Liveness, LivenessScore};
use crate::onnx::{ModelFile, OrtEnvironment, RuntimeConfig};
use crate::pack::{ModelFormat, ModelSpec, PackSpec};

/// How faces are cut out before embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlignMode {
    /// Similarity transform of the 5 landmarks onto the embedder's template (the normal path).
    #[default]
    Similarity,
    /// The detector's box stretched to the crop size, landmarks ignored (baseline for ablations).
    BoxCrop,
}

/// Everything tunable in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineConfig {
    /// ONNX Runtime threads.
    pub runtime: RuntimeConfig,
    /// Detection thresholds and sizes.
    pub detector: DetectorConfig,
    /// Flip-averaging and normalisation.
    pub embedder: EmbedderConfig,
    /// Alignment method.
    pub align: AlignMode,
    /// Re-detect tilted faces on an upright crop to correct their landmarks (see [`Pipeline::detect`]);
    /// applies to detectors with a dynamic input size (YuNet), and not where a landmark model places them.
    pub refine_roll: bool,
    /// Place the landmarks with the pack's landmark model, where it has one (see [`Pipeline::with_landmarks`]).
    pub landmark_model: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            runtime: RuntimeConfig::default(),
            detector: DetectorConfig::default(),
            embedder: EmbedderConfig::default(),
            align: AlignMode::default(),
            refine_roll: true,
            landmark_model: true,
        }
    }
}

/// Eye-line tilt below which landmarks are used as detected, radians (2°).
const ROLL_TOLERANCE: f32 = 0.035;
/// At most this many re-detections per tilted face.
const MAX_ROLL_REFINEMENTS: usize = 3;
/// Side of the upright crop a tilted face is re-detected in, pixels (a multiple of 32).
const REFINE_CANVAS: u32 = 192;
/// The face box's longest side takes up 1/this of the upright crop.
const REFINE_CONTEXT: f32 = 2.5;

/// A detected face with its embedding.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnalyzedFace {
    /// Where the face is.
    #[serde(flatten)]
    pub face: DetectedFace,
    /// Its template.
    pub embedding: Embedding,
}

impl AsRef<DetectedFace> for AnalyzedFace {
    fn as_ref(&self) -> &DetectedFace {
        &self.face
    }
}

/// Wall time spent in each stage of one [`Pipeline::analyze_timed`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimings {
    /// Detection, including input preparation and decoding of outputs.
    pub detect: Duration,
    /// Alignment of all faces.
    pub align: Duration,
    /// Embedding of all faces (one batched run).
    pub embed: Duration,
}

/// A loaded model pack: detector, embedder and calibration, ready for any number of images.
pub struct Pipeline {
    pack: PackSpec,
    detector: Box<dyn Detector>,
    detector_spec: ModelSpec,
    embedder: Embedder,
    landmarks: Option<LandmarkModel>,
    liveness: Option<Liveness>,
    head: Option<ProjectionHead>,
    calibration: Calibration,
    config: PipelineConfig,
    runtime: RuntimeChoice,
}

impl Pipeline {
    /// Builds the detector and embedder sessions from their model bytes.
    ///
    /// # Errors
    /// [`PipelineError::Config`] for an unknown detector family; [`PipelineError::Inference`] when a
    /// model does not load.
    pub fn load(
        environment: &OrtEnvironment,
        pack: &PackSpec,
        detector: (&ModelSpec, &[u8]),
        embedder: (&ModelSpec, &[u8]),
        config: PipelineConfig,
    ) -> Result<Self, PipelineError> {
        let (embedder_spec, embedder_bytes) = embedder;
        if embedder_spec.format == ModelFormat::OpenvinoIr {
            return Err(PipelineError::Config(format!(
                "embedder `{}` is an OpenVINO IR: it runs on OpenVINO only",
                embedder_spec.name
            )));
        }
        let file = ModelFile { environment, spec: embedder_spec, bytes: embedder_bytes, runtime: &config.runtime };
        let choice = RuntimeChoice::onnxruntime(config.runtime.embedder, None);
        Self::load_with_embedder(environment, pack, detector, (Embedder::load(file)?, choice), config)
    }

    /// As [`Pipeline::load`], with an embedder already loaded on the runtime `choice` names (a model
    /// that runs on OpenVINO only: an int8 IR).
    ///
    /// # Errors
    /// As [`Pipeline::load`].
    pub fn load_with_embedder(
        environment: &OrtEnvironment,
        pack: &PackSpec,
        detector: (&ModelSpec, &[u8]),
        (embedder, choice): (Embedder, RuntimeChoice),
        mut config: PipelineConfig,
    ) -> Result<Self, PipelineError> {
        config.embedder.mirror.get_or_insert(pack.mirror);
        let (detector_spec, detector_bytes) = detector;
        let embedder_spec = embedder.spec().clone();
        let runtime = &config.runtime;
        let detector_file = ModelFile { environment, spec: detector_spec, bytes: detector_bytes, runtime };
        let detector: Box<dyn Detector> = match detector_spec.family.as_str() {
            "yunet" => Box::new(YuNetDetector::load(detector_file)?),
            "scrfd" => Box::new(ScrfdDetector::load(detector_file)?),
            other => {
                return Err(PipelineError::Config(format!("unknown detector family `{other}`")));
            }
        };
        Ok(Self {
            pack: pack.clone(),
            detector,
            detector_spec: detector_spec.clone(),
            embedder,
            landmarks: None,
            liveness: None,
            head: None,
            calibration: Calibration::new(if pack.calibration.is_empty() {
                embedder_spec.calibration
            } else {
                pack.calibration.clone()
            }),
            runtime: choice,
            config,
        })
    }

    /// Runs the embedder on `embedder` from now on (another runtime's session of the same model), as
    /// `choice` says.
    ///
    /// # Errors
    /// [`PipelineError::Config`] when `embedder` is another model.
    pub fn with_embedder(mut self, embedder: Embedder, choice: RuntimeChoice) -> Result<Self, PipelineError> {
        if embedder.spec().sha256 != self.embedder.spec().sha256 {
            return Err(PipelineError::Config(format!(
                "embedder `{}` given for `{}`",
                embedder.spec().name,
                self.embedder.spec().name
            )));
        }
        self.embedder = embedder;
        self.runtime = choice;
        Ok(self)
    }

    /// Records how the embedder's runtime was chosen, where it stays on ONNX Runtime.
    pub fn with_runtime_choice(mut self, choice: RuntimeChoice) -> Self {
        self.runtime = choice;
        self
    }

    /// The embedder (its ONNX Runtime session until [`Pipeline::with_embedder`] replaces it).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The runtime the embedder runs on, and how it was chosen.
    pub fn embedder_runtime(&self) -> &RuntimeChoice {
        &self.runtime
    }

    /// Applies a trained projection head to every embedding from now on (the pack's `head`).
    ///
    /// # Errors
    /// [`PipelineError::Config`] when the head does not take the embedder's output size.
    pub fn with_head(mut self, head: ProjectionHead) -> Result<Self, PipelineError> {
        let embedder_size = self.embedder.spec().embedding_size;
        if embedder_size.is_some_and(|size| size != head.input_size()) {
            return Err(PipelineError::Config(format!(
                "projection head takes {} values, embedder `{}` gives {embedder_size:?}",
                head.input_size(),
                self.embedder.spec().name
            )));
        }
        self.head = Some(head);
        Ok(self)
    }

    /// Places every detected face's landmarks with `model` from now on (the pack's `landmarks`), unless
    /// the configuration turns it off.
    pub fn with_landmarks(mut self, model: LandmarkModel) -> Self {
        self.landmarks = Some(model);
        self
    }

    /// The landmark model's manifest entry, where one places the landmarks.
    pub fn landmark_spec(&self) -> Option<&ModelSpec> {
        self.landmarks.as_ref().filter(|_| self.config.landmark_model).map(LandmarkModel::spec)
    }

    /// Adds the liveness stage (the pack's liveness models, see [`Liveness`]).
    pub fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = Some(liveness);
        self
    }

    /// The liveness pack this pipeline runs when asked, if it has one.
    pub fn liveness_spec(&self) -> Option<&crate::pack::LivenessSpec> {
        self.liveness.as_ref().map(Liveness::spec)
    }

    /// The liveness of a detected face of `image` (the whole frame).
    ///
    /// # Errors
    /// [`PipelineError::Config`] when the pack has no liveness models; inference failures.
    pub fn liveness(&self, image: &RgbImage, face: &DetectedFace) -> Result<LivenessScore, PipelineError> {
        let liveness = self
            .liveness
            .as_ref()
            .ok_or_else(|| PipelineError::Config(format!("pack `{}` has no liveness models", self.pack.name)))?;
        liveness.score(image, &face.bbox)
    }

    /// The crop size and template faces are aligned to (the embedder's).
    pub fn alignment(&self) -> Alignment {
        self.embedder.alignment()
    }

    /// Length of the templates this pipeline makes (the head's output where the pack has one).
    pub fn embedding_size(&self) -> usize {
        self.head.as_ref().map_or(self.embedder.spec().embedding_size.unwrap_or(0), ProjectionHead::output_size)
    }

    /// The version of the templates this pipeline makes: the first 12 hex digits of its embedder's
    /// sha256, and of its projection head's where it has one. Templates of different versions are not
    /// comparable.
    pub fn template_version(&self) -> String {
        let short = |sha: &str| sha.chars().take(12).collect::<String>();
        let embedder = short(&self.embedder.spec().sha256);
        match &self.pack.head {
            Some(head) if self.head.is_some() => format!("{embedder}+{}", short(&head.sha256)),
            _ => embedder,
        }
    }

    /// The pack this pipeline runs.
    pub fn pack(&self) -> &PackSpec {
        &self.pack
    }

    /// The detector's manifest entry.
    pub fn detector_spec(&self) -> &ModelSpec {
        &self.detector_spec
    }

    /// The embedder's manifest entry.
    pub fn embedder_spec(&self) -> &ModelSpec {
        self.embedder.spec()
    }

    /// The settings the pipeline was built with.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The embedder's score-threshold-against-FMR table.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Stage 1: faces in the image, best score first.
    ///
    /// Detectors regress landmarks of a tilted head towards upright (YuNet finds about half of a 30°
    /// roll), which spoils alignment. With `refine_roll`, a face whose eye line is tilted by more than 2°
    /// is cut out upright by that angle and detected again, up to three times, and its landmarks are mapped back.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the detector fails.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<DetectedFace>, PipelineError> {
        self.detect_with(image, &self.config.detector)
    }

    /// Stage 1 with other detection settings than the pipeline's (e.g. a lower threshold for a retry).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the detector fails.
    pub fn detect_with(&self, image: &RgbImage, config: &DetectorConfig) -> Result<Vec<DetectedFace>, PipelineError> {
        let mut faces = self.detector.detect(image, config)?;
        if let Some(model) = self.landmarks.as_ref().filter(|_| self.config.landmark_model) {
            for face in &mut faces {
                face.landmarks = model.locate(image, &face.bbox)?;
            }
            return Ok(faces);
        }
        // Fixed-input detectors (SCRFD) would re-run at full size for each face, and their landmarks
        // follow the roll well enough anyway.
        if self.config.refine_roll && self.detector_spec.input_size.is_none() {
            for face in &mut faces {
                face.landmarks = self.refine_landmarks(image, face, config)?;
            }
        }
        Ok(faces)
    }

    fn refine_landmarks(
        &self,
        image: &RgbImage,
        face: &DetectedFace,
        config: &DetectorConfig,
    ) -> Result<[Point; 5], PipelineError> {
        let mut landmarks = face.landmarks;
        let side = face.bbox.width.max(face.bbox.height) * REFINE_CONTEXT;
        if side <= 1.0 {
            return Ok(landmarks);
        }
        let scale = REFINE_CANVAS as f32 / side;
        let upright_config = DetectorConfig { max_faces: 5, max_side: REFINE_CANVAS, ..*config };
        for _ in 0..MAX_ROLL_REFINEMENTS {
            let [right_eye, left_eye, ..] = landmarks;
            let roll = (left_eye.y - right_eye.y).atan2(left_eye.x - right_eye.x);
            if roll.abs() < ROLL_TOLERANCE {
                break;
            }
            let centre = Point::new(
                landmarks.iter().map(|p| p.x).sum::<f32>() / 5.0,
                landmarks.iter().map(|p| p.y).sum::<f32>() / 5.0,
            );
            let (a, b) = (scale * roll.cos(), -scale * roll.sin());
            let half = REFINE_CANVAS as f32 / 2.0;
            let upright = SimilarityTransform {
                a,
                b,
                tx: half - (a * centre.x - b * centre.y),
                ty: half - (b * centre.x + a * centre.y),
            };
            let (Some(canvas), Some(back)) =
                (warp_similarity(image, &upright, REFINE_CANVAS, REFINE_CANVAS), upright.inverse())
            else {
                break;
            };
            let found = self.detector.detect(&canvas, &upright_config)?;
            let nearest = found.into_iter().min_by(|p, q| {
                let d = |f: &DetectedFace| {
                    let (cx, cy) = (f.bbox.x + f.bbox.width / 2.0 - half, f.bbox.y + f.bbox.height / 2.0 - half);
                    cx * cx + cy * cy
                };
                d(p).total_cmp(&d(q))
            });
            let Some(nearest) = nearest else { break };
            landmarks = nearest.landmarks.map(|p| back.apply(p));
        }
        Ok(landmarks)
    }

    /// Stage 2: one face cut out and aligned onto the embedder's template.
    pub fn align(&self, image: &RgbImage, face: &DetectedFace) -> AlignedFace {
        let alignment = self.alignment();
        match self.config.align {
            AlignMode::Similarity => {
                alignment.align(image, &face.landmarks).unwrap_or_else(|| alignment.crop_box(image, &face.bbox))
            }
            AlignMode::BoxCrop => alignment.crop_box(image, &face.bbox),
        }
    }

    /// Stage 3: embeddings of aligned crops, in one batched run.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the embedder fails.
    pub fn embed_aligned(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, PipelineError> {
        self.project(self.embed_aligned_pretrained(faces)?)
    }

    /// The embedder's outputs through the pack's projection head, if it has one.
    fn project(&self, embeddings: Vec<Embedding>) -> Result<Vec<Embedding>, PipelineError> {
        match &self.head {
            Some(head) => embeddings.iter().map(|e| head.project(e)).collect(),
            None => Ok(embeddings),
        }
    }

    /// Stage 3 without the pack's projection head: the embedder's own output (what a head is trained on).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the embedder fails.
    pub fn embed_aligned_pretrained(&self, faces: &[&RgbImage]) -> Result<Vec<Embedding>, PipelineError> {
        self.embedder.embed(faces, &self.config.embedder)
    }

    /// Stage 3 for detected faces' crops, each mirrored where the policy says so for its face (every
    /// one when `kept`: a template that is kept).
    fn embed_detected(
        &self,
        faces: &[DetectedFace],
        crops: &[&RgbImage],
        kept: bool,
    ) -> Result<Vec<Embedding>, PipelineError> {
        let mirror = self.config.embedder.mirror_policy();
        let mirrored: Vec<bool> = faces.iter().map(|f| mirror.applies(f, kept)).collect();
        self.project(self.embedder.embed_mirrored(crops, &mirrored, &self.config.embedder)?)
    }

    /// Stages 2 and 3 for faces already detected in `image` (mirrored as the policy says).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the embedder fails.
    pub fn embed_faces(&self, image: &RgbImage, faces: &[DetectedFace]) -> Result<Vec<Embedding>, PipelineError> {
        self.embed_faces_with(image, faces, false)
    }

    /// As [`Pipeline::embed_faces`]; `best`: the best templates the pack makes, every face mirrored too
    /// (templates that are kept).
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when the embedder fails.
    pub fn embed_faces_with(
        &self,
        image: &RgbImage,
        faces: &[DetectedFace],
        best: bool,
    ) -> Result<Vec<Embedding>, PipelineError> {
        let aligned: Vec<AlignedFace> = faces.iter().map(|f| self.align(image, f)).collect();
        let crops: Vec<&RgbImage> = aligned.iter().map(|a| &a.image).collect();
        self.embed_detected(faces, &crops, best)
    }

    /// Stages 2 and 3 for kept faces ([`KeptFace`]): the pack's landmark model (if any) places the
    /// landmarks in the kept frame as it would in a photo, then each face is aligned onto this pack's
    /// template and embedded, all in one batched run.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a model fails.
    pub fn embed_kept(&self, kept: &[&KeptFace]) -> Result<Vec<Embedding>, PipelineError> {
        let mut aligned = Vec::with_capacity(kept.len());
        for k in kept {
            let mut face = k.face.clone();
            if let Some(model) = self.landmarks.as_ref().filter(|_| self.config.landmark_model) {
                face.landmarks = model.locate(&k.image, &face.bbox)?;
            }
            aligned.push(self.align(&k.image, &face));
        }
        let crops: Vec<&RgbImage> = aligned.iter().map(|a| &a.image).collect();
        self.embed_aligned(&crops)
    }

    /// All stages: every face in the image with its embedding.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a model fails.
    pub fn analyze(&self, image: &RgbImage) -> Result<Vec<AnalyzedFace>, PipelineError> {
        self.analyze_timed(image).map(|(faces, _)| faces)
    }

    /// As [`Pipeline::analyze`], also reporting the time spent in each stage.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a model fails.
    pub fn analyze_timed(&self, image: &RgbImage) -> Result<(Vec<AnalyzedFace>, StageTimings), PipelineError> {
        self.analyze_limited(image, usize::MAX).map(|analysis| (analysis.faces, analysis.timings))
    }

    /// All stages for at most `max_faces` faces (best detection scores first; the others are neither
    /// aligned nor embedded), with stage timings.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a model fails.
    pub fn analyze_limited(&self, image: &RgbImage, max_faces: usize) -> Result<LimitedAnalysis, PipelineError> {
        self.analyze_limited_with(image, max_faces, false)
    }

    /// As [`Pipeline::analyze_limited`]; `kept`: the templates are kept (enrolment), every face is
    /// embedded with its mirror image whatever the policy.
    ///
    /// # Errors
    /// [`PipelineError::Inference`] when a model fails.
    pub fn analyze_limited_with(
        &self,
        image: &RgbImage,
        max_faces: usize,
        kept: bool,
    ) -> Result<LimitedAnalysis, PipelineError> {
        let start = Instant::now();
        let mut faces = self.detect(image)?;
        let found = faces.len();
        faces.truncate(max_faces);
        let detected = Instant::now();
        let aligned: Vec<AlignedFace> = faces.iter().map(|f| self.align(image, f)).collect();
        let aligned_at = Instant::now();
        let crops: Vec<&RgbImage> = aligned.iter().map(|a| &a.image).collect();
        let embeddings = self.embed_detected(&faces, &crops, kept)?;
        let embedded = Instant::now();
        let timings =
            StageTimings { detect: detected - start, align: aligned_at - detected, embed: embedded - aligned_at };
        let faces =
            faces.into_iter().zip(embeddings).map(|(face, embedding)| AnalyzedFace { face, embedding }).collect();
        Ok(LimitedAnalysis { faces, timings, detected: found })
    }
}

/// What [`Pipeline::analyze_limited`] found.
#[derive(Debug)]
pub struct LimitedAnalysis {
    /// The analysed faces, best detection score first.
    pub faces: Vec<AnalyzedFace>,
    /// Time per stage.
    pub timings: StageTimings,
    /// Faces the detector reported (up to its own `max_faces`), before the limit was applied.
    pub detected: usize,
}
