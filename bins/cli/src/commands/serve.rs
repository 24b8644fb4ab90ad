//! `facegate serve`: the API router on a local socket (HTTP, or HTTPS with rustls).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use facegate_api::{ApiConfig, AppState, router};
use facegate_gallery::Gallery;
use facegate_store::FaceStore;

use crate::args::{ServeArgs, StoreArgs};
use crate::context::Context;

const MASTER_KEY_FILE: &str = "master.key";

/// The data folder: `--data-dir`, else the user's data dir + `facegate`.
pub fn data_dir(args: &StoreArgs) -> PathBuf {
    args.data_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("facegate")))
        .unwrap_or_else(|| PathBuf::from(".facegate-data"))
}

/// Opens the configured store: PostgreSQL for a `postgres://` `--store`, else the embedded one.
pub async fn open_store(args: &StoreArgs) -> Result<Arc<dyn FaceStore>> {
    Ok(facegate_host::open_store(args.store.as_deref(), &data_dir(args), args.pg_pool_size).await?)
}

pub fn run(context: &Context, args: &ServeArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut manifest = context.manifest.clone();
    let names = facegate_host::resolve_packs(&mut manifest, &args.packs)?;
    let default_pack = names.first().cloned().context("--packs names no pack")?;
    // `--max-faces` is how many faces a request analyses; the detector reports one more, so a response
    // can say that faces were left out.
    let max_faces = context.args.max_faces.map_or(ApiConfig::default().max_faces, usize::from);
    let mut config = context.pipeline_config(context.args.threads);
    config.detector.max_faces = max_faces + 1;
    let packs = facegate_host::load_packs(&manifest, &context.cache, &names, args.workers, config)?;
    let master_hex = std::env::var("FACEGATE_MASTER_KEY").ok();
    let default_key_file = data_dir(&args.store).join(MASTER_KEY_FILE);
    std::fs::create_dir_all(data_dir(&args.store))?;
    let keys = Arc::new(facegate_host::local_key_provider(
        master_hex.as_deref(),
        args.master_key_file.as_deref(),
        &default_key_file,
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = open_store(&args.store).await?;
        if let Ok(secret) = std::env::var("FACEGATE_BOOTSTRAP_ADMIN_KEY") {
            let tenant = std::env::var("FACEGATE_BOOTSTRAP_TENANT").unwrap_or_else(|_| "default".into());
            facegate_host::bootstrap_admin_key(store.as_ref(), &secret, &tenant).await?;
        }
        let gallery = Arc::new(Gallery::new(store, keys));
        let config = ApiConfig {
            max_body_bytes: args.max_body_bytes,
            rate_limit_per_second: args.rate_limit,
            max_auth_failures: args.max_auth_failures,
            request_timeout: Duration::from_secs(args.request_timeout.max(1)),
            max_faces,
            max_pending_images: args.max_pending_images,
            max_pending_bytes: args.max_pending_bytes,
            max_decoding_bytes: args.max_decoding_bytes,
            ..ApiConfig::default()
        };
        let app = router(AppState::new(packs, default_pack, gallery, config))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
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
                axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app).await?;
            }
            _ => axum_server::from_tcp(listener).handle(handle).serve(app).await?,
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
