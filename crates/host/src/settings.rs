//! One [`Settings`] for every host, read once at start in layers: the host's defaults, then an
//! optional TOML file, then the environment (`FACEGATE_<KEY>` or `FACEGATE__<KEY>`, e.g.
//! `FACEGATE_WORKERS=2`), then command-line flags, and validated once. The hosts pass the environment
//! in as pairs: this crate reads none itself.
//!
//! ```
//! use facegate_host::{HostKind, Settings};
//! let env = [("FACEGATE_WORKERS".to_string(), "3".to_string())];
//! let settings = Settings::load(HostKind::Serve, Settings::defaults(HostKind::Serve), None, env, toml::Table::new()).unwrap();
//! assert_eq!((settings.workers, settings.pg_pool_size), (3, 5));
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use facegate_api::ApiConfig;
use facegate_core::{DetectorConfig, EmbedderRuntime, PipelineConfig, RuntimeConfig};
use facegate_models::ModelCache;
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that set [`Settings`] keys.
pub const ENV_PREFIX: &str = "FACEGATE_";

/// Which host reads the settings: their defaults differ where the platform does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// `facegate serve` on a machine.
    Serve,
    /// `bootstrap` on AWS Lambda: one request at a time, a 6 MB payload limit, a read-only task root.
    Lambda,
}

/// Everything a host needs to build the API: listener, store, keys, models and limits. Keys are the
/// field names (file keys, and environment `FACEGATE_` + the name in capitals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`serve`; port 0 picks a free port).
    pub addr: String,
    /// TLS certificate chain, PEM (`serve`; with `tls_key`, HTTPS).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM.
    pub tls_key: Option<PathBuf>,
    /// Folder of the embedded store (`gallery.db`) and the default master key file.
    pub data_dir: PathBuf,
    /// Gallery store: a `postgres://` URL for PostgreSQL + pgvector; unset: the embedded store.
    pub store: Option<String>,
    /// PostgreSQL connections per process (small on Lambda).
    pub pg_pool_size: u32,
    /// The local master key, 64 hex digits (else `master_key_file`, else `<data_dir>/master.key`,
    /// created with mode 0600 on first start).
    pub master_key: Option<String>,
    /// File holding the local master key.
    pub master_key_file: Option<PathBuf>,
    /// AWS KMS key id or ARN: data keys come from KMS instead of a local master key (Lambda).
    pub kms_key_id: Option<String>,
    /// KMS endpoint override (tests).
    pub kms_endpoint: Option<String>,
    /// An admin API key created at start if missing (the key itself; keep it in a secret store).
    pub bootstrap_admin_key: Option<String>,
    /// The tenant of `bootstrap_admin_key`.
    pub bootstrap_tenant: String,
    /// Models (`models/`) and ONNX Runtime (`runtime/`) live here.
    pub home: PathBuf,
    /// A folder holding the pinned model files, tried before upstream.
    pub model_mirror: Option<PathBuf>,
    /// Never download models (they ship with the host, or come from the mirror).
    pub offline: bool,
    /// Another `libonnxruntime` to load (still checksum-verified on x86_64 and aarch64).
    pub ort_dylib_path: Option<PathBuf>,
    /// Packs to load: built-in names or trained pack folders; the first is the default.
    pub packs: Vec<String>,
    /// Images analysed at once (each worker holds its own model sessions).
    pub workers: usize,
    /// ONNX Runtime threads per model run.
    pub threads: usize,
    /// Which runtime the embedder runs on: `auto` (OpenVINO bf16 where the CPU has bf16 and it measures
    /// faster at load, else ONNX Runtime), `onnxruntime`, `openvino-f32`, `openvino-bf16`.
    pub embedder_runtime: EmbedderRuntime,
    /// Faces analysed per image (responses say `faces_truncated` when there were more), 1 to 1000.
    pub max_faces: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Requests per second per API key.
    pub rate_limit: u32,
    /// Failed key checks allowed per client address per 10 s; past that, 429.
    pub max_auth_failures: u32,
    /// Whole-request time limit, seconds (on Lambda, kept below `function_timeout`).
    pub request_timeout: u64,
    /// The Lambda function's timeout, seconds (the template sets it with the function's `Timeout`).
    pub function_timeout: Option<u64>,
    /// Image requests holding a body at once; past that, 503 with Retry-After. A tenant holds at most
    /// half of them, a key a quarter.
    pub max_pending_images: usize,
    /// Door attempts holding a body at once: a pool of their own, shared between tenants the same way.
    pub max_pending_doors: usize,
    /// Seconds an admitted request's body may take to arrive (408 after that).
    pub body_timeout: u64,
    /// `serve`: seconds a client may take to send a request's head, and an idle keep-alive connection
    /// stays open.
    pub header_timeout: u64,
    /// `serve`: connections held at once; past that, new ones are closed at once.
    pub max_connections: usize,
    /// Webhooks may be delivered to public unicast addresses (never loopback, private, link-local or
    /// other special-purpose ones unless listed in `egress_allow`).
    pub egress_public: bool,
    /// Where else webhooks may go: networks (`10.1.2.0/24`), addresses (`127.0.0.1`) or host names
    /// (`hooks.corp.example`), e.g. an on-premises receiver or loopback for development.
    pub egress_allow: Vec<String>,
    /// `serve`: watch the tenants' enabled cameras (`/v1/cameras`).
    pub cameras: bool,
    /// Cameras may also be dialled on the private networks cameras live on (RFC 1918, unique-local),
    /// besides what `egress_public` and `egress_allow` allow; loopback and link-local only when listed.
    pub camera_private_networks: bool,
    /// `serve`: seconds between two readings of the camera list (a change takes effect within it).
    pub camera_poll: u64,
    /// Serial ports door readers may use for OSDP (device paths, e.g. `/dev/ttyUSB0`); none by default,
    /// so a tenant can never make the server open a file of its choosing.
    pub osdp_serial_ports: Vec<String>,
    /// Bytes of request bodies held at once by image requests; past that, 503 with Retry-After.
    pub max_pending_bytes: usize,
    /// Bytes of decoded pixels held at once by all images being analysed.
    pub max_decoding_bytes: u64,
    /// Kept faces re-embedded and stored per transaction by a migration.
    pub migration_batch: u32,
    /// Tests and demos only: door decisions are timed by the RFC 3339 instant written in this file
    /// (read at each decision) instead of the system clock.
    pub clock_file: Option<PathBuf>,
    /// Webhooks are delivered before each write's response leaves (Lambda, whose process freezes
    /// between requests); otherwise a background task delivers them.
    pub inline_delivery: bool,
    /// Lambda only: this function drains the webhook outbox and applies retention on a schedule
    /// instead of serving HTTP.
    pub outbox_drain: bool,
    /// `serve`: seconds between retention sweeps (expired audit events, expired consents).
    pub sweep_interval: u64,
}

