//! API keys: `Authorization: Bearer <key>` (the scheme in any case, RFC 9110) or `x-api-key: <key>`.
//! Keys are looked up by their SHA-256 (the secret itself is never stored; the gallery's `keys` module is
//! their one home), must not be revoked, and are rate-limited per key.
//!
//! Failed key checks are throttled per client address and key: a revoked key used again and again is
//! refused with 429 after [`crate::ApiConfig::max_auth_failures`] failures in a window, and so are
//! unknown keys from an address that sent that many. A blocked address is refused without a store
//! lookup per guess: a presented key is first compared with a snapshot of the active keys' hashes,
//! refreshed at most once a second, so a valid key used for the first time behind the same address (a
//! NAT, a proxy) still gets in, and guessing costs the guesser, not the store.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use facegate_gallery::{Actor, hash_key};
use facegate_store::{ApiKeyRecord, KeyId, RequestId, Scope, TenantId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::request_ids::{Correlation, REQUEST_ID};
use crate::{ApiError, AppState, ErrorCode};
use facegate_store::WireName;

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
/// Failure windows tracked at most; past that, ended windows are forgotten.
const MAX_TRACKED: usize = 10_000;
/// How old the snapshot of active key hashes may be when a blocked address presents an unknown key.
const SNAPSHOT_AGE: Duration = Duration::from_secs(1);

/// Whose failures a window counts: an address with one revoked key, or an address with unknown keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Failing {
    /// A key that exists but is revoked.
    Key(Option<IpAddr>, KeyId),
    /// Keys that match nothing.
    Unknown(Option<IpAddr>),
}

/// Failed key checks per (address, key), in fixed windows.
pub(crate) struct FailureThrottle {
    /// Failed key checks allowed per address and key in one window.
    max_failures: u32,
    windows: Mutex<HashMap<Failing, (Instant, u32)>>,
    /// Hashes of revoked keys seen, with their key id (to throttle them without a lookup).
    revoked: Mutex<HashMap<String, KeyId>>,
    /// Hashes of the active keys, and when they were read.
    active: Mutex<Option<(Instant, HashSet<String>)>>,
}

impl FailureThrottle {
    /// A throttle allowing `max_failures` failed key checks per address and key per [`FAILURE_WINDOW`].
    pub(crate) fn new(max_failures: u32) -> Self {
        Self { max_failures, windows: Mutex::default(), revoked: Mutex::default(), active: Mutex::default() }
    }

    /// How long `who` must wait before its next key check, if it used up its failures.
    fn blocked(&self, who: &Failing) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let (started, failures) = windows.get(who)?;
        let remaining = FAILURE_WINDOW.checked_sub(started.elapsed())?;
        (*failures >= self.max_failures).then_some(remaining)
    }

    fn record_failure(&self, who: Failing) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&who) {
            windows.retain(|_, (started, _)| started.elapsed() < FAILURE_WINDOW);
            if windows.len() >= MAX_TRACKED {
                return; // Memory stays bounded; the windows already tracked stay throttled.
            }
        }
        let window = windows.entry(who).or_insert((Instant::now(), 0));
        if window.0.elapsed() >= FAILURE_WINDOW {
            *window = (Instant::now(), 0);
        }
        window.1 = window.1.saturating_add(1);
    }

    fn revoked_key(&self, key_hash: &str) -> Option<KeyId> {
        self.revoked.lock().unwrap_or_else(PoisonError::into_inner).get(key_hash).cloned()
    }

    fn remember_revoked(&self, key_hash: &str, key_id: &KeyId) {
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        if revoked.len() >= MAX_TRACKED {
            revoked.clear();
        }
        revoked.insert(key_hash.to_string(), key_id.clone());
    }

    /// Whether `key_hash` is among the active keys, by a snapshot at most [`SNAPSHOT_AGE`] old (read
    /// again through `refresh` when older).
    async fn is_active<F, Fut>(&self, key_hash: &str, refresh: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<Vec<String>>>,
    {
        let fresh = |active: &Option<(Instant, HashSet<String>)>| {
            active
                .as_ref()
                .filter(|(read, _)| read.elapsed() < SNAPSHOT_AGE)
                .map(|(_, hashes)| hashes.contains(key_hash))
        };
        if let Some(known) = fresh(&self.active.lock().unwrap_or_else(PoisonError::into_inner)) {
            return known;
        }
        let Some(hashes) = refresh().await else { return false };
        let known = hashes.iter().any(|h| h == key_hash);
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), hashes.into_iter().collect()));
        known
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
    correlation_id: Option<String>,
) -> Result<Caller, ApiError> {
    // No key guesses nothing and costs no store lookup: it is refused without counting as a failure.
    let secret = secret.ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthorized, "an API key is required (Authorization: Bearer <key>)")
    })?;
    let throttle = &state.guard.failures;
    let key_hash = hash_key(secret);
    // A revoked key seen before is throttled on its own, without a lookup.
    if let Some(key_id) = throttle.revoked_key(&key_hash)
        && let Some(wait) = throttle.blocked(&Failing::Key(address, key_id))
    {
        return Err(rate_limited("too many failed checks of this API key from this address", wait));
    }
    // From an address that sent too many unknown keys, only a key in the active snapshot is looked up.
    if let Some(wait) = throttle.blocked(&Failing::Unknown(address)) {
        let keys = state.gallery.keys();
        if !throttle.is_active(&key_hash, || async { keys.active_hashes().await.ok() }).await {
            return Err(rate_limited("too many failed API key checks from this address", wait));
        }
    }
    let key = state.gallery.keys().by_hash(&key_hash).await?;
    let key = match key {
        Some(key) if key.revoked_at_ms.is_none() => key,
        Some(revoked) => {
            throttle.remember_revoked(&key_hash, &revoked.id);
            throttle.record_failure(Failing::Key(address, revoked.id));
            return Err(ApiError::new(ErrorCode::Unauthorized, "unknown or revoked API key"));
        }
        None => {
            throttle.record_failure(Failing::Unknown(address));
            return Err(ApiError::new(ErrorCode::Unauthorized, "unknown or revoked API key"));
        }
    };
    state.guard.limiter.check(&key.id).map_err(|wait| rate_limited("rate limit exceeded for this API key", wait))?;
    Ok(Caller { key, request_id, correlation_id })
}

