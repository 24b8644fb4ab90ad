//! The facegate HTTP API: [`router`] builds the one axum `Router` that the local server and the Lambda
//! function both serve. Handlers parse the request, call the gallery service (`facegate-gallery`) and
//! render a [`contract`] type; [`ErrorCode`] is the one list of failures. State lives in the store; the
//! in-process caches (search indexes, data keys, pipelines) are only caches, so any number of
//! short-lived instances can serve one gallery.
//!
//! ```no_run
//! # fn demo(state: facegate_api::AppState) {
//! let app: axum::Router = facegate_api::router(state);
//! # }
//! ```

mod auth;
mod console;
pub mod contract;
mod delivery;
mod error;
pub mod headers;
mod images;
mod inference;
mod metrics;
mod openapi;
mod request_ids;
mod routes;
mod state;
mod videos;

pub use console::CONTENT_SECURITY_POLICY;
pub use delivery::{deliver_pending, spawn_deliveries, spawn_sweeper, sweep};
pub use error::{ApiError, ErrorCode};
pub use facegate_gallery::{Clock, now_ms};
pub use inference::{Packs, PipelinePool, PoolStatus};
pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use routes::{resume_migrations, start_readers};
pub use state::AppState;
pub(crate) use state::JsonObject;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

/// Limits and defaults of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body, bytes (images arrive inside it).
    pub max_body_bytes: usize,
    /// Largest decoded image, pixels (checked from the header before decoding).
    pub max_image_pixels: u64,
    /// Most decoded pixel bytes per image (native format plus the conversion to RGB).
    pub max_decoded_bytes: u64,
    /// Bytes of decoded pixels held at once by all images being analysed (reserved from each image's
    /// header before it takes a pipeline). Never less than `max_decoded_bytes`.
    pub max_decoding_bytes: u64,
    /// Most faces analysed per image (responses say `faces_truncated` when there were more).
    pub max_faces: usize,
    /// Image requests holding their body at once (being analysed or waiting for a pipeline); past that,
    /// 503 `overloaded` with `Retry-After`. A tenant holds at most half of them, a key a quarter.
    pub max_pending_images: usize,
    /// Door attempts holding their body at once: a pool of their own, so other routes cannot starve
    /// doors (shared between tenants like the images').
    pub max_pending_doors: usize,
    /// How long an admitted request's body may take to arrive (408 `timeout` after that).
    pub body_timeout: Duration,
    /// Bytes of request bodies that image requests may hold at once (by `Content-Length`, else the body
    /// limit); past that, 503 `overloaded` with `Retry-After`. Never less than `max_body_bytes`.
    pub max_pending_bytes: usize,
    /// Most images per enrolment request.
    pub max_images_per_request: usize,
    /// Requests per second allowed per API key (burst: twice that).
    pub rate_limit_per_second: u32,
    /// Failed key checks (unknown or revoked keys) allowed per client address per 10 s; past that,
    /// 429 `rate_limited` without a store lookup, except for keys that authenticated before.
    pub max_auth_failures: u32,
    /// Whole-request time limit.
    pub request_timeout: Duration,
    /// Kept faces re-embedded and stored per transaction by a migration.
    pub migration_batch: u32,
    /// Deliver webhooks inline after each write, before the response leaves (hosts that freeze between
    /// requests: Lambda); otherwise a background task delivers ([`spawn_deliveries`]).
    pub inline_delivery: bool,
}

impl ApiConfig {
    /// The limits images are decoded within.
    pub fn decode_limits(&self) -> facegate_core::DecodeLimits {
        facegate_core::DecodeLimits {
            max_pixels: self.max_image_pixels,
            max_decoded_bytes: self.max_decoded_bytes,
            ..facegate_core::DecodeLimits::default()
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            max_decoded_bytes: facegate_core::DecodeLimits::default().max_decoded_bytes,
            max_decoding_bytes: 128 * 1024 * 1024,
            max_faces: 20,
            max_pending_images: 64,
            max_pending_doors: 16,
            body_timeout: Duration::from_secs(10),
            max_pending_bytes: 48 * 1024 * 1024,
            max_images_per_request: 10,
            rate_limit_per_second: 50,
            max_auth_failures: 20,
            request_timeout: Duration::from_secs(30),
            migration_batch: 16,
            inline_delivery: false,
        }
    }
}

/// The API router: every `/v1` endpoint, `/metrics`, request ids, the error envelope, body and time limits.
///
/// Layers, outermost first: request id (set, then echoed), body limit, a tracing span carrying the
/// request id, the error envelope (outside the timeout, so a timed-out request gets its envelope),
/// metrics, the request timeout.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    let span = |request: &axum::extract::Request| {
        let id = request.headers().get(request_ids::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
    };
    routes::routes()
        .merge(console::routes())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), delivery::after_writes))
        .layer(axum::middleware::from_fn(headers::bounded))
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(TraceLayer::new_for_http().make_span_with(span).on_failure(DefaultOnFailure::new().level(Level::WARN)))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(headers::secure))
        .layer(axum::middleware::from_fn(request_ids::assign))
        .with_state(state)
}