/// Why settings could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("settings file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A layer holds an unknown key or a value of the wrong type.
    #[error("settings: {0}")]
    Invalid(String),
}

/// Lambda's synchronous payload limit is 6 MB including base64; bodies are capped below it.
const LAMBDA_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// What the function keeps for itself after the API's own timeout: enough to send the `timeout` answer.
const LAMBDA_TIMEOUT_MARGIN_S: u64 = 1;
/// Most faces per image a server may be set to analyse.
pub const MAX_FACES_LIMIT: u16 = 1000;

impl Settings {
    /// The defaults of a host kind (folders relative to the working directory for `Serve`: the CLI
    /// puts them in the user's data and cache folders).
    pub fn defaults(kind: HostKind) -> Self {
        let api = ApiConfig::default();
        let serve = kind == HostKind::Serve;
        Self {
            addr: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            data_dir: if serve { PathBuf::from(".facegate-data") } else { PathBuf::from("/tmp/facegate") },
            store: None,
            pg_pool_size: if serve { 5 } else { 2 },
            master_key: None,
            master_key_file: None,
            kms_key_id: None,
            kms_endpoint: None,
            bootstrap_admin_key: None,
            bootstrap_tenant: "default".into(),
            home: if serve { PathBuf::from(".facegate") } else { PathBuf::from("/var/task") },
            model_mirror: None,
            offline: !serve,
            ort_dylib_path: None,
            packs: vec![facegate_core::DEFAULT_PACK.into()],
            workers: 1,
            threads: 1,
            embedder_runtime: EmbedderRuntime::Auto,
            max_faces: api.max_faces,
            max_body_bytes: if serve { api.max_body_bytes } else { LAMBDA_MAX_BODY_BYTES },
            rate_limit: api.rate_limit_per_second,
            max_auth_failures: api.max_auth_failures,
            request_timeout: api.request_timeout.as_secs(),
            function_timeout: None,
            max_pending_images: api.max_pending_images,
            max_pending_doors: api.max_pending_doors,
            body_timeout: api.body_timeout.as_secs(),
            header_timeout: 10,
            max_connections: 1024,
            egress_public: true,
            egress_allow: Vec::new(),
            cameras: serve,
            camera_private_networks: true,
            camera_poll: 2,
            osdp_serial_ports: Vec::new(),
            max_pending_bytes: api.max_pending_bytes,
            max_decoding_bytes: api.max_decoding_bytes,
            migration_batch: api.migration_batch,
            clock_file: None,
            inline_delivery: !serve,
            outbox_drain: false,
            sweep_interval: 60,
        }
    }

