//! Request headers are bounded (at most [`MAX_HEADERS`] fields and [`MAX_HEADER_BYTES`] in all, else 431
//! `headers_too_large` in the error envelope; hosts let their HTTP layer accept more, so that the
//! answer is ours rather than a bare status). Headers every response carries: `X-Content-Type-Options: nosniff` (a browser never reads an answer as
//! another type than it says), and `Cache-Control: no-store` unless the route chose its own (no cache
//! keeps an API answer, above all the one carrying a new key's or webhook's secret; the console's
//! fingerprinted assets say they may be cached).

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ErrorCode};

/// Most header fields a request may carry.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values a request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose headers are over the bounds, with the envelope.
pub(crate) async fn bounded(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let message = format!("at most {MAX_HEADERS} header fields and {MAX_HEADER_BYTES} bytes of headers");
        return ApiError::new(ErrorCode::HeadersTooLarge, message).into_response();
    }
    next.run(request).await
}

/// Adds the headers to every response.
pub(crate) async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
