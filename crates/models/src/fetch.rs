//! The model cache: `$FACEGATE_HOME/models/<file>`, filled from a mirror folder or upstream URLs.
//! Every file is sha256-verified on arrival and again, in memory, each time it is loaded.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use facegate_core::{
    Backend, ChosenBy, Embedder, EmbedderRuntime, LandmarkModel, Liveness, Manifest, ModelFile, ModelFormat, ModelSpec,
    OpenVino, OpenVinoSpec, OrtEnvironment, Pipeline, PipelineConfig, Precision, RuntimeChoice, RuntimeConfig,
    RuntimeSpec, cpu_has_bf16, dispatch,
};
use sha2::{Digest, Sha256};

use crate::runtime::{init_openvino, init_runtime};
use crate::{ModelsError, runtime_sha256};

/// Largest model file accepted from upstream (a guard against a wrong URL streaming forever).
const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a model file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// Already in the cache, checksum good.
    Cache,
    /// Copied from a mirror folder.
    Mirror(PathBuf),
    /// Downloaded from an upstream URL.
    Upstream(String),
}

/// A fetched, verified model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The file in the cache.
    pub path: PathBuf,
    /// Where it came from this time.
    pub source: FetchSource,
}

/// The local model cache and the places it is filled from.
#[derive(Debug, Clone)]
pub struct ModelCache {
    home: PathBuf,
    mirror: Option<PathBuf>,
    download: bool,
    runtime_library: Option<PathBuf>,
}

impl ModelCache {
    /// A cache rooted at `home`, filled from `mirror` (if any) and, when `download` is true, upstream.
    pub fn new(home: PathBuf, mirror: Option<PathBuf>, download: bool) -> Self {
        Self { home, mirror, download, runtime_library: None }
    }

    /// The same cache, loading ONNX Runtime from `library` instead of the cached one (when given).
    pub fn with_runtime_library(mut self, library: Option<PathBuf>) -> Self {
        self.runtime_library = library;
        self
    }

    /// The cache's root folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where a model's file lives in the cache.
    pub fn model_path(&self, spec: &ModelSpec) -> PathBuf {
        self.home.join("models").join(&spec.file)
    }

    /// Ensures the model is in the cache with the right checksum, trying the cache, the mirror, then
    /// upstream, in that order; a model published in two files (an OpenVINO IR) gets its weights file
    /// the same way. The provenance is the model file's.
    ///
    /// # Errors
    /// [`ModelsError::Unavailable`] naming every place tried; [`ModelsError::Io`] if the cache is unwritable.
    pub fn fetch(&self, spec: &ModelSpec) -> Result<Provenance, ModelsError> {
        let provenance = self.fetch_file(spec)?;
        if let Some(weights) = spec.weights_spec() {
            self.fetch_file(&weights)?;
        }
        Ok(provenance)
    }

    fn fetch_file(&self, spec: &ModelSpec) -> Result<Provenance, ModelsError> {
        let target = self.model_path(spec);
        let mut tried = Vec::new();
        match file_sha256(&target) {
            Ok(actual) if actual == spec.sha256 => {
                return Ok(Provenance { path: target, source: FetchSource::Cache });
            }
            Ok(actual) => tried.push(format!("cache {}: checksum {actual} is wrong, replacing", target.display())),
            Err(_) => tried.push(format!("cache {}: not present", target.display())),
        }
        let dir = self.home.join("models");
        fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
        match &self.mirror {
            Some(mirror) => {
                let candidate = mirror.join(&spec.file);
                match fs::File::open(&candidate) {
                    Ok(file) => match write_verified(file, &dir, &target, &spec.sha256) {
                        Ok(()) => {
                            return Ok(Provenance { path: target, source: FetchSource::Mirror(mirror.clone()) });
                        }
                        Err(e) => tried.push(format!("mirror {}: {e}", candidate.display())),
                    },
                    Err(e) => tried.push(format!("mirror {}: {e}", candidate.display())),
                }
            }
            None => tried.push("mirror: FACEGATE_MODEL_MIRROR is not set".into()),
        }
        if let (true, Some(origin)) = (spec.urls.is_empty(), &spec.derived_from) {
            tried.push(format!("upstream: none of its own; it is derived from {origin}"));
        } else if !self.download {
            tried.push("upstream: skipped (FACEGATE_OFFLINE=1)".into());
        } else {
            let agent: ureq::Agent =
                ureq::Agent::config_builder().timeout_global(Some(DOWNLOAD_TIMEOUT)).build().into();
            for url in &spec.urls {
                let attempt = agent.get(url).call().map_err(|e| e.to_string()).and_then(|mut response| {
                    let reader = response.body_mut().as_reader().take(MAX_DOWNLOAD_BYTES);
                    write_verified(reader, &dir, &target, &spec.sha256).map_err(|e| e.to_string())
                });
                match attempt {
                    Ok(()) => {
                        return Ok(Provenance { path: target, source: FetchSource::Upstream(url.clone()) });
                    }
                    Err(e) => tried.push(format!("upstream {url}: {e}")),
                }
            }
        }
        Err(ModelsError::Unavailable { name: spec.name.clone(), file: spec.file.clone(), tried })
    }

