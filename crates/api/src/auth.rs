//! API keys: `Authorization: Bearer <key>` (the scheme in any case, RFC 9110) or `x-api-key: <key>`.
//! Keys are looked up by their SHA-256 (the secret itself is never stored), must not be revoked, and
//! are rate-limited per key. Failed key checks are throttled per client address before the store is
//! asked, so guessing keys costs the guesser, not the store.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use facegate_gallery::Actor;
use facegate_store::{ApiKeyRecord, KeyId, RequestId, Scope, TenantId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState, ErrorCode};

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

/// A new key of `tenant_id` and its secret: the record stores only the secret's hash.
pub fn new_key(tenant_id: TenantId, name: &str, scopes: &[Scope], secret: Option<String>) -> (ApiKeyRecord, String) {
    let secret = secret.unwrap_or_else(new_key_secret);
    let record = ApiKeyRecord {
        id: KeyId::random(),
        tenant_id,
        name: name.to_string(),
        key_hash: hash_key(&secret),
        scopes: scopes.to_vec(),
        created_at_ms: facegate_gallery::now_ms(),
        revoked_at_ms: None,
    };
    (record, secret)
}

/// Per-key token buckets.
pub(crate) struct KeyRateLimiter(DefaultKeyedRateLimiter<KeyId>);

impl KeyRateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
    }

    /// `Ok` if the key may make a request now, else how long until it may.
    fn check(&self, key_id: &KeyId) -> Result<(), Duration> {
        self.0.check_key(key_id).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The window of [`crate::ApiConfig::max_auth_failures`].
const FAILURE_WINDOW: Duration = Duration::from_secs(10);
/// Addresses tracked at most; past that, addresses whose window has ended are forgotten.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Failed key checks per client address, in fixed windows. An address that used up its failures is
/// refused without a store lookup, except for keys that recently authenticated: a valid client behind
/// the same address (a NAT, a proxy) is not locked out by another's guessing.
pub(crate) struct FailureThrottle {
    /// Failed key checks allowed per address in one window.
    max_failures: u32,
    windows: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
    known_good: Mutex<HashSet<String>>,
}

impl FailureThrottle {
    /// A throttle allowing `max_failures` failed key checks per address per [`FAILURE_WINDOW`].
    pub(crate) fn new(max_failures: u32) -> Self {
        Self { max_failures, windows: Mutex::default(), known_good: Mutex::default() }
    }

    /// How long `address` must wait before its next key check, if it used up its failures.
    fn blocked(&self, address: Option<IpAddr>) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let (started, failures) = windows.get(&address)?;
        let remaining = FAILURE_WINDOW.checked_sub(started.elapsed())?;
        (*failures >= self.max_failures).then_some(remaining)
    }

    /// Whether the key with this hash authenticated before (it is still checked against the store).
    fn known_good(&self, key_hash: &str) -> bool {
        self.known_good.lock().unwrap_or_else(PoisonError::into_inner).contains(key_hash)
    }

    fn record_success(&self, key_hash: &str) {
        let mut known = self.known_good.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= MAX_TRACKED_ADDRESSES {
            known.clear();
        }
        known.insert(key_hash.to_string());
    }

    fn record_failure(&self, address: Option<IpAddr>) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED_ADDRESSES && !windows.contains_key(&address) {
            windows.retain(|_, (started, _)| started.elapsed() < FAILURE_WINDOW);
            if windows.len() >= MAX_TRACKED_ADDRESSES {
                return; // Memory stays bounded; the addresses already tracked stay throttled.
            }
        }
        let window = windows.entry(address).or_insert((Instant::now(), 0));
        if window.0.elapsed() >= FAILURE_WINDOW {
            *window = (Instant::now(), 0);
        }
        window.1 = window.1.saturating_add(1);
    }
}

