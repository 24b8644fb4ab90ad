//! Model sessions, built once from model bytes and reused for every call: ONNX Runtime for every model,
//! and OpenVINO for the embedder where the dispatch chooses it (see [`crate::RuntimeChoice`]).

use std::sync::Mutex;

use ort::session::{Session, builder::GraphOptimizationLevel};

use crate::error::PipelineError;
use crate::pack::ModelSpec;

/// An initialised ONNX Runtime (library loaded, environment created); made once per process by
/// `facegate_models::ModelCache::onnxruntime` and passed to every model load.
pub type OrtEnvironment = ort::environment::Environment;

/// How model sessions are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Threads used inside one model run (ONNX Runtime's intra-op pool, OpenVINO's inference threads).
    pub intra_threads: usize,
    /// Which runtime the embedder runs on.
    pub embedder: EmbedderRuntime,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { intra_threads: 1, embedder: EmbedderRuntime::Auto }
    }
}

/// Which runtime the embedder runs on, asked for in the settings (`embedder_runtime`,
/// `--embedder-runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderRuntime {
    /// Measured at load: on a CPU with bf16 kernels (AVX-512 BF16, AMX), OpenVINO with the bf16
    /// precision hint is timed against ONNX Runtime on a test crop and kept if faster and its template
    /// agrees; elsewhere ONNX Runtime (OpenVINO's fp32 measured no faster than it on an AVX2 CPU).
    #[default]
    Auto,
    /// ONNX Runtime, fp32.
    Onnxruntime,
    /// OpenVINO, fp32 (its templates checked against ONNX Runtime's at load).
    OpenvinoF32,
    /// OpenVINO with the bf16 precision hint (fp32 on a CPU without bf16 kernels; its templates checked
    /// against ONNX Runtime's at load).
    OpenvinoBf16,
}

impl EmbedderRuntime {
    /// Every choice, as the settings spell it.
    pub const ALL: [Self; 4] = [Self::Auto, Self::Onnxruntime, Self::OpenvinoF32, Self::OpenvinoBf16];

    /// The name the settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Onnxruntime => "onnxruntime",
            Self::OpenvinoF32 => "openvino-f32",
            Self::OpenvinoBf16 => "openvino-bf16",
        }
    }

    /// The OpenVINO precision asked for, when OpenVINO is asked for by name.
    pub fn openvino(self) -> Option<Precision> {
        match self {
            Self::OpenvinoF32 => Some(Precision::F32),
            Self::OpenvinoBf16 => Some(Precision::Bf16),
            Self::Auto | Self::Onnxruntime => None,
        }
    }
}

impl std::fmt::Display for EmbedderRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runtime a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// ONNX Runtime.
    Onnxruntime,
    /// OpenVINO.
    Openvino,
}

/// The arithmetic a model runs in. bf16 templates are interchangeable with fp32 ones (checked at load
/// and in the tests), so the precision is not part of a collection's template version. int8 ones are
/// not: an int8 model is a manifest entry of its own (Intel's int8 IR), so its own template version,
/// calibration table and pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floating point.
    #[default]
    F32,
    /// bfloat16 where the CPU has kernels for it (OpenVINO's inference precision hint).
    Bf16,
    /// 8-bit integers where the model was quantised for them (an int8 IR), 32-bit floating point
    /// elsewhere in it.
    Int8,
}

impl Precision {
    /// Its name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        }
    }

    /// OpenVINO's inference precision hint for it: an int8 model's layers outside its quantised ones
    /// run in fp32 on every CPU (bf16 would move its templates on AMX CPUs only).
    fn openvino_hint(self) -> &'static str {
        match self {
            Self::F32 | Self::Int8 => "f32",
            Self::Bf16 => "bf16",
        }
    }
}

impl Backend {
    /// Its name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnxruntime => "onnxruntime",
            Self::Openvino => "openvino",
        }
    }
}

/// Whether this CPU has bf16 arithmetic (AVX-512 BF16; every CPU with AMX has it too).
pub fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// An initialised OpenVINO (library loaded, one core for the process); made once per process by
/// `facegate_models::ModelCache` and passed to the embedder's dispatch.
pub struct OpenVino {
    core: Mutex<openvino::Core>,
}

impl std::fmt::Debug for OpenVino {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenVino").finish_non_exhaustive()
    }
}

