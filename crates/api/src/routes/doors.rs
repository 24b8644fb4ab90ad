//! Doors (access points), their attempts, and the attendance sheet their decisions make. The rules
//! (order of checks, schedule, anti-passback, audit) are the gallery's; these handlers parse, call and
//! render.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use facegate_gallery::MAX_DOOR_FRAMES;
use facegate_store::{CollectionId, Door, DoorId, NewDoor, Scope, SubjectId};
use serde::Deserialize;

use crate::auth::Caller;
use crate::contract::{AttendanceResponse, DoorAttemptResponse, DoorBody, DoorList, DoorSubject, PresenceReset};

/// Scopes that may read doors: administrators, and the kiosks that make attempts at them (`search`).
/// Creating, replacing and deleting a door, and resetting its presence, is administration: an `enroll`
/// key manages people, not who may pass.
const DOOR_READERS: [Scope; 2] = [Scope::Search, Scope::Admin];
use crate::images::{Pool, read_images};
use crate::{ApiError, AppState, ErrorCode, JsonObject};

/// A door body checked for what the API decides (its name); the gallery checks the rest.
fn door_body(body: DoorBody) -> Result<NewDoor, ApiError> {
    let name = crate::contract::display_name(&body.name)?;
    Ok(NewDoor {
        collection_id: body.collection_id,
        name,
        policy: body.policy,
        created_at_ms: 0, // the gallery times it
    })
}

/// Creates a door on a collection.
#[utoipa::path(post, path = "/v1/doors", tag = "doors", request_body = DoorBody,
    responses((status = 201, description = "Created", body = Door)), security(("api_key" = [])))]
pub async fn create_door(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject<DoorBody>,
) -> Result<(StatusCode, Json<Door>), ApiError> {
    caller.require(Scope::Admin)?;
    let new = door_body(body)?;
    Ok((StatusCode::CREATED, Json(state.gallery.create_door(&caller.actor(), &new).await?)))
}

/// The tenant's doors.
#[utoipa::path(get, path = "/v1/doors", tag = "doors",
    responses((status = 200, description = "Doors", body = DoorList)), security(("api_key" = [])))]
pub async fn list_doors(State(state): State<AppState>, caller: Caller) -> Result<Json<DoorList>, ApiError> {
    caller.require_any(&DOOR_READERS)?;
    Ok(Json(DoorList { doors: state.gallery.doors(&caller.actor()).await? }))
}

/// One door.
#[utoipa::path(get, path = "/v1/doors/{door}", tag = "doors", params(("door" = DoorId, Path)),
    responses((status = 200, description = "The door", body = Door)), security(("api_key" = [])))]
pub async fn get_door(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
) -> Result<Json<Door>, ApiError> {
    caller.require_any(&DOOR_READERS)?;
    Ok(Json(state.gallery.door(&caller.actor(), &door).await?))
}

/// Replaces a door's name, collection and policy.
#[utoipa::path(put, path = "/v1/doors/{door}", tag = "doors", params(("door" = DoorId, Path)), request_body = DoorBody,
    responses((status = 200, description = "Replaced", body = Door)), security(("api_key" = [])))]
pub async fn replace_door(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
    JsonObject(body): JsonObject<DoorBody>,
) -> Result<Json<Door>, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.door(&caller.actor(), &door).await?;
    let new = door_body(body)?;
    Ok(Json(state.gallery.replace_door(&caller.actor(), &door, &new).await?))
}

/// Deletes a door; its decisions stay in the audit trail.
#[utoipa::path(delete, path = "/v1/doors/{door}", tag = "doors", params(("door" = DoorId, Path)),
    responses((status = 204, description = "Deleted")), security(("api_key" = [])))]
pub async fn delete_door(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.delete_door(&caller.actor(), &door).await?;
    state.readers.close(&door);
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets anti-passback presence at the door and its paired door, for everyone (e.g. at midnight):
/// anyone recorded inside may pass again. An audited change.
#[utoipa::path(delete, path = "/v1/doors/{door}/presence", tag = "doors", params(("door" = DoorId, Path)),
    responses((status = 200, description = "Reset", body = PresenceReset)), security(("api_key" = [])))]
pub async fn reset_presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
) -> Result<Json<PresenceReset>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(PresenceReset { reset: state.gallery.reset_presence(&caller.actor(), &door, None).await? }))
}

