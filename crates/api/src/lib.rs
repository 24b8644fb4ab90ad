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

pub use console::CONTENT_SECURITY_POLICY;
pub use delivery::{deliver_pending, spawn_deliveries, spawn_sweeper, sweep};
pub use error::{ApiError, ErrorCode};
pub use facegate_gallery::now_ms;
pub use inference::{PipelinePool, PoolStatus};
pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use routes::resume_migrations;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use facegate_gallery::Gallery;
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
    auth_failures: Arc<auth::FailureThrottle>,
    /// Admission of image requests holding a body, by count and by bytes.
    admission: Arc<images::Admission>,
    /// Decoded pixel bytes reserved by images being analysed.
    decoding: Arc<inference::ByteBudget>,
    /// Collections whose migration this process runs.
    migrating: Arc<Claims>,
    /// The time of door decisions, ms since the epoch.
    clock: Clock,
    /// Webhook delivery.
    deliveries: delivery::SharedDeliveries,
}

/// Where the time of door decisions comes from (the system clock unless a host sets another).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Collections claimed by a background task of this process; a claim ends when its guard drops.
#[derive(Default)]
struct Claims(std::sync::Mutex<std::collections::HashSet<facegate_store::CollectionId>>);

/// A claim on a collection, released on drop.
struct Claim {
    claims: Arc<Claims>,
    collection_id: facegate_store::CollectionId,
}

impl Claims {
    fn claim(self: &Arc<Self>, collection_id: &facegate_store::CollectionId) -> Option<Claim> {
        let mut held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.insert(collection_id.clone()).then(|| Claim { claims: self.clone(), collection_id: collection_id.clone() })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.claims.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.collection_id);
    }
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
        let admission = Arc::new(images::Admission::new(&config));
        let auth_failures = Arc::new(auth::FailureThrottle::new(config.max_auth_failures.max(1)));
        let decoding = Arc::new(inference::ByteBudget::new(config.max_decoding_bytes.max(config.max_decoded_bytes)));
        let deliveries = Arc::new(delivery::Deliveries::new(config.inline_delivery, gallery.egress().clone()));
        Self {
            packs: Arc::new(packs),
            default_pack,
            gallery,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            limiter,
            auth_failures,
            admission,
            decoding,
            migrating: Arc::default(),
            clock: Arc::new(now_ms),
            deliveries,
        }
    }

    /// The same state deciding doors by `clock` instead of the system clock (a fixed clock in tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The pipeline pool of a pack, or a 400 naming the packs this server has.
    pub fn pack(&self, name: &str) -> Result<Arc<PipelinePool>, ApiError> {
        self.packs.get(name).cloned().ok_or_else(|| {
            let mut loaded: Vec<&String> = self.packs.keys().collect();
            loaded.sort();
            ApiError::new(ErrorCode::UnknownPack, format!("pack `{name}` is not loaded; loaded: {loaded:?}"))
        })
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

/// A JSON object body of type `T`, or 400 `invalid_request` saying what is wrong with it. Every JSON body
/// of the API is an object: an array is refused even where serde would read it as the struct's fields
/// in order.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}
