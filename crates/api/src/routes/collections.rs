//! Collections, 1:N identification (recognize, search) and the audit trail.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use facegate_core::Embedding;
use facegate_gallery::Candidate;
use facegate_store::{Collection, NewCollection, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faces::{analyze, prominent, single_image};
use crate::auth::Caller;
use crate::images::{field, read_images};
use crate::{ApiError, AppState, ErrorCode, now_ms};

const MAX_TOP_K: usize = 100;
const DEFAULT_TOP_K: usize = 3;

/// Body of `POST /v1/collections`.
#[derive(Debug, Deserialize)]
pub struct CreateCollection {
    /// Name, unique within the tenant.
    pub name: String,
    /// Model pack (default: the server's default pack).
    pub pack: Option<String>,
    /// Default target false-match rate of decisions (default 1e-3).
    pub target_fmr: Option<f64>,
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

/// Creates a collection bound to a pack.
#[utoipa::path(post, path = "/v1/collections", tag = "collections", request_body(content_type = "application/json", description = "{\"name\", \"pack\"?, \"target_fmr\"?}"),
    responses((status = 201, description = "Created"), (status = 409, description = "Name taken")), security(("api_key" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    caller.require(Scope::Enroll)?;
    let request: CreateCollection = json_body(&body)?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("`name` must be 1 to 200 characters"));
    }
    let pack = request.pack.unwrap_or_else(|| state.default_pack.clone());
    let pool = state.pack(&pack)?;
    let pipeline = pool.first().ok_or_else(|| ApiError::internal("empty pool"))?;
    let target_fmr = request.target_fmr.unwrap_or(1e-3);
    pipeline.calibration().threshold_for(target_fmr)?;
    let embedding_size = pipeline.embedding_size() as u32;
    let new = NewCollection { name: name.to_string(), pack, embedding_size, target_fmr, created_at_ms: now_ms() };
    let collection = state.gallery.store().create_collection(caller.tenant(), &new).await?;
    Ok((StatusCode::CREATED, Json(collection)))
}

/// The caller's collections.
#[utoipa::path(get, path = "/v1/collections", tag = "collections", responses((status = 200, description = "Collections")), security(("api_key" = [])))]
pub async fn list_collections(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_any(&COLLECTION_READERS)?;
    let collections = state.gallery.store().list_collections(caller.tenant()).await?;
    Ok(Json(json!({ "collections": collections })))
}

/// Scopes that may read collections (their names, packs and sizes): those that work with their contents.
const COLLECTION_READERS: [Scope; 2] = [Scope::Enroll, Scope::Search];

pub(crate) async fn load_collection(state: &AppState, caller: &Caller, id: &str) -> Result<Collection, ApiError> {
    state.gallery.store().collection(caller.tenant(), id).await.map_err(|e| match e {
        facegate_store::StoreError::NotFound => ApiError::not_found("collection"),
        other => other.into(),
    })
}

/// One collection.
#[utoipa::path(get, path = "/v1/collections/{collection}", tag = "collections", params(("collection" = String, Path)),
    responses((status = 200, description = "The collection"), (status = 404, description = "Not found")), security(("api_key" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Collection>, ApiError> {
    caller.require_any(&COLLECTION_READERS)?;
    Ok(Json(load_collection(&state, &caller, &id).await?))
}

/// Deletes a collection and erases every template in it.
#[utoipa::path(delete, path = "/v1/collections/{collection}", tag = "collections", params(("collection" = String, Path)),
    responses((status = 200, description = "Erasure receipt")), security(("api_key" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Enroll)?;
    load_collection(&state, &caller, &id).await?;
    let erasure = state.gallery.store().delete_collection(caller.tenant(), &id, now_ms()).await?;
    state.gallery.forget(&id);
    Ok(Json(super::subjects::receipt(&state, &erasure)))
}

/// Query of recognize and search.
#[derive(Debug, Default, Deserialize)]
pub struct IdentifyQuery {
    /// Collection to search (for `POST /v1/recognize`).
    pub collection: Option<String>,
    /// Candidates per face.
    pub top_k: Option<usize>,
    /// Target false-match rate (default: the collection's).
    pub fmr: Option<f64>,
}

struct Identified {
    threshold: f32,
    target_fmr: f64,
}

async fn threshold(
    state: &AppState,
    collection: &Collection,
    fmr: Option<f64>,
) -> Result<(Identified, std::sync::Arc<crate::PipelinePool>), ApiError> {
    let pool = state.pack(&collection.pack)?;
    let target_fmr = fmr.unwrap_or(collection.target_fmr);
    let pipeline = pool.first().ok_or_else(|| ApiError::internal("empty pool"))?;
    let threshold = pipeline.calibration().threshold_for(target_fmr)?;
    Ok((Identified { threshold, target_fmr }, pool))
}

fn candidates_json(candidates: &[Candidate]) -> Value {
    Value::Array(
        candidates
            .iter()
            .map(|c| json!({ "subject_id": c.subject_id, "face_id": c.face_id, "score": c.score }))
            .collect(),
    )
}

/// 1:N search of one template in a collection, timed.
pub(crate) async fn search_gallery(
    state: &AppState,
    caller: &Caller,
    collection: &Collection,
    embedding: &Embedding,
    top_k: usize,
) -> Result<Vec<Candidate>, ApiError> {
    let started = std::time::Instant::now();
    let found = state.gallery.search(caller.tenant(), collection, embedding.as_slice(), top_k).await?;
    state.metrics.stage("search", started.elapsed());
    Ok(found)
}

/// `POST /v1/recognize?collection=ID`: every face of the image identified against a collection.
#[utoipa::path(post, path = "/v1/recognize", tag = "identification", params(("collection" = String, Query), ("top_k" = Option<usize>, Query), ("fmr" = Option<f64>, Query)),
    request_body(content_type = "image/jpeg", description = "An image"),
    responses((status = 200, description = "Per face: box, landmarks, candidates, match or unknown")), security(("api_key" = [])))]
pub async fn recognize(
    state: State<AppState>,
    caller: Caller,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let collection =
        query.collection.clone().ok_or_else(|| ApiError::invalid("the `collection` query parameter is required"))?;
    identify_all(state, caller, collection, query, request).await
}

/// `POST /v1/collections/{collection}/recognize`: as `/v1/recognize`.
pub async fn recognize_in(
    state: State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    identify_all(state, caller, collection, query, request).await
}

async fn identify_all(
    State(state): State<AppState>,
    caller: Caller,
    collection_id: String,
    query: IdentifyQuery,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Search)?;
    let collection = load_collection(&state, &caller, &collection_id).await?;
    let top_k = query.top_k.unwrap_or(DEFAULT_TOP_K).clamp(1, MAX_TOP_K);
    let (identified, pool) = threshold(&state, &collection, query.fmr).await?;
    let bytes = single_image(&mut read_images(request, &state).await?)?;
    let analysis = analyze(&state, &pool, bytes, false).await?;
    let (mut faces, mut events) = (Vec::new(), Vec::new());
    for (i, face) in analysis.faces.iter().enumerate() {
        let candidates = search_gallery(&state, &caller, &collection, &face.embedding, top_k).await?;
        let best = candidates.first().filter(|c| c.score >= identified.threshold);
        events.push(caller.event(
            &collection.id,
            "recognize",
            if best.is_some() { "match" } else { "unknown" },
            best.map(|c| c.subject_id.clone()),
            candidates.first().map(|c| c.score),
            Some(i as u32),
        ));
        let subject = match best {
            Some(c) => Some(state.gallery.store().subject(caller.tenant(), &collection.id, &c.subject_id).await?),
            None => None,
        };
        faces.push(json!({
            "face_index": i,
            "bbox": face.face.bbox,
            "bbox_normalized": face.face.bbox_normalized,
            "landmarks": face.face.landmarks,
            "detection_score": face.face.score,
            "result": if best.is_some() { "match" } else { "unknown" },
            "subject": subject.map(|s| json!({ "id": s.id, "name": s.name, "metadata": s.metadata })),
            "score": best.map(|c| c.score),
            "candidates": candidates_json(&candidates),
        }));
    }
    if !events.is_empty() {
        state.gallery.store().append_events(caller.tenant(), &events).await?;
    }
    Ok(Json(json!({
        "collection_id": collection.id,
        "image": { "width": analysis.width, "height": analysis.height },
        "threshold": identified.threshold,
        "target_fmr": identified.target_fmr,
        "gallery_size": collection.face_count,
        "faces": faces,
        "faces_truncated": analysis.faces_truncated,
    })))
}