/// Forgets one person's anti-passback presence at the door and its paired door (someone let out
/// another way). An audited change.
#[utoipa::path(delete, path = "/v1/doors/{door}/presence/{subject}", tag = "doors", params(("door" = DoorId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "Reset", body = PresenceReset)), security(("api_key" = [])))]
pub async fn reset_subject_presence(
    State(state): State<AppState>,
    caller: Caller,
    Path((door, subject)): Path<(DoorId, SubjectId)>,
) -> Result<Json<PresenceReset>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(PresenceReset { reset: state.gallery.reset_presence(&caller.actor(), &door, Some(&subject)).await? }))
}

/// A door attempt: 1 to 5 frames of the person at the door (a camera's burst). The answer is `granted`
/// or `denied` with a reason (`no_face`, `multiple_faces`, `low_quality`, `not_live`, `unknown_person`,
/// `not_allowed`, `outside_schedule`, `anti_passback`), recorded in the collection's audit trail.
#[utoipa::path(post, path = "/v1/doors/{door}/attempts", tag = "doors", params(("door" = DoorId, Path)),
    request_body(content((crate::contract::ImagesUpload = "multipart/form-data"), (crate::contract::ImagesJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "1 to 5 frames: multipart files, JSON base64 `images`, or one raw image"),
    responses((status = 200, description = "The decision", body = DoorAttemptResponse)), security(("api_key" = [])))]
pub async fn attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path(door_id): Path<DoorId>,
    request: Request,
) -> Result<Json<DoorAttemptResponse>, ApiError> {
    caller.require(Scope::Search)?;
    let frames = read_images(request, &state, &caller, Pool::Doors).await?.images;
    if frames.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingImage, "the request carries no frame"));
    }
    if frames.len() > MAX_DOOR_FRAMES {
        return Err(ApiError::invalid(format!("at most {MAX_DOOR_FRAMES} frames per attempt")));
    }
    let decision = state.gallery.door_attempt(&caller.actor(), &door_id, frames).await?;
    Ok(Json(DoorAttemptResponse {
        door_id,
        access: decision.access,
        reason: decision.reason,
        subject: decision.subject.map(|s| DoorSubject { id: s.id, name: s.name }),
        score: decision.score,
        threshold: decision.threshold,
        target_fmr: decision.target_fmr,
        liveness: decision.liveness,
        liveness_threshold: decision.liveness_threshold,
        frames: decision.frames,
        frames_used: decision.frames_used,
        at_ms: decision.at_ms,
        panel: decision.panel,
        panel_ms: decision.panel_ms,
        panel_text: decision.panel_text,
    }))
}

/// Query of the attendance sheet.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
    /// First day, `YYYY-MM-DD`.
    #[param(example = "2026-11-30")]
    pub from: String,
    /// Last day, included (a period of at most 366 days).
    #[param(example = "2026-12-04")]
    pub to: String,
    /// IANA time zone days are counted in (default `UTC`).
    #[param(example = "Europe/Paris")]
    pub tz: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    #[param(inline)]
    pub format: Option<SheetFormat>,
}

/// How an attendance sheet is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SheetFormat {
    /// `application/json`.
    Json,
    /// `text/csv`.
    Csv,
}

/// Who came in and when: per person and day, first and last door passage, the doors, the count.
#[utoipa::path(get, path = "/v1/collections/{collection}/attendance", tag = "doors", params(("collection" = CollectionId, Path), AttendanceQuery),
    responses((status = 200, description = "The sheet", content((AttendanceResponse = "application/json"), (String = "text/csv")))), security(("api_key" = [])))]
pub async fn attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<CollectionId>,
    Query(query): Query<AttendanceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Scope::Admin)?;
    let day = |text: &str, name: &str| {
        text.parse::<jiff::civil::Date>().map_err(|_| ApiError::invalid(format!("`{name}` must be YYYY-MM-DD")))
    };
    let (from, to) = (day(&query.from, "from")?, day(&query.to, "to")?);
    let timezone = query.tz.unwrap_or_else(|| "UTC".into());
    let zone = facegate_gallery::time_zone(&timezone).map_err(|e| ApiError::invalid(e.to_string()))?;
    let days = state.gallery.attendance(&caller.actor(), &collection, from, to, &zone).await?;
    let accepts_csv = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/csv"));
    let sheet =
        AttendanceResponse { collection_id: collection, from: from.to_string(), to: to.to_string(), timezone, days };
    match query.format {
        Some(SheetFormat::Csv) => Ok(csv_response(&sheet)),
        None if accepts_csv => Ok(csv_response(&sheet)),
        _ => Ok(Json(sheet).into_response()),
    }
}

/// The sheet as CSV (see [`facegate_gallery::attendance_csv`]).
fn csv_response(sheet: &AttendanceResponse) -> Response {
    match facegate_gallery::attendance_csv(&sheet.days) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}
