//! `facegate serve`: the API router on a local socket (HTTP, or HTTPS with rustls).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use facegate_api::router;
use facegate_host::Settings;

use crate::context::Context;

pub fn run(context: &Context, settings: &Settings) -> Result<ExitCode> {
    let started = Instant::now();
    let keys = Arc::new(facegate_host::configured_local_keys(settings)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let base = context.pipeline_config(settings.threads);
        let state = facegate_host::build_state(settings, context.manifest.clone(), base, keys).await?;
        let resumed = facegate_api::resume_migrations(&state).await?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming interrupted migrations");
        }
        if !settings.inline_delivery {
            facegate_api::spawn_deliveries(state.clone());
        }
        facegate_api::spawn_sweeper(state.clone(), Duration::from_secs(settings.sweep_interval));
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let listener =
            std::net::TcpListener::bind(&settings.addr).with_context(|| format!("binding {}", settings.addr))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let shutdown = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let scheme = if settings.tls_cert.is_some() { "https" } else { "http" };
        println!("facegate listening on {scheme}://{address} (ready in {} ms)", started.elapsed().as_millis());
        std::io::stdout().flush()?;
        match (&settings.tls_cert, &settings.tls_key) {
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
