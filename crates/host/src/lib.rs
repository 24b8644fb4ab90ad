//! What every host of the API does at start-up, whatever serves the router afterwards (`facegate
//! serve` locally, `bootstrap` on Lambda): read one [`Settings`] (defaults → file → environment →
//! flags), then [`build_state`]: load the model packs once, open the configured store, store the
//! bootstrap admin key, and put them together into the [`AppState`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), facegate_host::HostError> {
//! let store = facegate_host::open_store(None, "/tmp/facegate".as_ref(), 5).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

mod settings;

pub use settings::{ENV_PREFIX, HostKind, MAX_FACES_LIMIT, Settings, SettingsError};

use facegate_api::{AppState, PipelinePool};
use facegate_core::{Manifest, PackSpec, PipelineConfig};
use facegate_gallery::{Actor, Gallery, GalleryError, KeyProvider, Keys, LocalKeyProvider};
use facegate_models::{ModelCache, ModelsError};
use facegate_store::{FaceStore, KeyId, RequestId, Scope, StoreError};
use facegate_store_postgres::{PgConfig, PgStore};
use facegate_store_sqlite::SqliteStore;

/// File name of the embedded store in the data folder.
pub const STORE_FILE: &str = "gallery.db";
/// File name of the local master key in the data folder (when no other is named).
pub const MASTER_KEY_FILE: &str = "master.key";

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A gallery operation (keys, tenants) failed.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// Models or ONNX Runtime could not be loaded.
    #[error(transparent)]
    Models(#[from] ModelsError),
    /// Configuration is wrong (message says what).
    #[error("{0}")]
    Config(String),
    /// The settings could not be read.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn io(path: &Path, source: std::io::Error) -> HostError {
    HostError::Io { path: path.display().to_string(), source }
}

/// Opens PostgreSQL when `store` is a `postgres://` URL, else the embedded store in `data_dir`.
///
/// # Errors
/// [`HostError::Config`] for another kind of URL; store errors.
pub async fn open_store(
    store: Option<&str>,
    data_dir: &Path,
    pg_pool_size: u32,
) -> Result<Arc<dyn FaceStore>, HostError> {
    match store {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let config = PgConfig { max_connections: pg_pool_size, ..PgConfig::default() };
            Ok(Arc::new(PgStore::connect(url, config).await?))
        }
        Some(other) => Err(HostError::Config(format!(
            "the store must be a postgres:// URL (or unset for the embedded store), not `{other}`"
        ))),
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir, e))?;
            Ok(Arc::new(SqliteStore::open(&data_dir.join(STORE_FILE))?))
        }
    }
}