/// The client address of a request, when the host supplied it.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip())
}

/// The request id the server gave the request.
pub(crate) fn request_id(headers: &HeaderMap) -> RequestId {
    headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().into()
}

/// The client's validated correlation id of a request, if it sent one.
fn correlation_id(parts: &Parts) -> Option<String> {
    parts.extensions.get::<Correlation>().and_then(|c| c.0.clone())
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used.
    pub key: ApiKeyRecord,
    /// The request id, for the audit trail.
    pub request_id: RequestId,
    /// The client's own correlation id, validated.
    pub correlation_id: Option<String>,
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
        Actor::new(self.key.tenant_id.clone(), self.key.id.clone(), self.request_id.clone())
            .with_correlation(self.correlation_id.clone())
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.key.tenant_id
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (address, id, correlation) = (client_address(parts), request_id(&parts.headers), correlation_id(parts));
        authenticate(state, presented_key(&parts.headers), address, id, correlation).await
    }
}

/// `Option<Caller>`: `None` when the request presents no key; a key that is presented must be valid.
impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        match presented_key(&parts.headers) {
            None => Ok(None),
            Some(secret) => {
                let (address, id, correlation) =
                    (client_address(parts), request_id(&parts.headers), correlation_id(parts));
                authenticate(state, Some(secret), address, id, correlation).await.map(Some)
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

    #[tokio::test]
    async fn failures_are_throttled_per_address_and_key() {
        let throttle = FailureThrottle::new(20);
        let (a, b) = (Some(IpAddr::from([127, 0, 0, 2])), Some(IpAddr::from([127, 0, 0, 3])));
        for _ in 0..20 {
            assert!(throttle.blocked(&Failing::Unknown(a)).is_none());
            throttle.record_failure(Failing::Unknown(a));
        }
        let wait = throttle.blocked(&Failing::Unknown(a)).expect("blocked after the allowed failures");
        assert!(wait <= FAILURE_WINDOW);
        assert!(throttle.blocked(&Failing::Unknown(b)).is_none(), "another address is not affected");
        let revoked = KeyId::from("k1");
        assert!(throttle.blocked(&Failing::Key(a, revoked.clone())).is_none(), "a key has its own window");
        for _ in 0..20 {
            throttle.record_failure(Failing::Key(a, revoked.clone()));
        }
        assert!(throttle.blocked(&Failing::Key(a, revoked.clone())).is_some(), "a revoked key is throttled too");
        throttle.remember_revoked("hash", &revoked);
        assert_eq!(throttle.revoked_key("hash"), Some(revoked));
        let snapshot = || async { Some(vec!["good".to_string()]) };
        assert!(throttle.is_active("good", snapshot).await, "a valid key is told from a guess");
        assert!(!throttle.is_active("guess", || async { panic!("the snapshot is fresh: no second read") }).await);
    }
}
