//! Images in requests, in any of three forms: the raw body (`Content-Type: image/*` or
//! `application/octet-stream`), `multipart/form-data` (file fields are images, text fields are
//! parameters), or JSON with base64 in `image` / `images` (other keys are parameters).
//!
//! Admission: an image request holds its body in memory until its images are analysed, so image
//! requests share a budget of pending requests ([`crate::ApiConfig::max_pending_images`]) and of body
//! bytes ([`crate::ApiConfig::max_pending_bytes`], counted by `Content-Length`, else the body limit).
//! The budget is shared fairly: one tenant holds at most half of it and one key at most a quarter of the
//! requests, so a tenant that opens many slow requests closes no other tenant's door. Door attempts
//! have a pool of their own ([`crate::ApiConfig::max_pending_doors`]), so other routes cannot starve
//! them. Past a share, a request is refused with 503 `overloaded` and `Retry-After` before its body is
//! kept: the body is read and dropped (so the client sees the answer instead of a reset connection), or
//! not read at all when the client waits for `100 Continue`. An admitted body must arrive within
//! [`crate::ApiConfig::body_timeout`] (408 `timeout` otherwise), and only then does the request wait for a
//! pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use base64::Engine;
use facegate_store::{KeyId, TenantId};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::{ApiConfig, ApiError, AppState, ErrorCode};

/// Which admission pool a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// Detection, recognition, enrolment and the rest.
    Images,
    /// Door attempts.
    Doors,
}

/// The admission budgets of image requests: one pool for door attempts, one for everything else.
pub(crate) struct Admission {
    images: Arc<FairBudget>,
    doors: Arc<FairBudget>,
}

/// A budget of pending requests and body bytes, shared fairly between tenants and keys.
struct FairBudget {
    requests: u64,
    bytes: u64,
    held: Mutex<Holdings>,
}

/// What tenants and keys hold of a budget now.
#[derive(Default)]
struct Holdings {
    total: Share,
    tenants: HashMap<TenantId, Share>,
    keys: HashMap<KeyId, Share>,
}

/// Requests and bytes held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Share {
    requests: u64,
    bytes: u64,
}

impl Share {
    fn add(&mut self, requests: u64, bytes: u64) {
        self.requests += requests;
        self.bytes += bytes;
    }

    fn remove(&mut self, requests: u64, bytes: u64) {
        self.requests = self.requests.saturating_sub(requests);
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    fn is_empty(&self) -> bool {
        self.requests == 0 && self.bytes == 0
    }
}

/// An admitted request's share of a budget, given back when it is dropped.
struct Admitted {
    budget: Arc<FairBudget>,
    tenant: TenantId,
    key: KeyId,
    bytes: u64,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").field("tenant", &self.tenant).field("bytes", &self.bytes).finish()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.total.remove(1, self.bytes);
        let tenant_done = held.tenants.get_mut(&self.tenant).is_some_and(|t| {
            t.remove(1, self.bytes);
            t.is_empty()
        });
        if tenant_done {
            held.tenants.remove(&self.tenant);
        }
        let key_done = held.keys.get_mut(&self.key).is_some_and(|k| {
            k.remove(1, self.bytes);
            k.is_empty()
        });
        if key_done {
            held.keys.remove(&self.key);
        }
    }
}

impl FairBudget {
    fn new(requests: usize, bytes: usize) -> Arc<Self> {
        Arc::new(Self { requests: requests.max(1) as u64, bytes: bytes as u64, held: Mutex::default() })
    }

    /// A place for a body of at most `bytes` for `key` of `tenant`, if the budget and their shares allow
    /// one now: a tenant holds at most half the requests and half the bytes, a key a quarter of the
    /// requests (at least one request and one body each).
    fn try_admit(self: &Arc<Self>, tenant: &TenantId, key: &KeyId, bytes: usize, max_body: usize) -> Option<Admitted> {
        let bytes = bytes.min(self.bytes as usize) as u64;
        let tenant_share = Share { requests: (self.requests / 2).max(1), bytes: (self.bytes / 2).max(max_body as u64) };
        let key_requests = (self.requests / 4).max(1);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let fits = |share: Share, limit: Share| share.requests < limit.requests && share.bytes + bytes <= limit.bytes;
        let total = Share { requests: self.requests, bytes: self.bytes };
        let of_tenant = held.tenants.get(tenant).copied().unwrap_or_default();
        let of_key = held.keys.get(key).copied().unwrap_or_default();
        if !fits(held.total, total) || !fits(of_tenant, tenant_share) || of_key.requests >= key_requests {
            return None;
        }
        held.total.add(1, bytes);
        held.tenants.entry(tenant.clone()).or_default().add(1, bytes);
        held.keys.entry(key.clone()).or_default().add(1, bytes);
        Some(Admitted { budget: self.clone(), tenant: tenant.clone(), key: key.clone(), bytes })
    }
}

