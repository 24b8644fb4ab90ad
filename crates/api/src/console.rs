//! The operator console (`console/`, a React app on the client generated from the OpenAPI document),
//! built by `scripts/console.sh build`, embedded at compile time and served at `/console` by every host
//! of the router. It calls only the API's own endpoints, with the key the operator signs in with (kept in
//! the tab's session storage, sent as `Authorization: Bearer`), so serving it needs no key and adds no
//! endpoint.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

use crate::{ApiError, AppState, ErrorCode};

/// The built assets (`console/dist`, or an empty folder when it was not built).
static ASSETS: Dir<'static> = include_dir!("$FACEGATE_CONSOLE_DIR");

/// Scripts, styles and connections from this origin only (no inline script or style), camera frames as
/// blobs, and never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/console` and its assets.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/console", get(index)).route("/console/", get(index)).route("/console/{*path}", get(asset))
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some(file) = ASSETS.get_file(path) else {
        let message = if ASSETS.get_file("index.html").is_none() {
            "the console was not built into this binary (scripts/console.sh build, then rebuild)".to_string()
        } else {
            format!("no console file `{path}`")
        };
        return ApiError::new(ErrorCode::NotFound, message).into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    // Vite names every asset by its content hash, so they never change; the page itself is revalidated.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_str(mime.as_ref()).unwrap_or(HeaderValue::from_static("text/plain"))),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::HeaderName::from_static("permissions-policy"), HeaderValue::from_static("camera=(self)")),
    ];
    (headers, file.contents()).into_response()
}
