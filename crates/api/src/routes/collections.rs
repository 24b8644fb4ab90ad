//! Collections, 1:N identification (recognize, search) and the audit trail. The rules (thresholds,
//! match or unknown, audit) are the gallery's; these handlers parse, call and render.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use facegate_core::Embedding;
use facegate_gallery::{AnalysisError, OperatingPoint, Probe, ProbeOptions, Receipt};
use facegate_store::{Collection, CollectionId, NewCollection, Scope};
use serde::Deserialize;

use super::common::{IdentifyQuery, event_limit, single_image, top_k};
use crate::auth::Caller;
use crate::contract::{
    CollectionList, CreateCollection, EventPage, ImageSize, RecognizeResponse, RecognizedFace, SearchResponse,
};
use crate::images::{Pool, field, read_images};
use crate::{ApiError, AppState, ErrorCode, JsonObject};

const DEFAULT_TOP_K: usize = 3;
const DEFAULT_SEARCH_TOP_K: usize = 5;

/// Scopes that may read collections (their names, packs and sizes): those that work with their contents.
const COLLECTION_READERS: [Scope; 2] = [Scope::Enroll, Scope::Search];

/// Creates a collection bound to a pack.
#[utoipa::path(post, path = "/v1/collections", tag = "collections", request_body = CreateCollection,
    responses((status = 201, description = "Created", body = Collection)), security(("api_key" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(request): JsonObject<CreateCollection>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    caller.require(Scope::Enroll)?;
    let name = crate::contract::display_name(&request.name)?;
    let pack = request.pack.unwrap_or_else(|| state.default_pack.clone());
    let pool = state.pack(&pack)?;
    let target_fmr = request.target_fmr.unwrap_or(facegate_core::DEFAULT_TARGET_FMR);
    OperatingPoint::at(pool.calibration()?, target_fmr)?;
    let embedding_size = pool.first().map_or(0, |p| p.embedding_size()) as u32;
    let new = NewCollection {
        name: name.to_string(),
        pack,
        embedding_size,
        target_fmr,
        keep_crops: request.keep_crops,
        created_at_ms: 0, // the gallery times it
    };
    let collection = state.gallery.create_collection(&caller.actor(), &new).await?;
    Ok((StatusCode::CREATED, Json(collection)))
}

/// The caller's collections.
#[utoipa::path(get, path = "/v1/collections", tag = "collections",
    responses((status = 200, description = "Collections", body = CollectionList)), security(("api_key" = [])))]
pub async fn list_collections(State(state): State<AppState>, caller: Caller) -> Result<Json<CollectionList>, ApiError> {
    caller.require_any(&COLLECTION_READERS)?;
    Ok(Json(CollectionList { collections: state.gallery.collections(&caller.actor()).await? }))
}

/// One collection.
#[utoipa::path(get, path = "/v1/collections/{collection}", tag = "collections", params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "The collection", body = Collection)), security(("api_key" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<CollectionId>,
) -> Result<Json<Collection>, ApiError> {
    caller.require_any(&COLLECTION_READERS)?;
    Ok(Json(state.gallery.collection(&caller.actor(), &id).await?))
}

/// Deletes a collection and erases every template in it; answers an erasure receipt.
#[utoipa::path(delete, path = "/v1/collections/{collection}", tag = "collections", params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "Erasure receipt", body = Receipt)), security(("api_key" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<CollectionId>,
) -> Result<Json<Receipt>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(state.gallery.delete_collection(&caller.actor(), &id).await?))
}

/// Query of `POST /v1/recognize`: the collection, and as [`IdentifyQuery`].
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecognizeQuery {
    /// The collection to search.
    pub collection: CollectionId,
    /// Candidates per face (1 to 100).
    #[param(minimum = 1, maximum = 100)]
    pub top_k: Option<usize>,
    /// Target false-match rate (default: the collection's), within the calibrated range.
    #[param(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
    /// Also score each face's liveness (presentation-attack detection) with the pack's liveness models.
    pub liveness: Option<bool>,
}

/// `POST /v1/recognize?collection=ID`: every face of the image identified against a collection.
#[utoipa::path(post, path = "/v1/recognize", tag = "identification", params(RecognizeQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image"),
    responses((status = 200, description = "Per face: box, landmarks, candidates, match or unknown", body = RecognizeResponse)), security(("api_key" = [])))]
pub async fn recognize(
    state: State<AppState>,
    caller: Caller,
    query: Result<Query<RecognizeQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<Json<RecognizeResponse>, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::invalid(
            "the `collection` query parameter is required; `top_k` and `fmr` must be numbers, `liveness` true or false",
        )
    })?;
    let identify = IdentifyQuery { top_k: query.top_k, fmr: query.fmr, liveness: query.liveness };
    identify_all(state, caller, query.collection, identify, request).await
}

/// `POST /v1/collections/{collection}/recognize`: as `/v1/recognize`.
#[utoipa::path(post, path = "/v1/collections/{collection}/recognize", tag = "identification", params(("collection" = CollectionId, Path), IdentifyQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image"),
    responses((status = 200, description = "Per face: box, landmarks, candidates, match or unknown", body = RecognizeResponse)), security(("api_key" = [])))]
