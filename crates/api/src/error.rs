//! The one error envelope of the API: `{"error":{"code","message"[,"details"]},"request_id"}` with a
//! stable [`ErrorCode`] per failure, and one HTTP status per code. Handlers return [`ApiError`]; a
//! middleware renders it with the request id, logs server-side failures with their cause and the request
//! id, and also turns axum's own failures (unknown route, wrong method, timeouts, rejected extractors)
//! into envelopes whose status is their code's.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use facegate_core::{ImageError, PipelineError};
use facegate_gallery::{
    AnalysisError, CameraProblem, GalleryError, KeyProblem, MigrationProblem, ReaderProblem, SightingProblem,
};
use facegate_store::{StoreError, WireName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Every error code of the API. Each has exactly one HTTP status ([`ErrorCode::status`]); the README's
/// table of codes is checked against [`ErrorCode::ALL`] by a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No API key, or an unknown or revoked one.
    Unauthorized,
    /// The key lacks the scope the endpoint needs.
    Forbidden,
    /// No such endpoint, or no such resource for this tenant.
    NotFound,
    /// The endpoint exists but not with this method.
    MethodNotAllowed,
    /// The request took longer than the server's request timeout.
    Timeout,
    /// A resource with that name already exists.
    Conflict,
    /// The subject has no enrolled faces to verify against.
    NoTemplates,
    /// The pack has no calibration table, so no decision can be made.
    Uncalibrated,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The request carries more header fields, or longer ones, than the server accepts.
    HeadersTooLarge,
    /// The image has more pixels, or needs more memory to decode, than allowed.
    ImageTooLarge,
    /// The body's content type is not one the endpoint reads.
    UnsupportedMediaType,
    /// An image with no bytes.
    EmptyImage,
    /// Bytes that are not JPEG, PNG, WebP or BMP.
    UnsupportedImage,
    /// A recognised format with corrupt, truncated or impossible data.
    InvalidImage,
    /// No face was found.
    NoFace,
    /// More than one face where exactly one is needed.
    MultipleFaces,
    /// The face fails the enrolment quality gate (size, detection score, sharpness).
    LowQuality,
    /// The face already matches another subject (enrolment with `reject_duplicates`).
    Duplicate,
    /// Too many requests for this key, or too many failed key checks from this address.
    RateLimited,
    /// The request is malformed (a bad field, query parameter or JSON body).
    InvalidRequest,
    /// The request carries no image where one is needed.
    MissingImage,
    /// A template is zero, not finite, or of the wrong length.
    InvalidTemplate,
    /// The pack asked for is not loaded on this server.
    UnknownPack,
    /// A target false-match rate outside the calibrated range.
    FmrOutOfRange,
    /// Too many image requests are already waiting for a pipeline; retry after `Retry-After` seconds.
    Overloaded,
    /// The gallery store cannot be reached.
    StoreUnavailable,
    /// The instance cannot serve (no usable pipeline, or the store is unreachable): `/v1/health` only.
    NotReady,
    /// A server-side failure; its cause is logged with the request id, never returned.
    Internal,
}

impl From<facegate_gallery::RejectReason> for ErrorCode {
    /// The code an enrolment image refused for `reason` is reported with.
    fn from(reason: facegate_gallery::RejectReason) -> Self {
        use facegate_gallery::RejectReason;
        match reason {
            RejectReason::NoFace => ErrorCode::NoFace,
            RejectReason::MultipleFaces => ErrorCode::MultipleFaces,
            RejectReason::LowQuality => ErrorCode::LowQuality,
            RejectReason::Duplicate => ErrorCode::Duplicate,
        }
    }
}

impl WireName for ErrorCode {
    /// Every code, in the README's order.
    const ALL: &'static [ErrorCode] = &[
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Timeout,
        Self::Conflict,
        Self::NoTemplates,
        Self::Uncalibrated,
        Self::PayloadTooLarge,
        Self::HeadersTooLarge,
        Self::ImageTooLarge,
        Self::UnsupportedMediaType,
        Self::EmptyImage,
        Self::UnsupportedImage,
        Self::InvalidImage,
        Self::NoFace,
        Self::MultipleFaces,
        Self::LowQuality,
        Self::Duplicate,
        Self::RateLimited,
        Self::InvalidRequest,
        Self::MissingImage,
        Self::InvalidTemplate,
        Self::UnknownPack,
        Self::FmrOutOfRange,
        Self::Overloaded,
        Self::StoreUnavailable,
        Self::NotReady,
        Self::Internal,
    ];
}

