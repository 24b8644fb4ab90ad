//! What the resource files share: reading one image and analysing it without a gallery (detect, embed,
//! compare), the queries and bounds of identification and of paged logs.

use axum::body::Bytes;
use facegate_core::{Extras, FaceAnalysis, ImageAnalysis, largest_face};
use facegate_gallery::Analyser;
use serde::Deserialize;

use crate::images::ImageRequest;
use crate::{ApiError, AppState, ErrorCode};

/// Most candidates a request may ask for.
const MAX_TOP_K: usize = 100;
/// Most events or log rows of one page.
const MAX_EVENTS: u32 = 10_000;
/// Events or log rows of a page not saying how many.
const DEFAULT_EVENTS: u32 = 1000;

/// The one image of a request, or 400 `missing_image`.
pub(crate) fn single_image(request: &mut ImageRequest) -> Result<Bytes, ApiError> {
    match request.images.len() {
        0 => Err(ApiError::new(ErrorCode::MissingImage, "the request carries no image")),
        1 => Ok(request.images.remove(0)),
        n => Err(ApiError::invalid(format!("expected one image, got {n}"))),
    }
}

/// Analyses one image with `pack` (the analyser records its stage timings).
pub(crate) async fn analyze(
    state: &AppState,
    pack: &str,
    bytes: Bytes,
    extras: Extras,
) -> Result<ImageAnalysis, ApiError> {
    Ok(state.analyser.analyse(pack, bytes, extras).await?)
}

/// The largest face of an analysis, or 422 `no_face`.
pub(crate) fn prominent(faces: Vec<FaceAnalysis>, what: &str) -> Result<FaceAnalysis, ApiError> {
    largest_face(faces).ok_or_else(|| ApiError::new(ErrorCode::NoFace, format!("no face found in {what}")))
}

/// The candidates asked for, or 400 `invalid_request` outside 1..=[`MAX_TOP_K`].
pub(crate) fn top_k(asked: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match asked.unwrap_or(default) {
        k @ 1..=MAX_TOP_K => Ok(k),
        k => Err(ApiError::invalid(format!("`top_k` must be 1 to {MAX_TOP_K}, not {k}"))),
    }
}

/// The events asked for, or 400 `invalid_request` outside 1..=[`MAX_EVENTS`].
pub(crate) fn event_limit(asked: Option<u32>) -> Result<u32, ApiError> {
    match asked.unwrap_or(DEFAULT_EVENTS) {
        n @ 1..=MAX_EVENTS => Ok(n),
        n => Err(ApiError::invalid(format!("`limit` must be 1 to {MAX_EVENTS}, not {n}"))),
    }
}

/// Query of recognize, search and verify.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdentifyQuery {
    /// Candidates per face (1 to 100).
    #[param(minimum = 1, maximum = 100)]
    pub top_k: Option<usize>,
    /// Target false-match rate (default: the collection's), within the calibrated range.
    #[param(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
    /// Also score each face's liveness (presentation-attack detection) with the pack's liveness models.
    pub liveness: Option<bool>,
}

/// Query of a log read in pages (deliveries, configuration changes).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only rows after this position (the `next_after` of the previous page).
    pub after: Option<i64>,
    /// At most this many (1 to 10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}
