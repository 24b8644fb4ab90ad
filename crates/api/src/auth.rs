//! API keys: `Authorization: Bearer <key>` or `x-api-key: <key>`. Keys are looked up by their SHA-256
//! (the secret itself is never stored), must not be revoked, and are rate-limited per key.

use std::num::NonZeroU32;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use facegate_store::{ApiKeyRecord, NewEvent, Scope};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Prefix of every facegate key, so leaked keys are recognisable by secret scanners.
const KEY_PREFIX: &str = "fgk_";

/// A new random API key secret (256 bits, hex) with the facegate prefix.
pub fn new_key_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a key: lowercase hex SHA-256. A fast hash is enough for 256-bit random secrets.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Per-key token buckets.
pub(crate) struct KeyRateLimiter(DefaultKeyedRateLimiter<String>);

impl KeyRateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used.
    pub key: ApiKeyRecord,
    /// The request id, for the audit trail.
    pub request_id: String,
}

impl Caller {
    /// 403 `forbidden` unless the key grants `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key lacks the `{}` scope", scope.as_str()),
            ))
        }
    }

    /// An audit-trail event of a decision made for this caller, timed now.
    pub fn event(
        &self,
        collection_id: &str,
        action: &str,
        result: &str,
        subject_id: Option<String>,
        score: Option<f32>,
        face_index: Option<u32>,
    ) -> NewEvent {
        NewEvent {
            collection_id: collection_id.to_string(),
            at_ms: crate::now_ms(),
            key_id: self.key.id.clone(),
            request_id: self.request_id.clone(),
            action: action.into(),
            result: result.into(),
            subject_id,
            score,
            face_index,
        }
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> &str {
        &self.key.tenant_id
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Bearer first: behind API Gateway's own API keys, `x-api-key` carries the gateway's key.
        let presented = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        let secret = presented.ok_or_else(|| unauthorized("an API key is required (Authorization: Bearer <key>)"))?;
        let key = state
            .gallery
            .store()
            .api_key_by_hash(&hash_key(secret))
            .await?
            .filter(|k| k.revoked_at_ms.is_none())
            .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
        if state.limiter.0.check_key(&key.id).is_err() {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "rate limit exceeded for this API key",
            ));
        }
        let request_id =
            parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        Ok(Caller { key, request_id })
    }
}