pub async fn recognize_in(
    state: State<AppState>,
    caller: Caller,
    Path(collection): Path<CollectionId>,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<RecognizeResponse>, ApiError> {
    identify_all(state, caller, collection, query, request).await
}

async fn identify_all(
    State(state): State<AppState>,
    caller: Caller,
    collection_id: CollectionId,
    query: IdentifyQuery,
    request: Request,
) -> Result<Json<RecognizeResponse>, ApiError> {
    caller.require(Scope::Search)?;
    let top_k = top_k(query.top_k, DEFAULT_TOP_K)?;
    let image = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let options = ProbeOptions { top_k, fmr: query.fmr, liveness: query.liveness.unwrap_or(false) };
    let recognition = state.gallery.recognize(&caller.actor(), &collection_id, image, options).await?;
    state.metrics.stage("search", recognition.search_time);
    Ok(Json(RecognizeResponse {
        faces: recognition
            .faces
            .into_iter()
            .enumerate()
            .map(|(index, face)| RecognizedFace::new(index, face))
            .collect(),
        image: ImageSize { width: recognition.width, height: recognition.height },
        threshold: recognition.operating.threshold,
        target_fmr: recognition.operating.target_fmr,
        gallery_size: recognition.collection.face_count,
        collection_id: recognition.collection.id,
        faces_truncated: recognition.faces_truncated,
    }))
}

/// Top-k subjects for the largest face of an image, or for a template.
#[utoipa::path(post, path = "/v1/collections/{collection}/search", tag = "identification", params(("collection" = CollectionId, Path), IdentifyQuery),
    request_body(content((crate::contract::SearchByTemplate = "application/json"), (crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::RawImage = "application/octet-stream")), description = "A template (JSON), or one image"),
    responses((status = 200, description = "Candidates, best first", body = SearchResponse)), security(("api_key" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<SearchResponse>, ApiError> {
    caller.require(Scope::Search)?;
    let mut body = read_images(request, &state, &caller, Pool::Images).await?;
    let top_k = top_k(field::<usize>(&body.fields, "top_k")?.or(query.top_k), DEFAULT_SEARCH_TOP_K)?;
    let probe = match field::<Vec<f32>>(&body.fields, "template")? {
        Some(template) => Probe::Template(
            Embedding::from_raw(template)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidTemplate, "the template is zero or not finite"))?,
        ),
        None => Probe::Image(single_image(&mut body)?),
    };
    let answer = state.gallery.search_one(&caller.actor(), &collection_id, probe, top_k, query.fmr).await?;
    state.metrics.stage("search", answer.search_time);
    Ok(Json(SearchResponse {
        collection_id: answer.collection.id,
        threshold: answer.operating.threshold,
        target_fmr: answer.operating.target_fmr,
        result: answer.result,
        candidates: answer.candidates,
    }))
}

/// Query of the audit trail.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this time, milliseconds since the epoch.
    pub since: Option<i64>,
    /// Only events after this position in the trail (the `next_after` of the previous page).
    pub after: Option<i64>,
    /// At most this many (1 to 10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The audit trail of a collection, in order: decisions after `since` (ms) and after the cursor `after`.
#[utoipa::path(get, path = "/v1/collections/{collection}/events", tag = "collections", params(("collection" = CollectionId, Path), EventsQuery),
    responses((status = 200, description = "Events", body = EventPage)), security(("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = event_limit(query.limit)?;
    let events = state.gallery.events(&caller.actor(), &collection_id, query.since, query.after, limit).await?;
    let next_after = events.last().map(|e| e.seq);
    Ok(Json(EventPage { events, next_after }))
}

/// Updates the collection's policy: how long it keeps its audit events, whether liveness is always scored.
#[utoipa::path(patch, path = "/v1/collections/{collection}", tag = "collections", params(("collection" = CollectionId, Path)),
    request_body = crate::contract::CollectionUpdate, responses((status = 200, description = "Updated", body = Collection)), security(("api_key" = [])))]
pub async fn update_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    JsonObject(update): JsonObject<crate::contract::CollectionUpdate>,
) -> Result<Json<Collection>, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    let policy = facegate_store::CollectionPolicy {
        retention_days: update.retention_days.unwrap_or(collection.retention_days),
        liveness_required: update.liveness_required.unwrap_or(collection.liveness_required),
    };
    if policy.liveness_required && !state.pack(&collection.pack)?.has_liveness() {
        return Err(AnalysisError::NoLiveness.into());
    }
    Ok(Json(state.gallery.set_collection_policy(&actor, &collection_id, &policy).await?))
}

/// The receipts of the collection's automatic erasures (consent expiry); they outlive the collection.
#[utoipa::path(get, path = "/v1/collections/{collection}/receipts", tag = "collections", params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "Receipts", body = crate::contract::ReceiptList)), security(("api_key" = [])))]
pub async fn receipts(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
) -> Result<Json<crate::contract::ReceiptList>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(crate::contract::ReceiptList { receipts: state.gallery.receipts(&caller.actor(), &collection_id).await? }))
}