    /// The settings of a `kind` of host: `base` (its [`Settings::defaults`], with the host's own folders),
    /// then `file` (TOML), then the `FACEGATE_` variables of `env`, then `overrides` (the flags given),
    /// validated.
    ///
    /// # Errors
    /// [`SettingsError`] for an unreadable file, an unknown key in the file or the flags, a value of the
    /// wrong type, or settings that contradict each other.
    pub fn load(
        kind: HostKind,
        base: Settings,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: toml::Table,
    ) -> Result<Self, SettingsError> {
        let mut table = toml::Table::try_from(base).map_err(invalid)?;
        let known: Vec<String> = field_names();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| SettingsError::File { path: path.display().to_string(), source })?;
            let layer: toml::Table = toml::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            table.extend(layer);
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX).map(|k| k.trim_start_matches('_').to_ascii_lowercase())
            else {
                continue;
            };
            if known.contains(&key) && !value.is_empty() {
                let typed = env_value(table.get(&key), &value).map_err(|e| invalid(format!("{name}: {e}")))?;
                table.insert(key, typed);
            }
        }
        table.extend(overrides);
        let mut settings: Settings = table.try_into().map_err(invalid)?;
        settings.validate(kind)?;
        Ok(settings)
    }

    /// Checks the settings against each other, and keeps the Lambda request timeout below the
    /// function's.
    fn validate(&mut self, kind: HostKind) -> Result<(), SettingsError> {
        if self.packs.is_empty() {
            return Err(invalid("`packs` names no pack"));
        }
        if !(1..=usize::from(MAX_FACES_LIMIT)).contains(&self.max_faces) {
            return Err(invalid(format!("`max_faces` must be 1 to {MAX_FACES_LIMIT}, not {}", self.max_faces)));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid("`tls_cert` and `tls_key` go together"));
        }
        if self.workers == 0 || self.threads == 0 || self.request_timeout == 0 || self.sweep_interval == 0 {
            return Err(invalid("`workers`, `threads`, `request_timeout` and `sweep_interval` must be at least 1"));
        }
        if self.body_timeout == 0 || self.header_timeout == 0 || self.max_connections == 0 || self.camera_poll == 0 {
            return Err(invalid(
                "`body_timeout`, `header_timeout`, `max_connections` and `camera_poll` must be at least 1",
            ));
        }
        self.egress_policy()?;
        if kind == HostKind::Lambda {
            self.workers = 1;
            if let Some(function) = self.function_timeout {
                let most = function.saturating_sub(LAMBDA_TIMEOUT_MARGIN_S).max(1);
                self.request_timeout = self.request_timeout.min(most);
            }
        }
        Ok(())
    }

    /// The API's limits.
    pub fn api_config(&self) -> ApiConfig {
        ApiConfig {
            max_body_bytes: self.max_body_bytes,
            max_faces: self.max_faces,
            max_pending_images: self.max_pending_images,
            max_pending_doors: self.max_pending_doors.max(1),
            body_timeout: Duration::from_secs(self.body_timeout),
            max_pending_bytes: self.max_pending_bytes,
            max_decoding_bytes: self.max_decoding_bytes,
            rate_limit_per_second: self.rate_limit,
            max_auth_failures: self.max_auth_failures,
            request_timeout: Duration::from_secs(self.request_timeout),
            migration_batch: self.migration_batch.max(1),
            inline_delivery: self.inline_delivery,
            ..ApiConfig::default()
        }
    }

    /// Where webhooks may be delivered.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] for an `egress_allow` entry that is no network, address or host name.
    pub fn egress_policy(&self) -> Result<facegate_gallery::EgressPolicy, SettingsError> {
        facegate_gallery::EgressPolicy::new(self.egress_public, &self.egress_allow).map_err(invalid)
    }

    /// Where cameras may be dialled: what webhooks may reach, and the private networks unless
    /// `camera_private_networks` is off.
    ///
    /// # Errors
    /// As [`Settings::egress_policy`].
    pub fn camera_egress_policy(&self) -> Result<facegate_gallery::EgressPolicy, SettingsError> {
        let policy = self.egress_policy()?;
        Ok(if self.camera_private_networks { policy.with_camera_networks() } else { policy })
    }

    /// The clock of door decisions: the system clock, or the instant in `clock_file` (the system clock
    /// when the file cannot be read as an RFC 3339 instant).
    pub fn clock(&self) -> facegate_gallery::Clock {
        match self.clock_file.clone() {
            None => std::sync::Arc::new(facegate_store::now_ms),
            Some(path) => std::sync::Arc::new(move || {
                std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse::<jiff::Timestamp>().ok())
                    .map_or_else(facegate_store::now_ms, |t| t.as_millisecond())
            }),
        }
    }

    /// The model cache: `home`, filled from `model_mirror` and, unless `offline`, upstream.
    pub fn model_cache(&self) -> ModelCache {
        ModelCache::new(self.home.clone(), self.model_mirror.clone(), !self.offline)
            .with_runtime_library(self.ort_dylib_path.clone())
    }

    /// The pipeline settings of the server: `threads`, and a detector that reports one face more than
    /// `max_faces`, so a response can say that faces were left out.
    pub fn pipeline_config(&self, base: PipelineConfig) -> PipelineConfig {
        PipelineConfig {
            runtime: RuntimeConfig { intra_threads: self.threads, embedder: self.embedder_runtime },
            detector: DetectorConfig { max_faces: self.max_faces + 1, ..base.detector },
            ..base
        }
    }
}