impl Admission {
    pub(crate) fn new(config: &ApiConfig) -> Self {
        let bytes = config.max_pending_bytes.max(config.max_body_bytes);
        Self {
            images: FairBudget::new(config.max_pending_images, bytes),
            doors: FairBudget::new(config.max_pending_doors, bytes / 2),
        }
    }

    /// A place in `pool` for `caller`'s body of at most `bytes`, if one is free now.
    fn try_admit(&self, pool: Pool, caller: &Caller, bytes: usize, max_body: usize) -> Option<Admitted> {
        let budget = match pool {
            Pool::Images => &self.images,
            Pool::Doors => &self.doors,
        };
        budget.try_admit(&caller.key.tenant_id, &caller.key.id, bytes, max_body)
    }
}

/// Images and named parameters carried by one request.
#[derive(Debug)]
pub struct ImageRequest {
    /// Encoded images, in order (shared with the body they came in: no copies).
    pub images: Vec<Bytes>,
    /// Other fields of a JSON or multipart body.
    pub fields: Map<String, Value>,
    /// This request's place among the image requests allowed to hold a body.
    _admission: Admitted,
}

/// 413 `payload_too_large`: the request body is over the server's limit.
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("request body exceeds {limit} bytes"))
}

/// Reads the images and parameters of a request, within the server's body limit, once the request is
/// admitted.
///
/// # Errors
/// 503 `overloaded`, 413 `payload_too_large`, 415 `unsupported_media_type`, 400 `invalid_request` for
/// malformed bodies.
pub(crate) async fn read_images(
    request: Request,
    state: &AppState,
    caller: &Caller,
    pool: Pool,
) -> Result<ImageRequest, ApiError> {
    let AdmittedBody { content_type, parts, body, admission } = admitted_body(request, state, caller, pool).await?;
    if content_type.starts_with("multipart/form-data") {
        let (images, fields) = read_multipart(Request::from_parts(parts, Body::from(body))).await?;
        return Ok(ImageRequest { images, fields, _admission: admission });
    }
    if content_type.starts_with("application/json") {
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
        let Value::Object(mut fields) = value else { return Err(ApiError::invalid("the JSON body must be an object")) };
        let mut images = Vec::new();
        if let Some(image) = fields.remove("image") {
            images.push(decode_base64(&image)?);
        }
        if let Some(list) = fields.remove("images") {
            let Value::Array(list) = list else {
                return Err(ApiError::invalid("`images` must be an array of base64 strings"));
            };
            for image in &list {
                images.push(decode_base64(image)?);
            }
        }
        return Ok(ImageRequest { images, fields, _admission: admission });
    }
    if content_type.starts_with("image/")
        || content_type.starts_with("application/octet-stream")
        || content_type.is_empty()
    {
        return Ok(ImageRequest { images: vec![body], fields: Map::new(), _admission: admission });
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!("send images as image/*, multipart/form-data or JSON with base64, not `{content_type}`"),
    ))
}

/// A request's body, read whole once the request was admitted, with its head and its place in the
/// admission budget (held as long as this is).
struct AdmittedBody {
    content_type: String,
    parts: axum::http::request::Parts,
    body: Bytes,
    admission: Admitted,
}

/// Admits a request into `pool` (503 `overloaded` past its share) and reads its body within the server's
/// body limit and `body_timeout`.
async fn admitted_body(
    request: Request,
    state: &AppState,
    caller: &Caller,
    pool: Pool,
) -> Result<AdmittedBody, ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(refuse(request, limit, state.config.body_timeout, too_large(limit)).await);
    }
    let Some(admission) = state.intake.admission.try_admit(pool, caller, declared.unwrap_or(limit), limit) else {
        let overloaded = ApiError::new(ErrorCode::Overloaded, "too many images are waiting for analysis; retry later")
            .retry_after(1);
        return Err(refuse(request, limit, state.config.body_timeout, overloaded).await);
    };
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let body = tokio::time::timeout(state.config.body_timeout, read_body(body, limit, declared))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Timeout, "the request body did not arrive in time"))??;
    Ok(AdmittedBody { content_type, parts, body, admission })
}

