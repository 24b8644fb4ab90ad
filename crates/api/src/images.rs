//! Images in requests, in any of three forms: the raw body (`Content-Type: image/*` or
//! `application/octet-stream`), `multipart/form-data` (file fields are images, text fields are
//! parameters), or JSON with base64 in `image` / `images` (other keys are parameters).
//!
//! Admission: an image request holds its body in memory until its images are analysed, so image
//! requests may hold at most [`crate::ApiConfig::max_pending_bytes`] of bodies (by `Content-Length`,
//! else the body limit) and be at most [`crate::ApiConfig::max_pending_images`] at a time. Past that, a
//! request is refused with 503 `overloaded` and `Retry-After` before its body is kept: the body is read
//! and dropped (so the client sees the answer instead of a reset connection), or not read at all when
//! the client waits for `100 Continue`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::inference::ByteBudget;
use crate::{ApiConfig, ApiError, AppState, ErrorCode};

/// The admission budget of image requests: a count and bytes of bodies.
pub(crate) struct Admission {
    requests: Arc<Semaphore>,
    bytes: ByteBudget,
}

/// An admitted request's share of the budget, returned when it is dropped.
#[derive(Debug)]
struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Admission {
    pub(crate) fn new(config: &ApiConfig) -> Self {
        let bytes = config.max_pending_bytes.max(config.max_body_bytes);
        Self {
            requests: Arc::new(Semaphore::new(config.max_pending_images.max(1))),
            bytes: ByteBudget::new(bytes as u64),
        }
    }

    /// A place for a body of at most `bytes`, if one is free now.
    fn try_admit(&self, bytes: usize) -> Option<Admitted> {
        let request = self.requests.clone().try_acquire_owned().ok()?;
        let bytes = self.bytes.try_reserve(bytes as u64)?;
        Some(Admitted { _request: request, _bytes: bytes })
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
pub async fn read_images(request: Request, state: &AppState) -> Result<ImageRequest, ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(refuse(request, limit, too_large(limit)).await);
    }
    let Some(admission) = state.admission.try_admit(declared.unwrap_or(limit)) else {
        let overloaded = ApiError::new(ErrorCode::Overloaded, "too many images are waiting for analysis; retry later")
            .retry_after(1);
        return Err(refuse(request, limit, overloaded).await);
    };
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let body = read_body(body, limit, declared).await?;
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

/// Refuses a request without keeping its body: reads and drops up to twice `limit` bytes of it, so the
/// client gets the answer rather than a connection reset, unless it waits for `100 Continue` (then it
/// sends nothing). A body longer than that is cut off with the connection.
async fn refuse(request: Request, limit: usize, error: ApiError) -> ApiError {
    let waits_for_continue = request
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !waits_for_continue {
        discard(request.into_body(), limit.saturating_mul(2)).await;
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
