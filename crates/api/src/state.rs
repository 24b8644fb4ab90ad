//! What handlers share ([`AppState`]), in sub-states per concern so each module takes only its part, and
//! the JSON-object body every JSON endpoint reads ([`JsonObject`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use facegate_gallery::Gallery;

use crate::{ApiConfig, ApiError, ErrorCode, Metrics, PipelinePool, auth, delivery, images, inference};

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Loaded model packs by name.
    pub packs: Arc<HashMap<String, Arc<PipelinePool>>>,
    /// The same packs as the gallery's analyser (decoding budget, stage timings).
    pub analyser: Arc<inference::Packs>,
    /// The pack used by detect/embed/compare when none is asked for.
    pub default_pack: String,
    /// Galleries (store + encryption + search index).
    pub gallery: Arc<Gallery>,
    /// Limits.
    pub config: Arc<ApiConfig>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Who may knock: per-key rate limits and the failed-key throttle.
    pub(crate) guard: Arc<Guard>,
    /// What image requests may hold: bodies, by tenant and key (decoded pixels: the analyser's budget).
    pub(crate) intake: Arc<Intake>,
    /// Collections whose migration this process runs.
    pub(crate) migrating: Arc<Claims>,
    /// Webhook delivery.
    pub(crate) deliveries: Arc<delivery::Deliveries>,
    /// What this server's cameras see as it happens (`GET /v1/events/stream`).
    pub live: facegate_video::LiveEvents,
    /// The door readers this server runs on access panels.
    pub readers: facegate_integrations::PanelHub,
}

/// Who may knock: per-key rate limits and the failed-key throttle.
pub(crate) struct Guard {
    /// Requests per key.
    pub(crate) limiter: auth::KeyRateLimiter,
    /// Failed key checks per address and key.
    pub(crate) failures: auth::FailureThrottle,
}

/// What image requests may hold at once.
pub(crate) struct Intake {
    /// Requests holding a body, by count and bytes, shared fairly between tenants and keys.
    pub(crate) admission: images::Admission,
}

/// Collections claimed by a background task of this process; a claim ends when its guard drops.
#[derive(Default)]
pub(crate) struct Claims(std::sync::Mutex<std::collections::HashSet<facegate_store::CollectionId>>);

/// A claim on a collection, released on drop.
pub(crate) struct Claim {
    claims: Arc<Claims>,
    collection_id: facegate_store::CollectionId,
}

impl Claims {
    pub(crate) fn claim(self: &Arc<Self>, collection_id: &facegate_store::CollectionId) -> Option<Claim> {
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
    /// State over loaded packs and a gallery, which analyses its images with those packs.
    pub fn new(
        packs: HashMap<String, Arc<PipelinePool>>,
        default_pack: String,
        gallery: Gallery,
        config: ApiConfig,
    ) -> Self {
        let guard = Arc::new(Guard {
            limiter: auth::KeyRateLimiter::new(config.rate_limit_per_second),
            failures: auth::FailureThrottle::new(config.max_auth_failures.max(1)),
        });
        let intake = Arc::new(Intake { admission: images::Admission::new(&config) });
        let (packs, metrics) = (Arc::new(packs), Arc::new(Metrics::default()));
        let analyser = Arc::new(inference::Packs::new(packs.clone(), &config, metrics.clone()));
        let readers = facegate_integrations::PanelHub::new(gallery.camera_egress().clone());
        let gallery = Arc::new(gallery.with_analyser(analyser.clone()).with_panels(Arc::new(readers.clone())));
        let deliveries = Arc::new(delivery::Deliveries::new(config.inline_delivery, &gallery));
        Self {
            packs,
            analyser,
            default_pack,
            gallery,
            config: Arc::new(config),
            metrics,
            guard,
            intake,
            migrating: Arc::default(),
            deliveries,
            live: facegate_video::LiveEvents::default(),
            readers,
        }
    }

    /// The pipeline pool of a pack, or a 400 naming the packs this server has.
    pub fn pack(&self, name: &str) -> Result<Arc<PipelinePool>, ApiError> {
        Ok(self.analyser.pool(name)?.clone())
    }
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

/// A JSON object body of type `T` (see [`json_body`]); the route's body limit applies.
pub(crate) struct JsonObject<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, rejection.body_text())
            } else {
                ApiError::invalid(rejection.body_text())
            }
        })?;
        json_body(&bytes).map(JsonObject)
    }
}
