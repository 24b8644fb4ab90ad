//! The model manifest: what each model file is, where it comes from, how to feed it, and which
//! detector and embedder form a pack. Parsed by `facegate-models` from `models/manifest.toml`.

use serde::{Deserialize, Serialize};

use crate::align::Alignment;
use crate::compare::CalibrationPoint;
use crate::error::PipelineError;
use crate::geometry::Point;
use crate::head::HeadSpec;

/// The pack used where none is named: new collections, the CLI's `--pack`, the packs a server loads.
/// Its weights are cleared for commercial use (a test checks), and it beat the previous default
/// (`mobilefacenet`) on LFW accuracy and TAR at FMR 1e-3 in facegate's own evaluation.
pub const DEFAULT_PACK: &str = "omz-0095";

/// The whole manifest: the ONNX Runtime pin, the models and the packs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The pinned ONNX Runtime shared library.
    pub runtime: RuntimeSpec,
    /// The pinned OpenVINO libraries the embedder can run on instead (x86_64 Linux).
    #[serde(default)]
    pub openvino: Option<OpenVinoSpec>,
    /// Every model file known to facegate.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
    /// Named detector + embedder pairs.
    #[serde(rename = "pack")]
    pub packs: Vec<PackSpec>,
    /// Liveness packs: models fused into one live / not-live decision.
    #[serde(rename = "liveness", default)]
    pub liveness: Vec<LivenessSpec>,
}

/// A liveness pack: presentation-attack detection models run on the detector's box and fused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LivenessSpec {
    /// Pack name.
    pub name: String,
    /// Its models (kind `liveness`), fused by averaging their "real" softmax.
    pub models: Vec<String>,
    /// Live at or above this fused score.
    pub threshold: f32,
    /// How the threshold was chosen, on what data.
    pub threshold_note: String,
}

/// The ONNX Runtime library facegate loads at run time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeSpec {
    /// PyPI package that ships it.
    pub package: String,
    /// Pinned version.
    pub version: String,
    /// File name of the shared library inside the wheel's `onnxruntime/capi/`.
    pub library: String,
    /// sha256 of the library for x86_64 Linux.
    pub sha256_x86_64: String,
    /// sha256 of the library for aarch64 Linux.
    pub sha256_aarch64: String,
}

/// The OpenVINO runtime facegate can load for the embedder, taken from the PyPI wheel by
/// `scripts/fetch-openvino.sh` (x86_64 Linux only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenVinoSpec {
    /// PyPI package that ships it.
    pub package: String,
    /// Pinned version.
    pub version: String,
    /// The C API library facegate loads (the others are loaded by it from the same folder).
    pub library: String,
    /// Every file taken from the wheel's `openvino/libs/`, each pinned.
    #[serde(rename = "file")]
    pub files: Vec<PinnedFile>,
}

/// A file and its sha256 on x86_64 Linux.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinnedFile {
    /// File name.
    pub name: String,
    /// Its sha256.
    pub sha256_x86_64: String,
}

/// Whether a model finds faces or describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Boxes, landmarks and scores.
    Detector,
    /// An embedding per aligned face.
    Embedder,
    /// 5 landmarks from a face box (an optional stage between detection and alignment).
    Landmarks,
    /// Live or presentation attack, from a crop around the face box.
    Liveness,
}

/// Channel order a model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
}

impl ChannelOrder {
    /// For each input channel, the index of the RGB pixel component that feeds it.
    pub fn rgb_indices(self) -> [usize; 3] {
        match self {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        }
    }
}

