//! Images in requests, in any of three forms: the raw body (`Content-Type: image/*` or
//! `application/octet-stream`), `multipart/form-data` (file fields are images, text fields are
//! parameters), or JSON with base64 in `image` / `images` (other keys are parameters).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use base64::Engine;
use serde_json::{Map, Value};

use crate::ApiError;

/// Images and named parameters carried by one request.
#[derive(Debug, Default)]
pub struct ImageRequest {
    /// Encoded images, in order.
    pub images: Vec<Vec<u8>>,
    /// Other fields of a JSON or multipart body.
    pub fields: Map<String, Value>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "image_too_large", format!("request body exceeds {limit} bytes"))
}

/// Reads the images and parameters of a request, within `limit` bytes of body.
///
/// # Errors
/// 413 `image_too_large`, 415 `unsupported_media_type`, 400 `invalid_request` for malformed bodies.
pub async fn read_images(request: Request, limit: usize) -> Result<ImageRequest, ApiError> {
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        return read_multipart(request, limit).await;
    }
    let body = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| too_large(limit))?;
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
        return Ok(ImageRequest { images, fields });
    }
    if content_type.starts_with("image/")
        || content_type.starts_with("application/octet-stream")
        || content_type.is_empty()
    {
        return Ok(ImageRequest { images: vec![body.to_vec()], fields: Map::new() });
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("send images as image/*, multipart/form-data or JSON with base64, not `{content_type}`"),
    ))
}

async fn read_multipart(request: Request, limit: usize) -> Result<ImageRequest, ApiError> {
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| ApiError::invalid(e.to_string()))?;
    let mut result = ImageRequest::default();
    let mut total = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(|e| multipart_error(&e.to_string(), limit))? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some()
            || field.content_type().is_some_and(|t| t.starts_with("image/") || t == "application/octet-stream");
        let data = field.bytes().await.map_err(|e| multipart_error(&e.to_string(), limit))?;
        total += data.len();
        if total > limit {
            return Err(too_large(limit));
        }
        if is_file || name == "image" || name == "images" {
            result.images.push(data.to_vec());
        } else {
            let text = String::from_utf8_lossy(&data).into_owned();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            result.fields.insert(name, value);
        }
    }
    Ok(result)
}

fn multipart_error(message: &str, limit: usize) -> ApiError {
    if message.contains("limit") {
        too_large(limit)
    } else {
        ApiError::invalid(format!("malformed multipart body: {message}"))
    }
}

/// Decodes a base64 image string (a `data:` URL prefix is allowed).
pub(crate) fn decode_base64(value: &Value) -> Result<Vec<u8>, ApiError> {
    let Value::String(text) = value else { return Err(ApiError::invalid("images must be base64 strings")) };
    let payload = text.split_once(";base64,").map_or(text.as_str(), |(_, data)| data);
    base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
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