impl OpenVino {
    /// Wraps the process's core.
    pub fn new(core: openvino::Core) -> Self {
        Self { core: Mutex::new(core) }
    }
}

/// Largest batch an OpenVINO model is compiled for (a photo's faces and their mirror images).
const OPENVINO_MAX_BATCH: i64 = 64;

fn openvino_error(what: &str) -> impl Fn(openvino::InferenceError) -> PipelineError + '_ {
    move |e| PipelineError::OpenVino(format!("{what}: {e}"))
}

/// A model file to load: its manifest entry and bytes, the initialised ONNX Runtime to load it in, and
/// how its session is built.
#[derive(Clone, Copy)]
pub struct ModelFile<'a> {
    /// The initialised ONNX Runtime.
    pub environment: &'a OrtEnvironment,
    /// The model's manifest entry.
    pub spec: &'a ModelSpec,
    /// The model file's bytes.
    pub bytes: &'a [u8],
    /// How the session is built.
    pub runtime: &'a RuntimeConfig,
}

/// One loaded model and its manifest entry. Runs are serialised by a mutex: the runtimes parallelise
/// inside a run.
pub(crate) struct OnnxModel {
    session: Sessions,
    spec: ModelSpec,
}

enum Sessions {
    Ort(Mutex<Session>),
    OpenVino { precision: Precision, session: Mutex<OpenVinoSession> },
}

/// A compiled OpenVINO model with its one inference request and the names of its outputs.
struct OpenVinoSession {
    request: openvino::InferRequest,
    _compiled: openvino::CompiledModel,
    outputs: Vec<String>,
}