    /// Checks the cached file against its pinned checksum without fetching anything.
    ///
    /// # Errors
    /// [`ModelsError::Io`] when absent, [`ModelsError::Checksum`] when it does not match.
    pub fn verify(&self, spec: &ModelSpec) -> Result<PathBuf, ModelsError> {
        for file in spec.weights_spec().iter().chain([spec]) {
            let path = self.model_path(file);
            let actual = file_sha256(&path).map_err(|source| io_error(&path, source))?;
            check(&path, &file.sha256, &actual)?;
        }
        Ok(self.model_path(spec))
    }

    /// Fetches the model if needed and returns its bytes, verified in memory just before use.
    ///
    /// # Errors
    /// As [`ModelCache::fetch`], plus [`ModelsError::Checksum`] if the file changed underneath.
    pub fn read(&self, spec: &ModelSpec) -> Result<Vec<u8>, ModelsError> {
        let provenance = self.fetch_file(spec)?;
        let bytes = fs::read(&provenance.path).map_err(|source| io_error(&provenance.path, source))?;
        check(&provenance.path, &spec.sha256, &hex::encode(Sha256::digest(&bytes)))?;
        Ok(bytes)
    }

    /// As [`ModelCache::read`] for the model's weights file, where it has one (an OpenVINO IR).
    ///
    /// # Errors
    /// As [`ModelCache::read`].
    pub fn read_weights(&self, spec: &ModelSpec) -> Result<Option<Vec<u8>>, ModelsError> {
        spec.weights_spec().map(|weights| self.read(&weights)).transpose()
    }

    /// The ONNX Runtime library: the one given to [`ModelCache::with_runtime_library`], else
    /// `<home>/runtime/onnxruntime-<version>/<library>`,
    /// checksum-verified against the manifest's pin for this architecture.
    ///
    /// # Errors
    /// [`ModelsError::Runtime`] when missing (with the command that installs it), or a checksum error.
    pub fn runtime_library(&self, spec: &RuntimeSpec) -> Result<PathBuf, ModelsError> {
        let path = self.runtime_library.clone().unwrap_or_else(|| {
            self.home.join("runtime").join(format!("onnxruntime-{}", spec.version)).join(&spec.library)
        });
        let actual = file_sha256(&path).map_err(|e| {
            ModelsError::Runtime(format!(
                "{} is missing ({e}); install it with scripts/fetch-onnxruntime.sh",
                path.display()
            ))
        })?;
        if let Some(expected) = runtime_sha256(spec) {
            check(&path, expected, &actual)?;
        }
        Ok(path)
    }

