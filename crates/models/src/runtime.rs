//! Loading the ONNX Runtime shared library (`load-dynamic`): the path comes from the cache's runtime
//! folder (filled by `scripts/fetch-onnxruntime.sh`) or a library the host names, and is checksum-verified first.
//! OpenVINO's libraries (`scripts/fetch-openvino.sh`) likewise, for the embedder where it is chosen.

use std::path::Path;
use std::sync::OnceLock;

use facegate_core::{OpenVino, OrtEnvironment, RuntimeSpec};

use crate::ModelsError;

static ENVIRONMENT: OnceLock<OrtEnvironment> = OnceLock::new();
static OPENVINO: OnceLock<OpenVino> = OnceLock::new();

/// The pinned sha256 of the runtime library for this machine's architecture.
pub fn runtime_sha256(spec: &RuntimeSpec) -> Option<&str> {
    match std::env::consts::ARCH {
        "x86_64" => Some(&spec.sha256_x86_64),
        "aarch64" => Some(&spec.sha256_aarch64),
        _ => None,
    }
}

/// Loads ONNX Runtime from `library` and returns the process's environment. Called by
/// `ModelCache::onnxruntime` only while none is loaded ([`loaded_runtime`], checked there before the
/// library is hashed); of two loads racing, the first environment stored is the one kept.
///
/// # Errors
/// [`ModelsError::Runtime`] when the library does not load.
pub(crate) fn init_runtime(library: &Path) -> Result<&'static OrtEnvironment, ModelsError> {
    let environment = ort::init_from(library)
        .map_err(|e| ModelsError::Runtime(format!("{}: {e}", library.display())))?
        .with_name("facegate")
        .build()
        .map_err(|e| ModelsError::Runtime(e.to_string()))?;
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

/// ONNX Runtime's environment when [`init_runtime`] has loaded it in this process.
pub(crate) fn loaded_runtime() -> Option<&'static OrtEnvironment> {
    ENVIRONMENT.get()
}

/// OpenVINO's core when [`init_openvino`] has loaded it in this process.
pub(crate) fn loaded_openvino() -> Option<&'static OpenVino> {
    OPENVINO.get()
}

/// Loads OpenVINO's C library `library` (its other libraries beside it), with compiled models cached in
/// `cache_dir` when given (compiling takes 0.1–0.4 s a model; a cached one loads in a fraction), and
/// returns the process's core. Called by `ModelCache` only while none is loaded ([`loaded_openvino`],
/// checked there before the libraries are hashed); of two loads racing, the first core stored is kept.
///
/// # Errors
/// [`ModelsError::Runtime`] when the library does not load or the core cannot be created.
pub(crate) fn init_openvino(library: &Path, cache_dir: Option<&Path>) -> Result<&'static OpenVino, ModelsError> {
    let failed = |e: String| ModelsError::Runtime(format!("OpenVINO {}: {e}", library.display()));
    openvino_sys::library::load_from(library).map_err(failed)?;
    let mut core = openvino::Core::new().map_err(|e| failed(e.to_string()))?;
    if let Some(dir) = cache_dir {
        let everywhere = openvino::DeviceType::Other("".into());
        let dir = dir.to_string_lossy();
        core.set_property(&everywhere, &openvino::RwPropertyKey::CacheDir, &dir).map_err(|e| failed(e.to_string()))?;
    }
    Ok(OPENVINO.get_or_init(|| OpenVino::new(core)))
}
