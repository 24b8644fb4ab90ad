//! `bootstrap`: the facegate API on AWS Lambda, behind API Gateway (REST v1 or HTTP v2 events) or a
//! Function URL. Everything expensive (ONNX Runtime, models, the store connection, the master key)
//! is set up once during init, before the first event; the handler is the same axum router that
//! `facegate serve` runs.
//!
//! Configuration (environment): `FACEGATE_HOME` (models in `models/`, ONNX Runtime in `runtime/`;
//! default: the task root), `FACEGATE_STORE` (a `postgres://` URL; unset: an embedded store in
//! `FACEGATE_DATA_DIR`, default `/tmp/facegate`, which does not outlive the instance),
//! `FACEGATE_PG_POOL_SIZE` (2), `FACEGATE_KMS_KEY_ID` (data keys from AWS KMS; else the local
//! `FACEGATE_MASTER_KEY`, 64 hex digits), `FACEGATE_KMS_ENDPOINT` (tests), `FACEGATE_PACKS` (`default`),
//! `FACEGATE_THREADS` (1), `FACEGATE_BOOTSTRAP_ADMIN_KEY` / `FACEGATE_BOOTSTRAP_TENANT`. Behind an API
//! Gateway REST API, set `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` so routes see `/v1/...` rather
//! than `/<stage>/v1/...`; HTTP APIs should use the `$default` stage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use facegate_api::{ApiConfig, AppState, router};
use facegate_core::{PipelineConfig, RuntimeConfig};
use facegate_gallery::kms::{KmsConfig, KmsKeyProvider};
use facegate_gallery::{Gallery, KeyProvider};
use facegate_models::{ModelCache, builtin_manifest};

/// Lambda's synchronous payload limit is 6 MB including base64; bodies are capped below it.
const LAMBDA_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
const DEFAULT_PG_POOL_SIZE: u32 = 2;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG").unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .without_time()
        .init();
    let app = match init().await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!("init failed: {error:#}");
            return Err(error.into());
        }
    };
    lambda_http::run(app).await
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn init() -> Result<axum::Router> {
    let started = Instant::now();
    let task_root = env("LAMBDA_TASK_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from)))
        .unwrap_or_else(|| PathBuf::from("/var/task"));
    let home = env("FACEGATE_HOME").map_or(task_root, PathBuf::from);
    // Models ship with the function: never download during a cold start.
    let cache = ModelCache::new(home, None, false);
    let mut manifest = builtin_manifest()?;
    let listed: Vec<String> =
        env("FACEGATE_PACKS").unwrap_or_else(|| "default".into()).split(',').map(str::to_string).collect();
    let packs = facegate_host::resolve_packs(&mut manifest, &listed)?;
    let threads = env("FACEGATE_THREADS").and_then(|t| t.parse().ok()).unwrap_or(1);
    let config = PipelineConfig { runtime: RuntimeConfig { intra_threads: threads }, ..PipelineConfig::default() };
    let pools = facegate_host::load_packs(&manifest, &cache, &packs, 1, config)?;
    let data_dir = env("FACEGATE_DATA_DIR").map_or_else(|| PathBuf::from("/tmp/facegate"), PathBuf::from);
    let pool_size = env("FACEGATE_PG_POOL_SIZE").and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_PG_POOL_SIZE);
    let store = facegate_host::open_store(env("FACEGATE_STORE").as_deref(), &data_dir, pool_size).await?;
    let keys: Arc<dyn KeyProvider> = match env("FACEGATE_KMS_KEY_ID") {
        Some(key_id) => Arc::new(KmsKeyProvider::new(KmsConfig {
            key_id,
            region: env("AWS_REGION").context("AWS_REGION is needed with FACEGATE_KMS_KEY_ID")?,
            endpoint: env("FACEGATE_KMS_ENDPOINT"),
            access_key_id: env("AWS_ACCESS_KEY_ID").context("AWS credentials are needed for KMS")?,
            secret_access_key: env("AWS_SECRET_ACCESS_KEY").context("AWS credentials are needed for KMS")?,
            session_token: env("AWS_SESSION_TOKEN"),
        })),
        None => Arc::new(facegate_host::local_key_provider(
            env("FACEGATE_MASTER_KEY").as_deref(),
            env("FACEGATE_MASTER_KEY_FILE").map(PathBuf::from).as_deref(),
            &data_dir.join("master.key"),
        )?),
    };
    if let Some(secret) = env("FACEGATE_BOOTSTRAP_ADMIN_KEY") {
        let tenant = env("FACEGATE_BOOTSTRAP_TENANT").unwrap_or_else(|| "default".into());
        facegate_host::bootstrap_admin_key(store.as_ref(), &secret, &tenant).await?;
    }
    let gallery = Arc::new(Gallery::new(store, keys));
    let api = ApiConfig { max_body_bytes: LAMBDA_MAX_BODY_BYTES, ..ApiConfig::default() };
    let default_pack = packs.first().cloned().context("FACEGATE_PACKS names no pack")?;
    let state = AppState::new(pools, default_pack, gallery, api);
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "facegate ready");
    Ok(router(state).layer(axum::middleware::map_request(client_address)))
}

/// The API Gateway's view of the client address, where the API reads a socket's peer: failed key checks
/// are throttled per address.
async fn client_address(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let source = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = source.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip, 0)));
    }
    request
}
