//! Loading the ONNX Runtime shared library (`load-dynamic`): the path comes from the cache's runtime
//! folder (filled by `scripts/fetch-onnxruntime.sh`) or a library the host names, and is checksum-verified first.

use std::path::Path;
use std::sync::OnceLock;

use facegate_core::{OrtEnvironment, RuntimeSpec};

use crate::ModelsError;

static ENVIRONMENT: OnceLock<OrtEnvironment> = OnceLock::new();

/// The pinned sha256 of the runtime library for this machine's architecture.
pub fn runtime_sha256(spec: &RuntimeSpec) -> Option<&str> {
    match std::env::consts::ARCH {
        "x86_64" => Some(&spec.sha256_x86_64),
        "aarch64" => Some(&spec.sha256_aarch64),
        _ => None,
    }
}

/// Loads ONNX Runtime from `library` once per process and returns its environment; later calls return
/// the same environment.
///
/// # Errors
/// [`ModelsError::Runtime`] when the library does not load.
pub fn init_runtime(library: &Path) -> Result<&'static OrtEnvironment, ModelsError> {
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let environment = ort::init_from(library)
        .map_err(|e| ModelsError::Runtime(format!("{}: {e}", library.display())))?
        .with_name("facegate")
        .build()
        .map_err(|e| ModelsError::Runtime(e.to_string()))?;
    Ok(ENVIRONMENT.get_or_init(|| environment))
}