/// A video sent as the raw body (`video/*` or `application/octet-stream`), admitted with the image
/// requests (it holds a body and a pipeline as they do).
pub(crate) struct VideoRequest {
    /// The encoded video.
    pub(crate) video: Bytes,
    /// This request's place among the requests allowed to hold a body.
    _admission: Admitted,
}

/// Reads a video upload, once the request is admitted.
///
/// # Errors
/// As [`read_images`]; 415 for a body that is not sent as a video.
pub(crate) async fn read_video(request: Request, state: &AppState, caller: &Caller) -> Result<VideoRequest, ApiError> {
    let AdmittedBody { content_type, body, admission, .. } =
        admitted_body(request, state, caller, Pool::Images).await?;
    if content_type.starts_with("video/")
        || content_type.starts_with("application/octet-stream")
        || content_type.is_empty()
    {
        return Ok(VideoRequest { video: body, _admission: admission });
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "send the video as the raw body (video/mp4, video/quicktime, video/x-matroska, video/webm, video/x-msvideo), not `{content_type}`"
        ),
    ))
}

/// Refuses a request without keeping its body: reads and drops up to twice `limit` bytes of it, for at
/// most `body_timeout`, so the client gets the answer rather than a connection reset, unless it waits
/// for `100 Continue` (then it sends nothing). A body longer than that is cut off with the connection.
async fn refuse(request: Request, limit: usize, body_timeout: Duration, error: ApiError) -> ApiError {
    let waits_for_continue = request
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !waits_for_continue {
        let _ = tokio::time::timeout(body_timeout, discard(request.into_body(), limit.saturating_mul(2))).await;
    }
    error
}

/// Reads a whole body of at most `limit` bytes. A longer one (sent without `Content-Length`) is 413,
/// after up to twice `limit` more bytes are read and dropped so the client gets the answer.
async fn read_body(mut body: Body, limit: usize, declared: Option<usize>) -> Result<Bytes, ApiError> {
    let mut collected = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        let Some(data) = frame.data_ref() else { continue };
        if collected.len() + data.len() > limit {
            discard(body, limit.saturating_mul(2)).await;
            return Err(too_large(limit));
        }
        collected.extend_from_slice(data);
    }
    Ok(Bytes::from(collected))
}

/// Reads and drops up to `limit` bytes of a body, holding one frame at a time.
async fn discard(mut body: Body, limit: usize) {
    let mut read = 0usize;
    while read < limit {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            _ => break,
        }
    }
}

/// The files and fields of a multipart body already read whole (within the body limit).
async fn read_multipart(request: Request) -> Result<(Vec<Bytes>, Map<String, Value>), ApiError> {
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| ApiError::invalid(e.to_string()))?;
    let (mut images, mut fields) = (Vec::new(), Map::new());
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some()
            || field.content_type().is_some_and(|t| t.starts_with("image/") || t == "application/octet-stream");
        let data = field.bytes().await.map_err(multipart_error)?;
        if is_file || name == "image" || name == "images" {
            images.push(data);
        } else {
            let text = String::from_utf8_lossy(&data).into_owned();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            fields.insert(name, value);
        }
    }
    Ok((images, fields))
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::invalid(format!("malformed multipart body: {}", error.body_text()))
}

/// Decodes a base64 image string (a `data:` URL prefix is allowed).
pub(crate) fn decode_base64(value: &Value) -> Result<Bytes, ApiError> {
    let Value::String(text) = value else { return Err(ApiError::invalid("images must be base64 strings")) };
    let payload = text.split_once(";base64,").map_or(text.as_str(), |(_, data)| data);
    base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map(Bytes::from)
        .map_err(|_| ApiError::invalid("an image is not valid base64"))
}

/// A field of the body or query, parsed as `T`.
///
/// # Errors
/// 400 `invalid_request` when present but of the wrong type.
pub fn field<T: serde::de::DeserializeOwned>(fields: &Map<String, Value>, name: &str) -> Result<Option<T>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            // Multipart and query values arrive as strings; let "5" be a number and "true" a bool.
            let value = match value {
                Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| value.clone()),
                other => other.clone(),
            };
            serde_json::from_value(value).map(Some).map_err(|e| ApiError::invalid(format!("field `{name}`: {e}")))
        }
    }
}
