//! Sightings: who (or which unknown face) a camera saw, where and when (admin: they tell where people
//! were). One per video track that was decided (`facegate watch`), with its best shot; searchable by
//! photo; "not this person"; the groups of unknown faces and their naming.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use facegate_gallery::{
    BestShotLink, ClusterName, DEFAULT_PRESENCE_WINDOW_S, MAX_SIGHTING_MATCHES, NotThisPerson, SightingSearch,
};
use facegate_store::{CollectionId, Scope, SightingDecision, SightingFilter, SubjectId, TenantId};
use serde::Deserialize;

use super::common::{event_limit, single_image};
use super::subjects::enrolment_parts;
use crate::auth::Caller;
use crate::contract::{ClusterList, NamedClusterAnswer, PresenceList, SightingPage};
use crate::images::{Pool, read_images};
use crate::{ApiError, AppState};

/// Which sightings: every filter given holds.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SightingsQuery {
    /// Only this person's.
    pub subject: Option<SubjectId>,
    /// Only this camera's (its name as `watch` gives it).
    pub camera: Option<String>,
    /// Only named, or only unknown, faces.
    pub decision: Option<SightingDecision>,
    /// Only this group's of unknown faces.
    #[param(minimum = 0)]
    pub cluster: Option<i64>,
    /// Only faces still seen at or after this time, milliseconds since the epoch.
    pub from: Option<i64>,
    /// Only faces first seen before this time, milliseconds since the epoch.
    pub until: Option<i64>,
    /// Only after this position (the `next_after` of the previous page).
    pub after: Option<i64>,
    /// At most this many (1 to 10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// A collection's sightings, oldest first: who was seen by which camera, from when to when.
#[utoipa::path(get, path = "/v1/collections/{collection}/sightings", tag = "collections",
    params(("collection" = CollectionId, Path), SightingsQuery),
    responses((status = 200, description = "Sightings", body = SightingPage)), security(("api_key" = [])))]
pub async fn sightings(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<SightingsQuery>,
) -> Result<Json<SightingPage>, ApiError> {
    caller.require(Scope::Admin)?;
    let filter = filter(query)?;
    let sightings = state.gallery.sightings(&caller.actor(), &collection_id, &filter).await?;
    let next_after = sightings.last().map(|s| s.seq);
    Ok(Json(SightingPage { sightings, next_after }))
}

/// Which presences: every filter given holds; `window_s` folds a person's sightings at one camera.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresenceQuery {
    /// Only this person's.
    pub subject: Option<SubjectId>,
    /// Only this camera's.
    pub camera: Option<String>,
    /// Only sightings still seen at or after this time, milliseconds since the epoch.
    pub from: Option<i64>,
    /// Only sightings first seen before this time, milliseconds since the epoch.
    pub until: Option<i64>,
    /// A sighting that begins within this many seconds after the person was last seen at that camera
    /// is the same presence (0 to 86400, default 60).
    #[param(minimum = 0, maximum = 86400)]
    pub window_s: Option<u32>,
}

/// Who was present at which camera and when: a person's named sightings at one camera folded while
/// each begins within `window_s` after the last ended (re-entries, shot cuts, a track lost for a moment).
#[utoipa::path(get, path = "/v1/collections/{collection}/presence", tag = "collections",
    params(("collection" = CollectionId, Path), PresenceQuery),
    responses((status = 200, description = "Presences, by when they began", body = PresenceList)),
    security(("api_key" = [])))]
pub async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<PresenceQuery>,
) -> Result<Json<PresenceList>, ApiError> {
    caller.require(Scope::Admin)?;
    let window_s = query.window_s.unwrap_or(DEFAULT_PRESENCE_WINDOW_S);
    if window_s > 86_400 {
        return Err(ApiError::invalid("`window_s` must be between 0 and 86400"));
    }
    let filter = SightingFilter {
        subject_id: query.subject,
        camera: query.camera,
        from_ms: query.from,
        until_ms: query.until,
        ..SightingFilter::default()
    };
    let (presences, truncated) = state.gallery.presence(&caller.actor(), &collection_id, &filter, window_s).await?;
    Ok(Json(PresenceList { presences, window_s, truncated }))
}

fn filter(query: SightingsQuery) -> Result<SightingFilter, ApiError> {
    Ok(SightingFilter {
        subject_id: query.subject,
        camera: query.camera,
        decision: query.decision,
        cluster_id: query
            .cluster
            .map(u64::try_from)
            .transpose()
            .map_err(|_| ApiError::invalid("`cluster` is a group's id, 0 or more"))?,
        from_ms: query.from,
        until_ms: query.until,
        after_seq: query.after,
        limit: event_limit(query.limit)?,
    })
}

/// A sighting's best shot: the face with its surroundings as the camera saw it, a JPEG.
#[utoipa::path(get, path = "/v1/collections/{collection}/sightings/{seq}/best-shot", tag = "collections",
    params(("collection" = CollectionId, Path), ("seq" = i64, Path, description = "The sighting's `seq`")),
    responses((status = 200, description = "The best shot", content_type = "image/jpeg", body = crate::contract::JpegImage)),
    security(("api_key" = [])))]
