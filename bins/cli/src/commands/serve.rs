//! `facegate serve`: the API router on a local socket (HTTP, or HTTPS with rustls).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use facegate_api::{ApiConfig, AppState, PipelinePool, hash_key, router};
use facegate_gallery::{Gallery, LocalKeyProvider};
use facegate_store::{FaceStore, Scope};
use facegate_store_postgres::{PgConfig, PgStore};
use facegate_store_sqlite::SqliteStore;

use crate::args::{ServeArgs, StoreArgs};
use crate::context::Context;

const STORE_FILE: &str = "gallery.db";
const MASTER_KEY_FILE: &str = "master.key";

/// The data folder: `--data-dir`, else the user's data dir + `facegate`.
pub fn data_dir(args: &StoreArgs) -> PathBuf {
    args.data_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("facegate")))
        .unwrap_or_else(|| PathBuf::from(".facegate-data"))
}

/// Opens the configured store: PostgreSQL when `--store` is a `postgres://` URL, else the embedded one.
pub async fn open_store(args: &StoreArgs) -> Result<Arc<dyn FaceStore>> {
    if let Some(url) = args.store.as_deref().filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
    {
        let config = PgConfig { max_connections: args.pg_pool_size, ..PgConfig::default() };
        let store = PgStore::connect(url, config).await.context("connecting to PostgreSQL")?;
        return Ok(Arc::new(store));
    }
    if let Some(other) = &args.store {
        bail!("--store must be a postgres:// URL (or unset for the embedded store), not `{other}`");
    }
    let dir = data_dir(args);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(STORE_FILE);
    let store = SqliteStore::open(&path).with_context(|| format!("opening store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The local master key: `FACEGATE_MASTER_KEY` (hex), else the key file, created on first start when
/// it is the default one.
fn master_key(args: &ServeArgs) -> Result<LocalKeyProvider> {
    if let Ok(hex) = std::env::var("FACEGATE_MASTER_KEY") {
        return LocalKeyProvider::from_hex(&hex).context("FACEGATE_MASTER_KEY");
    }
    let (path, default) = match &args.master_key_file {
        Some(path) => (path.clone(), false),
        None => (data_dir(&args.store).join(MASTER_KEY_FILE), true),
    };
    if !path.exists() {
        if !default {
            bail!("master key file {} does not exist", path.display());
        }
        write_new_key(&path)?;
        tracing::warn!(path = %path.display(), "generated a new master key; back it up: templates cannot be read without it");
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    LocalKeyProvider::from_hex(&text).with_context(|| format!("master key in {}", path.display()))
}

fn write_new_key(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(LocalKeyProvider::generate_hex().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Adds the admin key from `FACEGATE_BOOTSTRAP_ADMIN_KEY` (tenant `FACEGATE_BOOTSTRAP_TENANT`,
/// default `default`) unless it is already there.
async fn bootstrap_admin_key(store: &dyn FaceStore) -> Result<()> {
    let Ok(secret) = std::env::var("FACEGATE_BOOTSTRAP_ADMIN_KEY") else { return Ok(()) };
    if secret.len() < 32 {
        bail!("FACEGATE_BOOTSTRAP_ADMIN_KEY must be at least 32 characters");
    }
    if store.api_key_by_hash(&hash_key(&secret)).await?.is_some() {
        return Ok(());
    }
    let tenant = std::env::var("FACEGATE_BOOTSTRAP_TENANT").unwrap_or_else(|_| "default".into());
    super::keys::create_key(store, &tenant, &[Scope::Admin], "bootstrap", Some(secret)).await?;
    tracing::info!(%tenant, "bootstrap admin key stored");
    Ok(())
}

/// Loads every pack with `workers` pipelines each.
pub fn load_packs(context: &Context, packs: &[String], workers: usize) -> Result<HashMap<String, Arc<PipelinePool>>> {
    let mut loaded = HashMap::new();
    for pack in packs {
        let pipelines = (0..workers.max(1)).map(|_| context.pipeline_for(pack)).collect::<Result<Vec<_>>>()?;
        loaded.insert(pack.clone(), Arc::new(PipelinePool::new(pipelines)));
    }
    Ok(loaded)
}

pub fn run(context: &Context, args: &ServeArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let default_pack = args.packs.first().cloned().context("--packs names no pack")?;
    let packs = load_packs(context, &args.packs, args.workers)?;
    let keys = Arc::new(master_key(args)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = open_store(&args.store).await?;
        bootstrap_admin_key(store.as_ref()).await?;
        let gallery = Arc::new(Gallery::new(store, keys));
        let config = ApiConfig {
            max_body_bytes: args.max_body_bytes,
            rate_limit_per_second: args.rate_limit,
            request_timeout: Duration::from_secs(args.request_timeout.max(1)),
            ..ApiConfig::default()
        };
        let app = router(AppState::new(packs, default_pack, gallery, config));
        let listener = std::net::TcpListener::bind(&args.addr).with_context(|| format!("binding {}", args.addr))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let shutdown = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
        println!("facegate listening on {scheme}://{address} (ready in {} ms)", started.elapsed().as_millis());
        std::io::stdout().flush()?;
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .context("loading the TLS certificate and key")?;
                axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app.into_make_service()).await?;
            }
            _ => axum_server::from_tcp(listener).handle(handle).serve(app.into_make_service()).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
