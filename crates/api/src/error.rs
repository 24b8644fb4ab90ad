//! The one error envelope of the API: `{"error":{"code","message"[,"details"]},"request_id"}` with a
//! stable `code` per failure. Handlers return [`ApiError`]; a middleware renders it with the request id,
//! and also turns axum's own failures (unknown route, wrong method, timeouts) into envelopes.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use facegate_core::{ImageError, PipelineError};
use facegate_gallery::GalleryError;
use facegate_store::StoreError;
use serde_json::{Value, json};

/// A failed request: HTTP status, stable code, message for humans, optional structured details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation (never contains images, templates or internals).
    pub message: String,
    /// Extra structured information (e.g. rejected enrolment images).
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 500 `internal`, with the cause logged but not returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<ImageError> for ApiError {
    fn from(error: ImageError) -> Self {
        let code = match error {
            ImageError::Empty => "empty_image",
            ImageError::TooLarge { .. } => "image_too_large",
            ImageError::Unsupported => "unsupported_image",
            ImageError::BadDimensions { .. } | ImageError::Corrupt(_) => "invalid_image",
            _ => "invalid_image",
        };
        let status =
            if code == "image_too_large" { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::UNPROCESSABLE_ENTITY };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Image(image) => image.into(),
            PipelineError::FmrOutOfRange { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "fmr_out_of_range", error.to_string())
            }
            PipelineError::Uncalibrated => ApiError::new(StatusCode::CONFLICT, "uncalibrated", error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "a resource with that name already exists")
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the gallery store is unavailable; retry later",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<GalleryError> for ApiError {
    fn from(error: GalleryError) -> Self {
        match error {
            GalleryError::Store(store) => store.into(),
            GalleryError::Dimension { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_template", error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// Renders every error response as the envelope, with the request id.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = response.extensions_mut().remove::<ApiError>().unwrap_or_else(|| fallback(status));
    let mut body = json!({ "error": { "code": error.code, "message": error.message }, "request_id": request_id });
    if let Some(details) = error.details {
        body["error"]["details"] = details;
    }
    let headers = response.headers().clone();
    let mut rendered = (status, Json(body)).into_response();
    for (name, value) in headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rendered
}

fn fallback(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this endpoint"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported content type"),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("error", "request failed"),
    };
    ApiError::new(status, code, message)
}