pub async fn best_shot(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, seq)): Path<(CollectionId, i64)>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let (_, shot) = state.gallery.sighting_shot(&caller.actor(), &collection_id, seq).await?;
    let shot = shot.ok_or_else(|| ApiError::not_found("best shot"))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, no-store")], shot).into_response())
}

/// A signed link's query: until when it works and its signature (as published, e.g. on the broker).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// When the link stops working, seconds since the epoch.
    pub expires: i64,
    /// The link's signature, 64 hex digits.
    pub signature: String,
}

/// A sighting's best shot through a signed, expiring link (no API key: the link is the permission),
/// as facegate publishes it for Home Assistant's "last face" image. An expired or altered link is
/// refused (403); a sighting erased since is not found (404).
#[utoipa::path(get, path = "/v1/best-shots/{tenant}/{collection}/{seq}", tag = "collections",
    params(("tenant" = TenantId, Path), ("collection" = CollectionId, Path),
        ("seq" = i64, Path, description = "The sighting's `seq`"), LinkQuery),
    responses((status = 200, description = "The best shot", content_type = "image/jpeg", body = crate::contract::JpegImage)))]
pub async fn linked_best_shot(
    State(state): State<AppState>,
    Path((tenant_id, collection_id, seq)): Path<(TenantId, CollectionId, i64)>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let link = BestShotLink { tenant_id, collection_id, seq, expires: query.expires, signature: query.signature };
    let shot = state.gallery.best_shot_by_link(&link).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, no-store")], shot).into_response())
}

/// "Not this person": the sighting's face joins its subject's ignore list (the same face is not taken
/// for them again) and the sighting becomes an unknown face, in the group it resembles.
#[utoipa::path(post, path = "/v1/collections/{collection}/sightings/{seq}/not-this-person", tag = "collections",
    params(("collection" = CollectionId, Path), ("seq" = i64, Path, description = "The sighting's `seq`")),
    responses((status = 200, description = "Ignored, and regrouped", body = NotThisPerson)),
    security(("api_key" = [])))]
pub async fn not_this_person(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, seq)): Path<(CollectionId, i64)>,
) -> Result<Json<NotThisPerson>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(state.gallery.not_this_person(&caller.actor(), &collection_id, seq).await?))
}

/// How a search of sightings by photo goes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SightingSearchQuery {
    /// Target false-match rate (default: the collection's), within the calibrated range.
    #[param(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
    /// At most this many matches (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Where and when the person in a photo was seen: every sighting (named or unknown) whose face matches
/// the photo's largest face at the collection's threshold, best first.
#[utoipa::path(post, path = "/v1/collections/{collection}/sightings/search", tag = "collections",
    params(("collection" = CollectionId, Path), SightingSearchQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One photo (the largest face is searched)"),
    responses((status = 200, description = "The sightings of that face", body = SightingSearch)),
    security(("api_key" = [])))]
pub async fn search_sightings(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<SightingSearchQuery>,
    request: Request,
) -> Result<Json<SightingSearch>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_SIGHTING_MATCHES).contains(&limit) {
        return Err(ApiError::invalid(format!("`limit` must be between 1 and {MAX_SIGHTING_MATCHES}")));
    }
    let image = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let found = state.gallery.search_sightings(&caller.actor(), &collection_id, image, query.fmr, limit).await?;
    Ok(Json(found))
}

/// The groups of unknown faces ("unknown #12: 5 sightings, cameras A and B"), the latest seen first.
#[utoipa::path(get, path = "/v1/collections/{collection}/clusters", tag = "collections",
    params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "Groups of unknown faces", body = ClusterList)),
    security(("api_key" = [])))]
pub async fn clusters(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
) -> Result<Json<ClusterList>, ApiError> {
    caller.require(Scope::Admin)?;
    let (clusters, truncated) = state.gallery.clusters(&caller.actor(), &collection_id).await?;
    Ok(Json(ClusterList { clusters, truncated }))
}

/// Names a group of unknown faces: its latest best shots enrol an existing subject (`subject_id`) or a
/// new one (`name`) through the quality gate, and its sightings become that person's.
#[utoipa::path(post, path = "/v1/collections/{collection}/clusters/{cluster}/name", tag = "collections",
    params(("collection" = CollectionId, Path), ("cluster" = u64, Path, description = "The group's id")),
    request_body = ClusterName,
    responses((status = 200, description = "Named", body = NamedClusterAnswer)),
    security(("api_key" = [])))]
pub async fn name_cluster(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, cluster_id)): Path<(CollectionId, u64)>,
    Json(who): Json<ClusterName>,
) -> Result<Json<NamedClusterAnswer>, ApiError> {
    caller.require(Scope::Admin)?;
    let named = state.gallery.name_cluster(&caller.actor(), &collection_id, cluster_id, &who).await?;
    let enrolment = enrolment_parts(named.enrolment);
    Ok(Json(NamedClusterAnswer {
        subject: named.subject,
        sightings: named.sightings,
        accepted: enrolment.accepted,
        rejected: enrolment.rejected,
    }))
}