/// One pinned model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Short unique name, e.g. `yunet-2023mar`.
    pub name: String,
    /// Detector or embedder.
    pub kind: ModelKind,
    /// Output decoding family: `yunet`, `scrfd` or `arcface`.
    pub family: String,
    /// File name in the cache and in mirrors.
    pub file: String,
    /// Expected sha256 of the file, lowercase hex.
    pub sha256: String,
    /// Upstream URLs, tried in order.
    pub urls: Vec<String>,
    /// For a file converted from an upstream original (so it has no download URL of its own): what it
    /// was made from and how. Such a file comes from a mirror, checked by `sha256` like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// Licence of the weights.
    pub licence: String,
    /// Whether the licence of the weights (and what is known of their training data) allows
    /// commercial use; unknown counts as no.
    #[serde(default)]
    pub commercial_use: bool,
    /// Human description of the input tensor.
    pub input: String,
    /// Human description of the output tensors.
    pub output: String,
    /// Fixed input size `[width, height]`, where the model has one.
    #[serde(default)]
    pub input_size: Option<[u32; 2]>,
    /// Length of the embedding (embedders only).
    #[serde(default)]
    pub embedding_size: Option<usize>,
    /// Side of the crop around the detector's box, as a multiple of the box (liveness models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_scale: Option<f32>,
    /// The most images one run takes, for a model exported with a fixed batch size (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// Where the embedder wants the landmarks and the side of its square input (embedders only;
    /// default: the ArcFace template at 112×112).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<AlignmentSpec>,
    /// Channel order of the input tensor.
    pub channel_order: ChannelOrder,
    /// Per-channel mean subtracted from 0..255 pixel values, in `channel_order`.
    pub mean: [f32; 3],
    /// Per-channel divisor applied after the mean, in `channel_order`.
    pub std: [f32; 3],
    /// Cosine threshold against false-match rate (embedders only), ascending in FMR.
    #[serde(default)]
    pub calibration: Vec<CalibrationPoint>,
    /// How the calibration table was made.
    #[serde(default)]
    pub calibration_note: Option<String>,
    /// The file's format: ONNX unless the manifest says `openvino-ir`.
    #[serde(default)]
    pub format: ModelFormat,
    /// An OpenVINO IR's weights (its `.bin`; `file` is the `.xml`), pinned like the file itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsFile>,
    /// The arithmetic the file was made for: `int8` for a quantised IR (OpenVINO then runs its other
    /// layers in fp32); default fp32.
    #[serde(default)]
    pub precision: crate::Precision,
}

/// The format of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFormat {
    /// ONNX: runs on ONNX Runtime (and, for the embedder, on OpenVINO where chosen).
    #[default]
    Onnx,
    /// OpenVINO's intermediate representation (an `.xml` graph and a `.bin` of weights): runs on
    /// OpenVINO only. Intel's int8 IRs are published in it.
    OpenvinoIr,
}

/// The second file of a model published in two ([`ModelFormat::OpenvinoIr`]'s weights).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsFile {
    /// File name in the cache and in mirrors.
    pub file: String,
    /// Expected sha256, lowercase hex.
    pub sha256: String,
    /// Upstream URLs, tried in order.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// An embedder's alignment template as the manifest writes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlignmentSpec {
    /// Side of the square aligned crop, pixels.
    pub size: u32,
    /// The 5 landmarks' places in the crop, pixels, in the detector's order.
    pub template: [[f32; 2]; 5],
}

impl ModelSpec {
    /// The entry of the model's weights file, fetched and verified like a model of its own (same
    /// provenance), where the model has one.
    pub fn weights_spec(&self) -> Option<ModelSpec> {
        self.weights.as_ref().map(|weights| ModelSpec {
            name: format!("{} (weights)", self.name),
            file: weights.file.clone(),
            sha256: weights.sha256.clone(),
            urls: weights.urls.clone(),
            weights: None,
            ..self.clone()
        })
    }

    /// The alignment this embedder takes: its manifest's, else the ArcFace template at 112×112.
    pub fn alignment(&self) -> Alignment {
        self.alignment.map_or(Alignment::ARCFACE, |spec| Alignment {
            size: spec.size,
            template: spec.template.map(|[x, y]| Point::new(x, y)),
        })
    }
}

/// A named pair of detector and embedder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackSpec {
    /// Pack name, e.g. `default`.
    pub name: String,
    /// Name of the detector model.
    pub detector: String,
    /// Name of the embedder model.
    pub embedder: String,
    /// Name of a landmark model that places the landmarks again from the detector's box before
    /// alignment (see [`crate::LandmarkModel`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<String>,
    /// Name of the liveness pack run on this pack's faces when asked (see [`crate::Liveness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<String>,
    /// One line about the pack.
    pub description: String,
    /// A trained projection applied to the embedder's output (packs from `facegate train --mode embedding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadSpec>,
    /// Which faces are embedded with their mirror image too, unless the caller chooses (measured per
    /// pack: `kept` where probes without the mirror keep LFW within 0.1 point against mirrored
    /// galleries; `always` where not stated).
    #[serde(default)]
    pub mirror: crate::Mirror,
    /// Threshold against FMR for this pack's embeddings; when empty, the embedder's table applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<CalibrationPoint>,
}

