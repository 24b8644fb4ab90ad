//! The facegate HTTP API: [`router`] builds the one axum `Router` that the local server and the Lambda
//! function both serve. State lives in the store; the in-process caches (search indexes, data keys,
//! pipelines) are only caches, so any number of short-lived instances can serve one gallery.
//!
//! ```no_run
//! # fn demo(state: facegate_api::AppState) {
//! let app: axum::Router = facegate_api::router(state);
//! # }
//! ```

mod auth;
mod error;
mod images;
mod inference;
mod metrics;
mod openapi;
mod quality;
mod routes;

pub use auth::{hash_key, new_key_secret};
pub use error::ApiError;
pub use inference::PipelinePool;
pub use metrics::Metrics;
pub use quality::{QualityGate, sharpness};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use facegate_gallery::Gallery;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Limits and defaults of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body, bytes (images arrive inside it).
    pub max_body_bytes: usize,
    /// Largest decoded image, pixels (checked from the header before decoding).
    pub max_image_pixels: u64,
    /// Most faces analysed per image.
    pub max_faces: usize,
    /// Most images per enrolment request.
    pub max_images_per_request: usize,
    /// Requests per second allowed per API key (burst: twice that).
    pub rate_limit_per_second: u32,
    /// Whole-request time limit.
    pub request_timeout: Duration,
    /// Enrolment quality gate.
    pub quality: QualityGate,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            max_faces: 20,
            max_images_per_request: 10,
            rate_limit_per_second: 50,
            request_timeout: Duration::from_secs(30),
            quality: QualityGate::default(),
        }
    }
}

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Loaded model packs by name.
    pub packs: Arc<HashMap<String, Arc<PipelinePool>>>,
    /// The pack used by detect/embed/compare when none is asked for.
    pub default_pack: String,
    /// Galleries (store + encryption + search index).
    pub gallery: Arc<Gallery>,
    /// Limits.
    pub config: Arc<ApiConfig>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    limiter: Arc<auth::KeyRateLimiter>,
}

impl AppState {
    /// State over loaded packs and a gallery.
    pub fn new(
        packs: HashMap<String, Arc<PipelinePool>>,
        default_pack: String,
        gallery: Arc<Gallery>,
        config: ApiConfig,
    ) -> Self {
        let limiter = Arc::new(auth::KeyRateLimiter::new(config.rate_limit_per_second));
        Self {
            packs: Arc::new(packs),
            default_pack,
            gallery,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            limiter,
        }
    }

    /// The pipeline pool of a pack, or a 400 naming the packs this server has.
    pub fn pack(&self, name: &str) -> Result<Arc<PipelinePool>, ApiError> {
        self.packs.get(name).cloned().ok_or_else(|| {
            let mut loaded: Vec<&String> = self.packs.keys().collect();
            loaded.sort();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_pack",
                format!("pack `{name}` is not loaded; loaded: {loaded:?}"),
            )
        })
    }
}

/// The API router: every `/v1` endpoint, `/metrics`, request ids, the error envelope, body and time limits.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let body_limit = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    routes::routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
