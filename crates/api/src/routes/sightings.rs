//! Sightings: who (or which unknown face) a camera saw, where and when (admin: they tell where people
//! were). One per video track that was decided (`facegate watch`).

use axum::Json;
use axum::extract::{Path, Query, State};
use facegate_gallery::DEFAULT_PRESENCE_WINDOW_S;
use facegate_store::{CollectionId, Scope, SightingDecision, SightingFilter, SubjectId};
use serde::Deserialize;

use super::common::event_limit;
use crate::auth::Caller;
use crate::contract::{PresenceList, SightingPage};
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
        from_ms: query.from,
        until_ms: query.until,
        after_seq: query.after,
        limit: event_limit(query.limit)?,
    })
}