impl ErrorCode {
    /// The one HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict | Self::NoTemplates | Self::Uncalibrated => StatusCode::CONFLICT,
            Self::PayloadTooLarge | Self::ImageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::EmptyImage
            | Self::UnsupportedImage
            | Self::InvalidImage
            | Self::NoFace
            | Self::MultipleFaces
            | Self::LowQuality
            | Self::Duplicate => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidRequest
            | Self::MissingImage
            | Self::InvalidTemplate
            | Self::UnknownPack
            | Self::FmrOutOfRange => StatusCode::BAD_REQUEST,
            Self::Overloaded | Self::StoreUnavailable | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a response of `status` gets when no handler said more (axum's own rejections).
    fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Overloaded,
            s if s.is_server_error() => Self::Internal,
            _ => Self::InvalidRequest,
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            Self::NotFound => "no such endpoint",
            Self::MethodNotAllowed => "method not allowed on this endpoint",
            Self::PayloadTooLarge => "request body too large",
            Self::HeadersTooLarge => "too many or too long header fields",
            Self::Timeout => "the request took too long",
            Self::UnsupportedMediaType => "unsupported content type",
            Self::RateLimited => "too many requests",
            Self::Internal => "internal error",
            _ => "the request is malformed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: stable code (which fixes the HTTP status), message for humans, optional details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation (never contains images, templates or internals).
    pub message: String,
    /// Extra structured information (e.g. rejected enrolment images).
    pub details: Option<Value>,
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
    /// The internal cause of a 5xx, logged with the request id and never returned.
    cause: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: None, retry_after: None, cause: None }
    }

    /// The HTTP status (the code's).
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Adds structured details (any serialisable value).
    pub fn with_details(mut self, details: &impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// Adds a `Retry-After` of `seconds` (at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 500 `internal`; the cause is logged (with the request id) when the response is rendered.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(ErrorCode::Internal, "internal error");
        error.cause = Some(cause.to_string());
        error
    }

    /// A 503 whose cause is logged, like [`ApiError::internal`].
    fn unavailable(code: ErrorCode, message: &str, cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(code, message).retry_after(1);
        error.cause = Some(cause.to_string());
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<ImageError> for ApiError {
    fn from(error: ImageError) -> Self {
        let code = match error {
            ImageError::Empty => ErrorCode::EmptyImage,
            ImageError::TooLarge { .. } | ImageError::TooManyBytes { .. } | ImageError::DecodeBudget => {
                ErrorCode::ImageTooLarge
            }
            ImageError::Unsupported => ErrorCode::UnsupportedImage,
            _ => ErrorCode::InvalidImage,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Image(image) => image.into(),
            PipelineError::FmrOutOfRange { .. } => ApiError::new(ErrorCode::FmrOutOfRange, error.to_string()),
            PipelineError::Uncalibrated => ApiError::new(ErrorCode::Uncalibrated, error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<AnalysisError> for ApiError {
    fn from(error: AnalysisError) -> Self {
        match error {
            AnalysisError::UnknownPack { .. } => ApiError::new(ErrorCode::UnknownPack, error.to_string()),
            AnalysisError::NoLiveness => ApiError::invalid(error.to_string()),
            AnalysisError::Pipeline(pipeline) => pipeline.into(),
            AnalysisError::Failed(_) => ApiError::internal(error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Conflict(_) => ApiError::new(ErrorCode::Conflict, "a resource with that name already exists"),
            StoreError::Unavailable(cause) => ApiError::unavailable(
                ErrorCode::StoreUnavailable,
                "the gallery store is unavailable; retry later",
                cause,
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<GalleryError> for ApiError {
    fn from(error: GalleryError) -> Self {
        match error {
            GalleryError::Store(store) => store.into(),
            GalleryError::NotFound(what) => ApiError::not_found(what.as_str()),
            GalleryError::NoTemplates => ApiError::new(ErrorCode::NoTemplates, error.to_string()),
            GalleryError::NoFace => ApiError::new(ErrorCode::NoFace, error.to_string()),
            GalleryError::Analysis(analysis) => analysis.into(),
            GalleryError::Calibration(pipeline) => pipeline.into(),
            GalleryError::Dimension { .. } => ApiError::new(ErrorCode::InvalidTemplate, error.to_string()),
            GalleryError::Door(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Webhook(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Mqtt(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Reader(ReaderProblem::TooMany) => ApiError::new(ErrorCode::Conflict, error.to_string()),
            GalleryError::Reader(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Camera(CameraProblem::TooMany) => ApiError::new(ErrorCode::Conflict, error.to_string()),
            GalleryError::Camera(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Consent(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Link(refused) => ApiError::new(ErrorCode::Forbidden, refused.to_string()),
            GalleryError::Sighting(SightingProblem::Naming) => ApiError::invalid(error.to_string()),
            GalleryError::Sighting(_) => ApiError::new(ErrorCode::Conflict, error.to_string()),
            GalleryError::Key(KeyProblem::SelfRevocation) => ApiError::new(ErrorCode::Conflict, error.to_string()),
            GalleryError::Key(problem) => ApiError::invalid(problem.to_string()),
            GalleryError::Migration(MigrationProblem::SamePack(_) | MigrationProblem::VersionChanged { .. }) => {
                ApiError::new(ErrorCode::Conflict, error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// Renders every error response as the envelope, with the request id and the code's status, and logs
/// server-side failures. Sits outside the timeout layer, so a timed-out request gets its envelope too.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = response.extensions_mut().remove::<ApiError>().unwrap_or_else(|| {
        let code = ErrorCode::for_status(status);
        ApiError::new(code, code.default_message())
    });
    if error.code == ErrorCode::Internal {
        tracing::error!(request_id, code = %error.code, cause = error.cause.as_deref().unwrap_or(""), "request failed");
    } else if error.code.status().is_server_error() {
        tracing::warn!(request_id, code = %error.code, cause = error.cause.as_deref().unwrap_or(""), "request refused");
    } else {
        tracing::debug!(request_id, code = %error.code, "request refused");
    }
    let mut body = json!({ "error": { "code": error.code, "message": error.message }, "request_id": request_id });
    if let Some(details) = error.details {
        body["error"]["details"] = details;
    }
    let headers = response.headers().clone();
    let mut rendered = (error.code.status(), Json(body)).into_response();
    for (name, value) in headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = error.retry_after {
        rendered.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_exactly_the_codes_with_their_statuses() {
        let documented = facegate_testing::readme_error_codes();
        let actual: Vec<(String, u16)> =
            ErrorCode::ALL.iter().map(|c| (c.as_str().to_string(), c.status().as_u16())).collect();
        assert_eq!(documented, actual, "README error-code table and ErrorCode differ");
    }

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).expect("serialise"), Value::String(code.as_str().into()));
        }
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "codes are distinct");
    }
}
