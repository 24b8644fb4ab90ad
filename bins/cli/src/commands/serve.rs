//! `facegate serve`: the API router on a local socket (HTTP, or HTTPS with rustls), with the limits a
//! public socket needs: at most `max_connections` connections at once (past that, a new one is closed at
//! once), a request head that does not arrive within `header_timeout` closes its connection, and so does
//! a keep-alive connection idle for as long; HTTP/1 requests may carry more header fields than the API
//! accepts, so that it answers too many with its own 431 envelope.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use axum_server::accept::{Accept, DefaultAcceptor};
use facegate_api::router;
use facegate_host::Settings;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::context::Context;

/// Header fields the HTTP layer reads before the API's own bound (which answers 431 in its envelope).
const HTTP_MAX_HEADERS: usize = 1000;

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
        // The door readers on access panels run in this server.
        if let Err(error) = facegate_api::start_readers(&state).await {
            tracing::warn!(%error, "door readers not started");
        }
        let cameras = settings.cameras.then(|| {
            let every = Duration::from_secs(settings.camera_poll);
            tokio::spawn(facegate_video::run_cameras(
                state.gallery.clone(),
                state.live.clone(),
                camera_pipelines(context, settings),
                every,
                shutdown_signal(),
            ))
        });
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
        let limited = Limited::new(settings.max_connections);
        let header_timeout = Duration::from_secs(settings.header_timeout);
        let scheme = if settings.tls_cert.is_some() { "https" } else { "http" };
        println!("facegate listening on {scheme}://{address} (ready in {} ms)", started.elapsed().as_millis());
        std::io::stdout().flush()?;
        match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .context("loading the TLS certificate and key")?;
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                    .handshake_timeout(header_timeout)
                    .acceptor(limited);
                let mut server = axum_server::from_tcp(listener).acceptor(acceptor).handle(handle);
                configure(server.http_builder(), header_timeout);
                server.serve(app).await?;
            }
            _ => {
                let mut server = axum_server::from_tcp(listener).acceptor(limited).handle(handle);
                configure(server.http_builder(), header_timeout);
                server.serve(app).await?;
            }
        }
        // The cameras end their open tracks (recording their sightings) before the process goes.
        if let Some(cameras) = cameras {
            let _ = tokio::time::timeout(Duration::from_secs(10), cameras).await;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// How the server's cameras load their pipelines: one per pack, apart from the request pools, with the
/// packs and pipeline settings of the server.
fn camera_pipelines(context: &Context, settings: &Settings) -> facegate_video::LoadPipeline {
    let mut manifest = context.manifest.clone();
    let registered = facegate_host::resolve_packs(&mut manifest, &settings.packs);
    let (cache, config) = (settings.model_cache(), settings.pipeline_config(context.pipeline_config(settings.threads)));
    Arc::new(move |pack: &str| {
        registered.as_ref().map_err(|e| e.to_string())?;
        let environment = cache.onnxruntime(&manifest.runtime).map_err(|e| e.to_string())?;
        cache.load_pipeline(environment, &manifest, pack, config).map_err(|e| e.to_string())
    })
}

/// HTTP settings of every connection: the head (and an idle keep-alive connection's next head) must
/// arrive within `header_timeout`; HTTP/2 connections are pinged as often and dropped when silent.
fn configure(builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>, timeout: Duration) {
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout).max_headers(HTTP_MAX_HEADERS);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .max_concurrent_streams(100);
}

/// An acceptor holding one of a fixed number of places for each connection: past the limit, a new
/// connection is closed at once (its `accept` fails, and the server drops the socket).
#[derive(Clone)]
struct Limited {
    places: Arc<Semaphore>,
}

impl Limited {
    fn new(max_connections: usize) -> Self {
        Self { places: Arc::new(Semaphore::new(max_connections.max(1))) }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Limited {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = self.places.clone().try_acquire_owned();
        Box::pin(async move {
            let Ok(place) = place else {
                tracing::warn!("connection limit reached: a new connection is closed");
                return Err(std::io::Error::other("connection limit reached"));
            };
            let (stream, service) = DefaultAcceptor.accept(stream, service).await?;
            Ok((Counted { inner: stream, _place: place }, service))
        })
    }
}

/// A connection and its place, given back when the connection closes.
struct Counted<T> {
    inner: T,
    _place: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

pub(super) async fn shutdown_signal() {
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