impl OnnxModel {
    pub(crate) fn load(file: ModelFile<'_>) -> Result<Self, PipelineError> {
        let ModelFile { environment, spec, bytes, runtime: config } = file;
        let session = Session::builder(environment)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort::Error::from)?
            .with_intra_threads(config.intra_threads.max(1))
            .map_err(ort::Error::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::from)?
            .commit_from_memory(bytes)?;
        Ok(Self { session: Sessions::Ort(Mutex::new(session)), spec: spec.clone() })
    }

    /// Compiles the model (ONNX, or an IR's graph and `weights`) for OpenVINO's CPU plugin at
    /// `precision`, its input (NCHW, `side` × `side`) given a batch dimension of 1 to
    /// [`OPENVINO_MAX_BATCH`].
    pub(crate) fn load_openvino(
        openvino: &OpenVino,
        spec: &ModelSpec,
        (bytes, weights): (&[u8], Option<&[u8]>),
        side: u32,
        precision: Precision,
        threads: usize,
    ) -> Result<Self, PipelineError> {
        use openvino::{DeviceType, Dimension, PartialShape, RwPropertyKey};
        let mut core =
            openvino.core.lock().map_err(|_| PipelineError::Config("a previous OpenVINO load panicked".into()))?;
        let cpu = DeviceType::CPU;
        let threads = threads.max(1).to_string();
        for (key, value) in [
            (RwPropertyKey::InferenceNumThreads, threads.as_str()),
            (RwPropertyKey::NumStreams, "1"),
            (RwPropertyKey::HintPerformanceMode, "LATENCY"),
            (RwPropertyKey::HintInferencePrecision, precision.openvino_hint()),
        ] {
            core.set_property(&cpu, &key, value).map_err(openvino_error("setting a CPU property"))?;
        }
        let weights = weights
            .map(|weights| {
                let shape = openvino::Shape::new(&[weights.len() as i64]).map_err(openvino_error("the weights"))?;
                let mut tensor =
                    openvino::Tensor::new(openvino::ElementType::U8, &shape).map_err(openvino_error("the weights"))?;
                tensor.get_raw_data_mut().map_err(openvino_error("the weights"))?.copy_from_slice(weights);
                Ok::<_, PipelineError>(tensor)
            })
            .transpose()?;
        let mut model =
            core.read_model_from_buffer(bytes, weights.as_ref()).map_err(openvino_error("reading the model"))?;
        let side = i64::from(side);
        let shape = PartialShape::new(
            4,
            &[
                Dimension::new(1, OPENVINO_MAX_BATCH),
                Dimension::new(3, 3),
                Dimension::new(side, side),
                Dimension::new(side, side),
            ],
        )
        .map_err(openvino_error("the input shape"))?;
        model.reshape_single_input(&shape).map_err(openvino_error("giving the input a batch dimension"))?;
        let mut compiled = core.compile_model(&model, cpu).map_err(openvino_error("compiling the model"))?;
        let outputs = (0..compiled.get_output_size().map_err(openvino_error("reading the outputs"))?)
            .map(|i| compiled.get_output_by_index(i).and_then(|node| node.get_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(openvino_error("reading the outputs"))?;
        let request = compiled.create_infer_request().map_err(openvino_error("creating a request"))?;
        let session = OpenVinoSession { request, _compiled: compiled, outputs };
        Ok(Self { session: Sessions::OpenVino { precision, session: Mutex::new(session) }, spec: spec.clone() })
    }

    pub(crate) fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The runtime and precision the model runs on.
    pub(crate) fn runtime(&self) -> (Backend, Precision) {
        match &self.session {
            Sessions::Ort(_) => (Backend::Onnxruntime, Precision::F32),
            Sessions::OpenVino { precision, .. } => (Backend::Openvino, *precision),
        }
    }

    /// Most items one run takes: the manifest's fixed batch for ONNX Runtime, the compiled range for
    /// OpenVINO; `None`: any.
    pub(crate) fn max_batch(&self) -> Option<usize> {
        match &self.session {
            Sessions::Ort(_) => self.spec.max_batch,
            Sessions::OpenVino { .. } => Some(OPENVINO_MAX_BATCH as usize),
        }
    }

    /// Runs the model on one NCHW float tensor and hands every output, as `(name, shape, data)`, to `read`.
    pub(crate) fn run<R>(
        &self,
        shape: [usize; 4],
        input: Vec<f32>,
        read: impl FnOnce(&[(String, Vec<i64>, &[f32])]) -> Result<R, PipelineError>,
    ) -> Result<R, PipelineError> {
        let poisoned = || PipelineError::Config("a previous inference panicked".into());
        let session = match &self.session {
            Sessions::Ort(session) => session,
            Sessions::OpenVino { session, .. } => {
                let mut session = session.lock().map_err(|_| poisoned())?;
                return session.run(shape, &input, read);
            }
        };
        let tensor = ort::value::Tensor::from_array((shape, input))?;
        let mut session = session.lock().map_err(|_| poisoned())?;
        let outputs = session.run(ort::inputs![tensor])?;
        let names: Vec<&str> = outputs.keys().collect();
        let mut views = Vec::with_capacity(names.len());
        for name in names {
            let value =
                outputs.get(name).ok_or_else(|| PipelineError::ModelOutput(format!("output `{name}` vanished")))?;
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            views.push((name.to_string(), shape.to_vec(), data));
        }
        read(&views)
    }
}

impl OpenVinoSession {
    fn run<R>(
        &mut self,
        shape: [usize; 4],
        input: &[f32],
        read: impl FnOnce(&[(String, Vec<i64>, &[f32])]) -> Result<R, PipelineError>,
    ) -> Result<R, PipelineError> {
        let dims = shape.map(|d| d as i64);
        let shape = openvino::Shape::new(&dims).map_err(openvino_error("the input shape"))?;
        let mut tensor =
            openvino::Tensor::new(openvino::ElementType::F32, &shape).map_err(openvino_error("the input"))?;
        let data = tensor.get_data_mut::<f32>().map_err(openvino_error("the input"))?;
        if data.len() != input.len() {
            return Err(PipelineError::Config(format!("input of {} values for shape {dims:?}", input.len())));
        }
        data.copy_from_slice(input);
        self.request.set_input_tensor(&tensor).map_err(openvino_error("setting the input"))?;
        self.request.infer().map_err(openvino_error("inference"))?;
        let tensors = (0..self.outputs.len())
            .map(|i| self.request.get_output_tensor_by_index(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(openvino_error("reading an output"))?;
        let mut views = Vec::with_capacity(tensors.len());
        for (name, tensor) in self.outputs.iter().zip(&tensors) {
            let shape = tensor.get_shape().map_err(openvino_error("an output's shape"))?.get_dimensions().to_vec();
            let data = tensor.get_data::<f32>().map_err(openvino_error("an output"))?;
            views.push((name.clone(), shape, data));
        }
        read(&views)
    }
}
