//! Sightings: who (or which unknown face) a camera saw, where and when (admin: they tell where people
//! were). One per video track that was decided (`facegate watch`).

use axum::Json;
use axum::extract::{Path, Query, State};
use facegate_store::{CollectionId, Scope, SightingDecision, SightingFilter, SubjectId};
use serde::Deserialize;

use super::common::event_limit;
use crate::auth::Caller;
use crate::contract::SightingPage;
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