/// The keys of [`Settings`]: those of its defaults as JSON, which keeps the unset ones (TOML drops them).
fn field_names() -> Vec<String> {
    match serde_json::to_value(Settings::defaults(HostKind::Serve)) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// An environment value typed like the key's current value: booleans as `1`/`0`/`true`/`false`,
/// numbers, comma-separated lists; strings and paths as they are.
fn env_value(current: Option<&toml::Value>, text: &str) -> Result<toml::Value, String> {
    let text = text.trim();
    Ok(match current {
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            other => return Err(format!("expected a boolean, got `{other}`")),
        }),
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(text.parse().map_err(|_| format!("expected a whole number, got `{text}`"))?)
        }
        Some(toml::Value::Array(_)) => {
            toml::Value::Array(text.split(',').map(|s| toml::Value::String(s.trim().to_string())).collect())
        }
        _ if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() && current.is_none() => {
            text.parse().map(toml::Value::Integer).unwrap_or_else(|_| toml::Value::String(text.to_string()))
        }
        _ => toml::Value::String(text.to_string()),
    })
}

fn invalid(error: impl std::fmt::Display) -> SettingsError {
    SettingsError::Invalid(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_apply_in_order_and_unknown_variables_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("facegate.toml");
        std::fs::write(&file, "workers = 4\nrate_limit = 7\npacks = [\"default\", \"scrfd\"]\n").expect("write");
        let vars = env(&[("FACEGATE__RATE_LIMIT", "9"), ("FACEGATE_OFFLINE", "1"), ("FACEGATE_LOG", "debug")]);
        let mut flags = toml::Table::new();
        flags.insert("workers".into(), toml::Value::Integer(2));
        let settings = Settings::load(HostKind::Serve, Settings::defaults(HostKind::Serve), Some(&file), vars, flags)
            .expect("settings");
        assert_eq!((settings.workers, settings.rate_limit, settings.offline), (2, 9, true));
        assert_eq!(settings.packs, vec!["default".to_string(), "scrfd".to_string()]);
        assert_eq!(settings.pg_pool_size, 5);
        let lambda = Settings::load(
            HostKind::Lambda,
            Settings::defaults(HostKind::Lambda),
            None,
            env(&[("FACEGATE_PG_POOL_SIZE", "3")]),
            toml::Table::new(),
        )
        .expect("lambda settings");
        assert_eq!((lambda.pg_pool_size, lambda.max_body_bytes, lambda.offline), (3, LAMBDA_MAX_BODY_BYTES, true));
    }

    #[test]
    fn the_embedder_runtime_is_a_setting_that_reaches_the_pipeline() {
        let load = |value: &str| {
            let defaults = Settings::defaults(HostKind::Serve);
            let vars = env(&[("FACEGATE_EMBEDDER_RUNTIME", value)]);
            Settings::load(HostKind::Serve, defaults, None, vars, toml::Table::new())
        };
        assert_eq!(Settings::defaults(HostKind::Lambda).embedder_runtime, EmbedderRuntime::Auto);
        for runtime in EmbedderRuntime::ALL {
            let settings = load(runtime.as_str()).expect("settings");
            assert_eq!(settings.embedder_runtime, runtime);
            assert_eq!(settings.pipeline_config(PipelineConfig::default()).runtime.embedder, runtime);
        }
        assert!(matches!(load("openvino"), Err(SettingsError::Invalid(m)) if m.contains("embedder_runtime")));
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        let wrong = Settings::load(
            HostKind::Serve,
            Settings::defaults(HostKind::Serve),
            None,
            env(&[("FACEGATE_WORKERS", "many")]),
            toml::Table::new(),
        );
        assert!(matches!(wrong, Err(SettingsError::Invalid(m)) if m.contains("FACEGATE_WORKERS")));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("facegate.toml");
        std::fs::write(&file, "wokers = 4\n").expect("write");
        assert!(
            Settings::load(
                HostKind::Serve,
                Settings::defaults(HostKind::Serve),
                Some(&file),
                env(&[]),
                toml::Table::new()
            )
            .is_err(),
            "typo in a key"
        );
        let faces = Settings::load(
            HostKind::Serve,
            Settings::defaults(HostKind::Serve),
            None,
            env(&[("FACEGATE_MAX_FACES", "5000")]),
            toml::Table::new(),
        );
        assert!(faces.is_err());
    }

    #[test]
    fn the_lambda_request_timeout_stays_below_the_function_timeout() {
        let vars = env(&[("FACEGATE_FUNCTION_TIMEOUT", "15"), ("FACEGATE_REQUEST_TIMEOUT", "30")]);
        let settings =
            Settings::load(HostKind::Lambda, Settings::defaults(HostKind::Lambda), None, vars, toml::Table::new())
                .expect("settings");
        assert_eq!(settings.request_timeout, 14);
        assert!(settings.api_config().request_timeout < Duration::from_secs(15));
    }

    #[test]
    fn the_sam_template_sets_settings_by_their_names() {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/template.yaml"))
            .expect("deploy/template.yaml");
        let known = field_names();
        let set: Vec<String> = template
            .lines()
            .filter_map(|line| {
                line.trim().strip_prefix(ENV_PREFIX)?.split_once(':').map(|(k, _)| k.to_ascii_lowercase())
            })
            .collect();
        assert!(set.contains(&"function_timeout".to_string()), "{set:?}");
        for key in &set {
            assert!(known.contains(key), "the template sets FACEGATE_{}, which is no setting", key.to_uppercase());
        }
    }
}