/// Top-k subjects for the largest face of an image, or for a template.
#[utoipa::path(post, path = "/v1/collections/{collection}/search", tag = "identification", params(("collection" = String, Path), ("top_k" = Option<usize>, Query)),
    request_body(content_type = "image/jpeg", description = "An image, or JSON {\"template\": [..]}"),
    responses((status = 200, description = "Candidates, best first")), security(("api_key" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<String>,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Search)?;
    let collection = load_collection(&state, &caller, &collection_id).await?;
    let (identified, pool) = threshold(&state, &collection, query.fmr).await?;
    let mut body = read_images(request, &state).await?;
    let top_k = field::<usize>(&body.fields, "top_k")?.or(query.top_k).unwrap_or(5).clamp(1, MAX_TOP_K);
    let embedding = match field::<Vec<f32>>(&body.fields, "template")? {
        Some(template) => Embedding::from_raw(template)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidTemplate, "the template is zero or not finite"))?,
        None => prominent(analyze(&state, &pool, single_image(&mut body)?, false).await?.faces, "the image")?.embedding,
    };
    let candidates = search_gallery(&state, &caller, &collection, &embedding, top_k).await?;
    let best = candidates.first().filter(|c| c.score >= identified.threshold);
    let event = caller.event(
        &collection.id,
        "search",
        if best.is_some() { "match" } else { "unknown" },
        best.map(|c| c.subject_id.clone()),
        candidates.first().map(|c| c.score),
        None,
    );
    state.gallery.store().append_events(caller.tenant(), &[event]).await?;
    Ok(Json(json!({
        "collection_id": collection.id,
        "threshold": identified.threshold,
        "target_fmr": identified.target_fmr,
        "result": if best.is_some() { "match" } else { "unknown" },
        "candidates": candidates_json(&candidates),
    })))
}

/// Query of the audit trail.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// Only events after this time, milliseconds since the epoch.
    pub since: Option<i64>,
    /// Only events after this position in the trail (the `next_after` of the previous page).
    pub after: Option<i64>,
    /// At most this many (default 1000).
    pub limit: Option<u32>,
}

/// The audit trail of a collection, in order: decisions after `since` (ms) and after the cursor `after`.
#[utoipa::path(get, path = "/v1/collections/{collection}/events", tag = "collections", params(("collection" = String, Path), ("since" = Option<i64>, Query), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "Events")), security(("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    load_collection(&state, &caller, &collection_id).await?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let events = state.gallery.store().events(caller.tenant(), &collection_id, query.since, query.after, limit).await?;
    let next_after = events.last().map(|e| e.seq);
    Ok(Json(json!({ "events": events, "next_after": next_after })))
}