impl Manifest {
    /// Finds a model by name.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Finds a pack by name.
    pub fn pack(&self, name: &str) -> Option<&PackSpec> {
        self.packs.iter().find(|p| p.name == name)
    }

    /// The detector and embedder specs of a pack.
    ///
    /// # Errors
    /// [`PipelineError::Config`] when the pack or one of its models is unknown or of the wrong kind.
    pub fn pack_models(&self, pack: &str) -> Result<(&ModelSpec, &ModelSpec), PipelineError> {
        let spec = self.pack(pack).ok_or_else(|| PipelineError::Config(format!("unknown pack `{pack}`")))?;
        self.pack_models_of(spec)
    }

    /// The detector and embedder specs a pack entry names (which need not be in `packs` yet).
    ///
    /// # Errors
    /// [`PipelineError::Config`] when a model is unknown or of the wrong kind.
    pub fn pack_models_of(&self, spec: &PackSpec) -> Result<(&ModelSpec, &ModelSpec), PipelineError> {
        let find = |name: &str, kind: ModelKind| {
            self.model(name)
                .filter(|m| m.kind == kind)
                .ok_or_else(|| PipelineError::Config(format!("pack `{}` names unknown {kind:?} `{name}`", spec.name)))
        };
        if let Some(landmarks) = &spec.landmarks {
            find(landmarks, ModelKind::Landmarks)?;
        }
        Ok((find(&spec.detector, ModelKind::Detector)?, find(&spec.embedder, ModelKind::Embedder)?))
    }

    /// The models of a pack whose weights are not cleared for commercial use (empty: the pack may be
    /// deployed by a business). Unknown models are left to [`Manifest::pack_models_of`] to report.
    pub fn research_only_models(&self, spec: &PackSpec) -> Vec<&ModelSpec> {
        let liveness = self.pack_liveness(spec).ok().flatten().map(|(l, _)| l.models.clone()).unwrap_or_default();
        [Some(spec.detector.as_str()), spec.landmarks.as_deref(), Some(spec.embedder.as_str())]
            .into_iter()
            .flatten()
            .chain(liveness.iter().map(String::as_str))
            .filter_map(|name| self.model(name))
            .filter(|model| !model.commercial_use)
            .collect()
    }

    /// The liveness pack a pack names and its models, if it names one that exists.
    ///
    /// # Errors
    /// [`PipelineError::Config`] for a liveness pack or model that is unknown or of the wrong kind.
    pub fn pack_liveness(&self, spec: &PackSpec) -> Result<Option<(&LivenessSpec, Vec<&ModelSpec>)>, PipelineError> {
        let Some(name) = &spec.liveness else { return Ok(None) };
        let liveness = self.liveness.iter().find(|l| l.name == *name).ok_or_else(|| {
            PipelineError::Config(format!("pack `{}` names unknown liveness pack `{name}`", spec.name))
        })?;
        let models = liveness
            .models
            .iter()
            .map(|m| {
                self.model(m).filter(|m| m.kind == ModelKind::Liveness).ok_or_else(|| {
                    PipelineError::Config(format!("liveness pack `{name}` names unknown liveness model `{m}`"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((liveness, models)))
    }

    /// Every model file a pack needs: detector, landmark model, embedder, liveness models.
    ///
    /// # Errors
    /// As [`Manifest::pack_models_of`] and [`Manifest::pack_liveness`].
    pub fn pack_files(&self, spec: &PackSpec) -> Result<Vec<&ModelSpec>, PipelineError> {
        let (detector, embedder) = self.pack_models_of(spec)?;
        let mut files: Vec<&ModelSpec> =
            [Some(detector), self.pack_landmarks(spec), Some(embedder)].into_iter().flatten().collect();
        if let Some((_, models)) = self.pack_liveness(spec)? {
            files.extend(models);
        }
        Ok(files)
    }

    /// The landmark model a pack names, if any (checked by [`Manifest::pack_models_of`]).
    pub fn pack_landmarks(&self, spec: &PackSpec) -> Option<&ModelSpec> {
        spec.landmarks.as_deref().and_then(|name| self.model(name)).filter(|m| m.kind == ModelKind::Landmarks)
    }
}