fn rate_limited(message: &str, wait: Duration) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, message).retry_after(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

/// The key a request presents: `Authorization: Bearer` first (behind API Gateway's own API keys,
/// `x-api-key` carries the gateway's key), then `x-api-key`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim_start().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    });
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok())).map(str::trim).filter(|k| !k.is_empty())
}

/// The caller behind `secret`, checked against the store, the failure throttle and the key's rate limit.
pub(crate) async fn authenticate(
    state: &AppState,
    secret: Option<&str>,
    address: Option<IpAddr>,
    request_id: RequestId,
) -> Result<Caller, ApiError> {
    // No key guesses nothing and costs no store lookup: it is refused without counting as a failure.
    let secret = secret.ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthorized, "an API key is required (Authorization: Bearer <key>)")
    })?;
    let throttle = &state.auth_failures;
    let key_hash = hash_key(secret);
    if let Some(wait) = throttle.blocked(address)
        && !throttle.known_good(&key_hash)
    {
        return Err(rate_limited("too many failed API key checks from this address", wait));
    }
    let key =
        state.gallery.store().api_key_by_hash(&key_hash).await?.filter(|k| k.revoked_at_ms.is_none()).ok_or_else(
            || {
                throttle.record_failure(address);
                ApiError::new(ErrorCode::Unauthorized, "unknown or revoked API key")
            },
        )?;
    throttle.record_success(&key_hash);
    state.limiter.check(&key.id).map_err(|wait| rate_limited("rate limit exceeded for this API key", wait))?;
    Ok(Caller { key, request_id })
}

/// The client address of a request, when the host supplied it.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip())
}

/// The request id set by the request-id layer.
pub(crate) fn request_id(headers: &HeaderMap) -> RequestId {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().into()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used.
    pub key: ApiKeyRecord,
    /// The request id, for the audit trail.
    pub request_id: RequestId,
}

impl Caller {
    /// 403 `forbidden` unless the key grants `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        self.require_any(&[scope])
    }

    /// 403 `forbidden` unless the key grants one of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if scopes.iter().any(|scope| self.key.allows(*scope)) {
            return Ok(());
        }
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        Err(ApiError::new(ErrorCode::Forbidden, format!("this API key lacks the `{}` scope", names.join("` or `"))))
    }

    /// The caller as the gallery sees it: tenant, key and request (for the audit trail).
    pub fn actor(&self) -> Actor {
        Actor {
            tenant_id: self.key.tenant_id.clone(),
            key_id: self.key.id.clone(),
            request_id: self.request_id.clone(),
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
        authenticate(state, presented_key(&parts.headers), client_address(parts), request_id(&parts.headers)).await
    }
}

/// `Option<Caller>`: `None` when the request presents no key; a key that is presented must be valid.
impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        match presented_key(&parts.headers) {
            None => Ok(None),
            Some(secret) => {
                authenticate(state, Some(secret), client_address(parts), request_id(&parts.headers)).await.map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer fgk_1", "bearer fgk_1", "BEARER   fgk_1 ", "  BeArEr fgk_1"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            assert_eq!(presented_key(&headers), Some("fgk_1"), "{value:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        headers.insert("x-api-key", "fgk_2".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("fgk_2"));
    }

    #[test]
    fn failures_are_throttled_per_address() {
        let throttle = FailureThrottle::new(20);
        let (a, b) = (Some(IpAddr::from([127, 0, 0, 2])), Some(IpAddr::from([127, 0, 0, 3])));
        for _ in 0..20 {
            assert!(throttle.blocked(a).is_none());
            throttle.record_failure(a);
        }
        let wait = throttle.blocked(a).expect("blocked after the allowed failures");
        assert!(wait <= FAILURE_WINDOW);
        assert!(throttle.blocked(b).is_none(), "another address is not affected");
        assert!(!throttle.known_good("hash"));
        throttle.record_success("hash");
        assert!(throttle.known_good("hash"), "a key that authenticated is let through to its store check");
    }
}
