//! Model packs on disk: the built-in manifest (`models/manifest.toml`), a fetcher that finds each pinned
//! file in the cache, a mirror folder or upstream (always sha256-verified, written atomically), and the
//! loading of the ONNX Runtime shared library that the setup script installs beside the models.
//!
//! ```no_run
//! # fn demo() -> Result<(), facegate_models::ModelsError> {
//! let manifest = facegate_models::builtin_manifest()?;
//! let store = facegate_models::ModelCache::new("/var/cache/facegate".into(), None, true);
//! let environment = store.onnxruntime(&manifest.runtime)?;
//! let pipeline = store.load_pipeline(environment, &manifest, "mobilefacenet", Default::default())?;
//! # Ok(()) }
//! ```

mod fetch;
mod pack_dir;
mod runtime;

pub use fetch::{FetchSource, ModelCache, Provenance};
pub use pack_dir::{HEAD_FILE, PACK_MANIFEST, register_pack, write_pack_dir};
pub use runtime::runtime_sha256;

use facegate_core::{Manifest, PipelineError};

/// The manifest compiled into facegate.
pub const BUILTIN_MANIFEST: &str = include_str!("../../../models/manifest.toml");

/// Errors of fetching, verifying and loading models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelsError {
    /// No source had a file with the right checksum.
    #[error("model `{name}` ({file}) is not available; looked in:\n  {}", tried.join("\n  "))]
    Unavailable {
        /// Model name.
        name: String,
        /// File name.
        file: String,
        /// Every place tried, with why it failed.
        tried: Vec<String>,
    },
    /// A file on disk does not match its pinned checksum.
    #[error("{path}: sha256 {actual} does not match the pinned {expected}")]
    Checksum {
        /// The file.
        path: String,
        /// Pinned sha256.
        expected: String,
        /// Computed sha256.
        actual: String,
    },
    /// Reading or writing the cache failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The manifest does not parse or is inconsistent.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The ONNX Runtime library is missing or fails to load.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// A model loaded but the pipeline could not be built.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Parses a manifest from TOML text.
///
/// # Errors
/// [`ModelsError::Manifest`] when it does not parse or a pack names a missing model.
pub fn parse_manifest(text: &str) -> Result<Manifest, ModelsError> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| ModelsError::Manifest(e.to_string()))?;
    for pack in &manifest.packs {
        manifest.pack_models(&pack.name).map_err(|e| ModelsError::Manifest(e.to_string()))?;
    }
    Ok(manifest)
}

/// The manifest compiled into facegate, parsed.
///
/// # Errors
/// [`ModelsError::Manifest`] if the built-in manifest is broken (a build defect, caught by tests).
pub fn builtin_manifest() -> Result<Manifest, ModelsError> {
    parse_manifest(BUILTIN_MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_consistent() {
        let manifest = builtin_manifest().expect("built-in manifest parses");
        let (detector, embedder) = manifest.pack_models("mobilefacenet").expect("mobilefacenet pack");
        assert_eq!(detector.family, "yunet");
        assert_eq!(embedder.embedding_size, Some(128));
        for model in &manifest.models {
            assert_eq!(model.sha256.len(), 64, "{}", model.name);
            assert!(!model.licence.is_empty(), "{}", model.name);
            assert!(!model.urls.is_empty() || model.derived_from.is_some(), "{}: no source", model.name);
            let ir = model.format == facegate_core::ModelFormat::OpenvinoIr;
            assert_eq!(ir, model.weights.is_some(), "{}: an IR and only an IR has a weights file", model.name);
            let int8 = model.precision == facegate_core::Precision::Int8;
            assert!(!int8 || ir, "{}: int8 models are IRs (run on OpenVINO, never tried against fp32)", model.name);
        }
    }

    #[test]
    fn research_only_packs_are_known_by_their_weights() {
        let manifest = builtin_manifest().expect("built-in manifest parses");
        let research = |pack: &str| -> Vec<String> {
            let spec = manifest.pack(pack).expect("pack");
            manifest.research_only_models(spec).into_iter().map(|m| m.name.clone()).collect()
        };
        assert_eq!(research("mobilefacenet"), ["mobilefacenet-128"]);
        assert_eq!(research("scrfd-500m"), ["scrfd-500m", "mobilefacenet-128"]);
        assert!(research("omz-0095").is_empty(), "every omz-0095 file is MIT or Apache-2.0");
        assert!(research(facegate_core::DEFAULT_PACK).is_empty(), "the default pack is never research only");
    }
}