    /// ONNX Runtime, loaded (its library checksum-verified, [`ModelCache::runtime_library`]) once per
    /// process; later calls return the loaded environment without reading the 28 MB library again.
    ///
    /// # Errors
    /// As [`ModelCache::runtime_library`] and [`init_runtime`] the first time.
    pub fn onnxruntime(&self, spec: &RuntimeSpec) -> Result<&'static OrtEnvironment, ModelsError> {
        if let Some(environment) = crate::runtime::loaded_runtime() {
            return Ok(environment);
        }
        init_runtime(&self.runtime_library(spec)?)
    }

    /// OpenVINO's C library, `<home>/runtime/openvino-<version>/<library>`, with every pinned file of
    /// the folder checksum-verified (x86_64 Linux only).
    ///
    /// # Errors
    /// [`ModelsError::Runtime`] when not pinned for this machine or missing (with the command that
    /// installs it), or a checksum error.
    pub fn openvino_library(&self, spec: Option<&OpenVinoSpec>) -> Result<PathBuf, ModelsError> {
        let spec = spec
            .filter(|_| std::env::consts::ARCH == "x86_64")
            .ok_or_else(|| ModelsError::Runtime(format!("OpenVINO is not pinned for {}", std::env::consts::ARCH)))?;
        let dir = self.openvino_dir(spec);
        for file in &spec.files {
            let path = dir.join(&file.name);
            let actual = file_sha256(&path).map_err(|e| {
                ModelsError::Runtime(format!(
                    "{} is missing ({e}); install it with scripts/fetch-openvino.sh",
                    path.display()
                ))
            })?;
            check(&path, &file.sha256_x86_64, &actual)?;
        }
        Ok(dir.join(&spec.library))
    }

    /// Where OpenVINO keeps the models it compiled: `<home>/runtime/openvino-<version>-cache`.
    pub fn openvino_cache_dir(&self, spec: &OpenVinoSpec) -> PathBuf {
        self.home.join("runtime").join(format!("openvino-{}-cache", spec.version))
    }

    fn openvino_dir(&self, spec: &OpenVinoSpec) -> PathBuf {
        self.home.join("runtime").join(format!("openvino-{}", spec.version))
    }

    /// OpenVINO, loaded (its 93 MB of libraries checksum-verified) once per process, its compiled models
    /// cached beside it.
    fn openvino(&self, spec: Option<&OpenVinoSpec>) -> Result<&'static OpenVino, ModelsError> {
        if let Some(openvino) = crate::runtime::loaded_openvino() {
            return Ok(openvino);
        }
        let library = self.openvino_library(spec)?;
        let cache = spec.map(|spec| self.openvino_cache_dir(spec));
        let cache = cache.filter(|dir| fs::create_dir_all(dir).is_ok());
        init_openvino(&library, cache.as_deref())
    }

    /// Chooses the runtime of `pipeline`'s embedder as the settings ask ([`EmbedderRuntime`]): ONNX
    /// Runtime as loaded; OpenVINO by name (its template of a test crop checked against ONNX Runtime's);
    /// `auto`: on a CPU with bf16, OpenVINO bf16 timed against ONNX Runtime and kept if faster and
    /// agreeing, elsewhere ONNX Runtime without a trial. The choice is made once per process for a model
    /// and thread count; the pipelines loaded after it take it without timing again.
    fn choose_embedder_runtime(
        &self,
        manifest: &Manifest,
        pipeline: Pipeline,
        bytes: &[u8],
        runtime: RuntimeConfig,
    ) -> Result<Pipeline, ModelsError> {
        let asked = runtime.embedder;
        let spec = pipeline.embedder().spec().clone();
        let key = (spec.sha256.clone(), asked, runtime.intra_threads);
        let earlier = lock_choices().get(&key).cloned();
        if let Some(choice) = earlier {
            return match choice.backend {
                Backend::Onnxruntime => Ok(pipeline.with_runtime_choice(choice)),
                Backend::Openvino => {
                    let openvino = self.openvino(manifest.openvino.as_ref())?;
                    let files = (bytes, None);
                    let embedder =
                        Embedder::load_openvino(openvino, &spec, files, choice.precision, runtime.intra_threads)?;
                    Ok(pipeline.with_embedder(embedder, choice)?)
                }
            };
        }
        let precision = match (asked, asked.openvino()) {
            (_, Some(precision)) => precision,
            (EmbedderRuntime::Onnxruntime, None) => {
                return Ok(pipeline.with_runtime_choice(RuntimeChoice::onnxruntime(asked, None)));
            }
            (_, None) if !cpu_has_bf16() => {
                let note = "this CPU has no bf16 arithmetic (AVX-512 BF16); OpenVINO fp32 measured no faster than ONNX Runtime";
                let choice = RuntimeChoice::onnxruntime(asked, Some(note.into()));
                lock_choices().insert(key, choice.clone());
                return Ok(pipeline.with_runtime_choice(choice));
            }
            (_, None) => Precision::Bf16,
        };
        let candidate = self.openvino(manifest.openvino.as_ref()).and_then(|openvino| {
            Ok(Embedder::load_openvino(openvino, &spec, (bytes, None), precision, runtime.intra_threads)?)
        });
        let candidate = match candidate {
            Ok(candidate) => candidate,
            Err(e) if asked == EmbedderRuntime::Auto => {
                let choice = RuntimeChoice::onnxruntime(asked, Some(format!("OpenVINO not loaded: {e}")));
                lock_choices().insert(key, choice.clone());
                return Ok(pipeline.with_runtime_choice(choice));
            }
            Err(e) => return Err(e),
        };
        let (chosen, choice) = dispatch(pipeline.embedder(), vec![candidate], asked)?;
        lock_choices().insert(key, choice.clone());
        Ok(match chosen {
            Some(embedder) => pipeline.with_embedder(embedder, choice)?,
            None => pipeline.with_runtime_choice(choice),
        })
    }

    /// Loads an embedder published as an OpenVINO IR (Intel's int8 IRs) on OpenVINO, the only runtime
    /// that reads it, whatever `embedder_runtime` asks (that setting chooses among the runtimes of an
    /// ONNX embedder). Its templates are its own (a manifest entry, template version and calibration
    /// table of its own), so no trial against ONNX Runtime applies.
    fn load_openvino_ir(
        &self,
        manifest: &Manifest,
        spec: &ModelSpec,
        graph: &[u8],
        runtime: RuntimeConfig,
    ) -> Result<(Embedder, RuntimeChoice), ModelsError> {
        let weights = self.read_weights(spec)?.ok_or_else(|| {
            ModelsError::Manifest(format!("model `{}` is an OpenVINO IR without a weights file", spec.name))
        })?;
        let openvino = self.openvino(manifest.openvino.as_ref())?;
        let precision = spec.precision;
        let embedder =
            Embedder::load_openvino(openvino, spec, (graph, Some(&weights)), precision, runtime.intra_threads)?;
        let note = "an OpenVINO IR runs on OpenVINO only; `embedder_runtime` chooses among an ONNX embedder's runtimes";
        let choice = RuntimeChoice {
            asked: runtime.embedder,
            backend: Backend::Openvino,
            precision,
            chosen_by: ChosenBy::OnlyCandidate,
            trials: Vec::new(),
            note: Some(note.into()),
        };
        Ok((embedder, choice))
    }

    /// Reads both models of a pack and builds its pipeline.
    ///
    /// # Errors
    /// Any fetch, checksum or model-loading error.
    pub fn load_pipeline(
        &self,
        environment: &OrtEnvironment,
        manifest: &Manifest,
        pack: &str,
        config: PipelineConfig,
    ) -> Result<Pipeline, ModelsError> {
        let (detector, embedder) = manifest.pack_models(pack)?;
        let pack_spec = manifest.pack(pack).ok_or_else(|| ModelsError::Manifest(format!("unknown pack `{pack}`")))?;
        let detector_bytes = self.read(detector)?;
        let embedder_bytes = self.read(embedder)?;
        let mut pipeline = match embedder.format {
            ModelFormat::Onnx => {
                let embedder = (embedder, embedder_bytes.as_slice());
                let pipeline = Pipeline::load(environment, pack_spec, (detector, &detector_bytes), embedder, config)?;
                self.choose_embedder_runtime(manifest, pipeline, &embedder_bytes, config.runtime)?
            }
            ModelFormat::OpenvinoIr => {
                let embedder = self.load_openvino_ir(manifest, embedder, &embedder_bytes, config.runtime)?;
                Pipeline::load_with_embedder(environment, pack_spec, (detector, &detector_bytes), embedder, config)?
            }
        };
        if let Some(landmarks) = manifest.pack_landmarks(pack_spec) {
            let bytes = self.read(landmarks)?;
            let file = ModelFile { environment, spec: landmarks, bytes: &bytes, runtime: &config.runtime };
            pipeline = pipeline.with_landmarks(LandmarkModel::load(file)?);
        }
        if let Some((liveness, models)) = manifest.pack_liveness(pack_spec)? {
            let files = models.iter().map(|m| self.read(m)).collect::<Result<Vec<_>, _>>()?;
            let pairs: Vec<(&ModelSpec, &[u8])> = models.iter().copied().zip(files.iter().map(Vec::as_slice)).collect();
            pipeline = pipeline.with_liveness(Liveness::load(environment, liveness, &pairs, &config.runtime)?);
        }
        match &pack_spec.head {
            Some(head) => Ok(pipeline.with_head(crate::pack_dir::read_head(head)?)?),
            None => Ok(pipeline),
        }
    }
}