/// The local master key: `hex` if given, else the key file; a missing `default_file` is created
/// (mode 0600) with a fresh key, a missing explicitly named file is an error.
///
/// # Errors
/// [`HostError::Config`] for a malformed key, I/O errors.
pub fn local_key_provider(
    hex: Option<&str>,
    file: Option<&Path>,
    default_file: &Path,
) -> Result<LocalKeyProvider, HostError> {
    if let Some(hex) = hex {
        return LocalKeyProvider::from_hex(hex).map_err(|e| HostError::Config(format!("master key: {e}")));
    }
    let path = file.unwrap_or(default_file);
    if !path.exists() {
        if file.is_some() {
            return Err(HostError::Config(format!("master key file {} does not exist", path.display())));
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(path).map_err(|e| io(path, e))?;
        out.write_all(LocalKeyProvider::generate_hex().as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(|e| io(path, e))?;
        tracing::warn!(path = %path.display(), "generated a new master key; back it up: templates cannot be read without it");
    }
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    LocalKeyProvider::from_hex(&text).map_err(|e| HostError::Config(format!("master key in {}: {e}", path.display())))
}

/// Resolves each entry of a pack list (a built-in name or a trained pack's folder) to a pack name,
/// adding folder packs to `manifest`.
///
/// # Errors
/// [`HostError::Models`] for an unknown pack or an unreadable pack folder.
pub fn resolve_packs(manifest: &mut Manifest, packs: &[String]) -> Result<Vec<String>, HostError> {
    Ok(packs.iter().map(|p| facegate_models::register_pack(manifest, p)).collect::<Result<_, _>>()?)
}

/// Loads ONNX Runtime once and every pack with `workers` pipelines each.
///
/// # Errors
/// Missing or corrupt models, a missing runtime library, an unknown pack.
pub fn load_packs(
    manifest: &Manifest,
    cache: &ModelCache,
    packs: &[String],
    workers: usize,
    config: PipelineConfig,
) -> Result<HashMap<String, Arc<PipelinePool>>, HostError> {
    let environment = cache.onnxruntime(&manifest.runtime)?;
    let mut loaded = HashMap::new();
    for pack in packs {
        if let Some(spec) = manifest.pack(pack) {
            warn_research_only(manifest, spec);
        }
        let pipelines = (0..workers.max(1))
            .map(|_| cache.load_pipeline(environment, manifest, pack, config))
            .collect::<Result<Vec<_>, _>>()?;
        loaded.insert(pack.clone(), Arc::new(PipelinePool::new(pipelines)));
    }
    Ok(loaded)
}

/// Says on the log which of a pack's weights are not cleared for commercial use, if any: wherever a
/// pack is chosen to run (a server's packs, a command's `--pack`).
pub fn warn_research_only(manifest: &Manifest, pack: &PackSpec) {
    for model in manifest.research_only_models(pack) {
        tracing::warn!(pack = %pack.name, model = %model.name, licence = %model.licence, "weights not cleared for commercial use");
    }
}

/// Creates an API key for `tenant` (creating the tenant if new) as a change by `actor` (`cli`,
/// `bootstrap`); returns `(key id, secret)`. The secret is generated unless given (a bootstrap key from
/// the environment).
///
/// # Errors
/// Store failures; a given secret under 32 characters.
pub async fn create_key(
    store: &dyn FaceStore,
    tenant: &str,
    scopes: &[Scope],
    name: &str,
    secret: Option<String>,
    actor: &str,
) -> Result<(KeyId, String), HostError> {
    let (keys, now) = (Keys::new(store), facegate_store::now_ms());
    let tenant = keys.tenant(tenant, now).await?;
    let actor = Actor::new(tenant.id, KeyId::from(actor), RequestId::random());
    let (record, secret) = keys.create(&actor, name, scopes, secret, now).await?;
    Ok((record.id, secret))
}

/// Stores `secret` as an admin key of `tenant` unless it is already there (the first admin key of a
/// deployment, from its environment rather than code).
///
/// # Errors
/// [`HostError::Config`] for a short secret; store failures.
pub async fn bootstrap_admin_key(store: &dyn FaceStore, secret: &str, tenant: &str) -> Result<(), HostError> {
    if secret.len() < 32 {
        return Err(HostError::Config("the bootstrap admin key must be at least 32 characters".into()));
    }
    if Keys::new(store).by_secret(secret).await?.is_none() {
        create_key(store, tenant, &[Scope::Admin], "bootstrap", Some(secret.to_string()), "bootstrap").await?;
        tracing::info!(%tenant, "bootstrap admin key stored");
    }
    Ok(())
}

/// Opens the store the settings name (the embedded one in `data_dir` unless `store` is set).
///
/// # Errors
/// As [`open_store`].
pub async fn open_configured_store(settings: &Settings) -> Result<Arc<dyn FaceStore>, HostError> {
    open_store(settings.store.as_deref(), &settings.data_dir, settings.pg_pool_size).await
}

/// The local master key the settings name: `master_key`, else `master_key_file`, else
/// `<data_dir>/master.key` (created on first start).
///
/// # Errors
/// As [`local_key_provider`].
pub fn configured_local_keys(settings: &Settings) -> Result<LocalKeyProvider, HostError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| io(&settings.data_dir, e))?;
    local_key_provider(
        settings.master_key.as_deref(),
        settings.master_key_file.as_deref(),
        &settings.data_dir.join(MASTER_KEY_FILE),
    )
}

/// Everything both hosts assemble before serving: the packs of the settings loaded (`base` tunes the
/// detector and embedder; the settings set threads and the face limit), the store opened, the bootstrap
/// admin key stored, the gallery over `keys`, and the API's limits.
///
/// # Errors
/// Missing models or runtime, an unknown pack, an unreachable store, a short bootstrap key.
pub async fn build_state(
    settings: &Settings,
    mut manifest: Manifest,
    base: PipelineConfig,
    keys: Arc<dyn KeyProvider>,
) -> Result<AppState, HostError> {
    let names = resolve_packs(&mut manifest, &settings.packs)?;
    let default_pack = names.first().cloned().ok_or_else(|| HostError::Config("`packs` names no pack".into()))?;
    let cache = settings.model_cache();
    let config = settings.pipeline_config(base);
    let packs = load_packs(&manifest, &cache, &names, settings.workers, config)?;
    let store = open_configured_store(settings).await?;
    if let Some(secret) = &settings.bootstrap_admin_key {
        bootstrap_admin_key(store.as_ref(), secret, &settings.bootstrap_tenant).await?;
    }
    let gallery = Gallery::new(store, keys)
        .with_egress(settings.egress_policy()?)
        .with_camera_egress(settings.camera_egress_policy()?)
        .with_serial_ports(settings.osdp_serial_ports.clone())
        .with_clock(settings.clock());
    Ok(AppState::new(packs, default_pack, gallery, settings.api_config()))
}
