//! Request ids: the server makes every request's id (a UUID), so what the audit trail and the logs call a
//! request is never chosen by a client. A client's own `x-request-id` is kept apart as its correlation id
//! when it is short and plain (at most [`MAX_CORRELATION_CHARS`] of letters, digits and `-_.:/+=`),
//! recorded beside the server's id in the audit trail and echoed as `x-correlation-id`; otherwise it is
//! dropped.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header carrying the server's request id (in requests once the middleware ran, and in responses).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The response header echoing a client's validated correlation id.
const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
/// Longest correlation id kept, characters.
pub const MAX_CORRELATION_CHARS: usize = 128;

/// A client's validated correlation id, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Correlation(pub(crate) Option<String>);

/// A client's request id as a correlation id, if it is one: 1 to [`MAX_CORRELATION_CHARS`] characters
/// of letters, digits and `-_.:/+=`.
pub(crate) fn correlation(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:/+=".contains(c);
    (!text.is_empty() && text.len() <= MAX_CORRELATION_CHARS && text.chars().all(plain)).then(|| text.to_string())
}

/// Replaces the request's `x-request-id` by a fresh server id, keeps the client's as its correlation id,
/// and sets both on the response.
pub(crate) async fn assign(mut request: Request, next: Next) -> Response {
    let client = correlation(request.headers().get(&REQUEST_ID));
    let id = facegate_store::RequestId::random();
    let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"));
    request.headers_mut().insert(REQUEST_ID, value.clone());
    request.extensions_mut().insert(Correlation(client.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, value);
    if let Some(client) = client.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(CORRELATION_ID, client);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_client_ids_are_kept() {
        let header = |text: &str| HeaderValue::from_str(text).expect("header");
        assert_eq!(correlation(Some(&header("trace-42:a/b"))), Some("trace-42:a/b".into()));
        assert_eq!(correlation(Some(&header(&"a".repeat(MAX_CORRELATION_CHARS)))).map(|c| c.len()), Some(128));
        for bad in ["<script>alert(1)</script>", "a b", "", "ünïcode"] {
            assert_eq!(correlation(HeaderValue::from_str(bad).ok().as_ref()), None, "{bad}");
        }
        assert_eq!(correlation(Some(&header(&"a".repeat(60_000)))), None, "a 60,000-character id");
        assert_eq!(correlation(None), None);
    }
}