fn check(path: &Path, expected: &str, actual: &str) -> Result<(), ModelsError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ModelsError::Checksum {
            path: path.display().to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ModelsError {
    ModelsError::Io { path: path.display().to_string(), source }
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Streams `reader` into a temporary file in `dir`, and renames it onto `target` only if its sha256
/// matches: a crash or a bad source never leaves a half-written or wrong file under the final name.
fn write_verified(mut reader: impl Read, dir: &Path, target: &Path, expected: &str) -> Result<(), ModelsError> {
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|source| io_error(dir, source))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).map_err(|source| io_error(target, source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        temp.write_all(&buffer[..n]).map_err(|source| io_error(temp.path(), source))?;
    }
    check(target, expected, &hex::encode(hasher.finalize()))?;
    temp.as_file().sync_all().map_err(|source| io_error(temp.path(), source))?;
    temp.persist(target).map_err(|e| io_error(target, e.error))?;
    Ok(())
}

/// The embedder runtimes chosen in this process, by (model sha256, what was asked, threads).
type Choices = std::collections::HashMap<(String, EmbedderRuntime, usize), RuntimeChoice>;

fn lock_choices() -> std::sync::MutexGuard<'static, Choices> {
    static CHOICES: std::sync::OnceLock<std::sync::Mutex<Choices>> = std::sync::OnceLock::new();
    CHOICES.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(bytes: &[u8]) -> ModelSpec {
        let manifest = crate::builtin_manifest().expect("manifest");
        let mut spec = manifest.models[0].clone();
        spec.file = "tiny.onnx".into();
        spec.sha256 = hex::encode(Sha256::digest(bytes));
        spec.urls = vec!["http://127.0.0.1:9/unreachable.onnx".into()];
        spec
    }

    #[test]
    fn mirror_then_cache_and_bad_mirror_is_rejected() {
        let home = tempfile::tempdir().expect("tempdir");
        let mirror = tempfile::tempdir().expect("tempdir");
        fs::write(mirror.path().join("tiny.onnx"), b"weights").expect("write");
        let cache = ModelCache::new(home.path().into(), Some(mirror.path().into()), false);
        let spec = spec_for(b"weights");
        assert!(matches!(cache.fetch(&spec).expect("from mirror").source, FetchSource::Mirror(_)));
        assert_eq!(cache.fetch(&spec).expect("cached").source, FetchSource::Cache);
        assert_eq!(cache.read(&spec).expect("read"), b"weights");

        let wrong = spec_for(b"other weights");
        let err = cache.fetch(&wrong).expect_err("checksum mismatch everywhere");
        let message = err.to_string();
        assert!(message.contains("does not match") && message.contains("FACEGATE_OFFLINE"), "{message}");
    }

    #[test]
    fn a_model_in_two_files_is_fetched_and_verified_with_its_weights() {
        let home = tempfile::tempdir().expect("tempdir");
        let mirror = tempfile::tempdir().expect("tempdir");
        fs::write(mirror.path().join("tiny.onnx"), b"graph").expect("write");
        let cache = ModelCache::new(home.path().into(), Some(mirror.path().into()), false);
        let mut spec = spec_for(b"graph");
        spec.format = ModelFormat::OpenvinoIr;
        let weights = facegate_core::WeightsFile {
            file: "tiny.bin".into(),
            sha256: hex::encode(Sha256::digest(b"weights")),
            urls: Vec::new(),
        };
        spec.weights = Some(weights);
        let err = cache.fetch(&spec).expect_err("the weights are missing from the mirror").to_string();
        assert!(err.contains("tiny.bin"), "{err}");
        fs::write(mirror.path().join("tiny.bin"), b"weights").expect("write");
        cache.fetch(&spec).expect("both files");
        assert_eq!(cache.read_weights(&spec).expect("read").as_deref(), Some(&b"weights"[..]));
        cache.verify(&spec).expect("both verified");
        fs::write(home.path().join("models").join("tiny.bin"), b"changed").expect("write");
        assert!(matches!(cache.verify(&spec), Err(ModelsError::Checksum { .. })), "a changed weights file is caught");
    }

    #[test]
    fn offline_without_mirror_names_every_place() {
        let home = tempfile::tempdir().expect("tempdir");
        let cache = ModelCache::new(home.path().into(), None, true);
        let message = cache.fetch(&spec_for(b"x")).expect_err("nowhere to get it").to_string();
        assert!(message.contains("not present") && message.contains("FACEGATE_MODEL_MIRROR"), "{message}");
        assert!(message.contains("upstream http://127.0.0.1:9/unreachable.onnx"), "{message}");
    }
}
