//! Thin wrapper over ONNX Runtime sessions: built once from model bytes, reused for every call.

use std::sync::Mutex;

use ort::session::{Session, builder::GraphOptimizationLevel};

use crate::error::PipelineError;
use crate::pack::ModelSpec;

/// An initialised ONNX Runtime (library loaded, environment created); made once per process by
/// `facegate_models::init_runtime` and passed to every model load.
pub type OrtEnvironment = ort::environment::Environment;

/// How ONNX Runtime sessions are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Threads used inside one model run (ONNX Runtime's intra-op pool).
    pub intra_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { intra_threads: 1 }
    }
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

/// One loaded ONNX model and its manifest entry. Runs are serialised by a mutex: ONNX Runtime
/// parallelises inside a run.
pub(crate) struct OnnxModel {
    session: Mutex<Session>,
    spec: ModelSpec,
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
        Ok(Self { session: Mutex::new(session), spec: spec.clone() })
    }

    pub(crate) fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs the model on one NCHW float tensor and hands every output, as `(name, shape, data)`, to `read`.
    pub(crate) fn run<R>(
        &self,
        shape: [usize; 4],
        input: Vec<f32>,
        read: impl FnOnce(&[(String, Vec<i64>, &[f32])]) -> Result<R, PipelineError>,
    ) -> Result<R, PipelineError> {
        let tensor = ort::value::Tensor::from_array((shape, input))?;
        let mut session =
            self.session.lock().map_err(|_| PipelineError::Config("a previous inference panicked".into()))?;
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
