//! Cameras: video sources `facegate serve` watches, each naming faces from one collection. Their URLs'
//! credentials are sealed and never returned; watching is the video crate's, rules are the gallery's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use facegate_gallery::CameraSpec;
use facegate_store::{Camera, CameraId, Scope};

use crate::auth::Caller;
use crate::contract::{CameraBody, CameraList};
use crate::{ApiError, AppState, JsonObject};

/// A camera body checked for what the API decides (its name); the gallery checks the rest.
fn camera_spec(body: CameraBody) -> Result<CameraSpec, ApiError> {
    Ok(CameraSpec {
        collection_id: body.collection_id,
        name: crate::contract::display_name(&body.name)?,
        source_url: body.source_url,
        settings: body.settings,
    })
}

/// Adds a camera; a server that runs cameras starts watching it (when enabled) within seconds.
#[utoipa::path(post, path = "/v1/cameras", tag = "cameras", request_body = CameraBody,
    responses((status = 201, description = "Created (no credentials)", body = Camera)), security(("api_key" = [])))]
pub async fn create_camera(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject<CameraBody>,
) -> Result<(StatusCode, Json<Camera>), ApiError> {
    caller.require(Scope::Admin)?;
    let spec = camera_spec(body)?;
    Ok((StatusCode::CREATED, Json(state.gallery.create_camera(&caller.actor(), &spec).await?)))
}

/// The tenant's cameras (no credentials).
#[utoipa::path(get, path = "/v1/cameras", tag = "cameras",
    responses((status = 200, description = "Cameras", body = CameraList)), security(("api_key" = [])))]
pub async fn list_cameras(State(state): State<AppState>, caller: Caller) -> Result<Json<CameraList>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(CameraList { cameras: state.gallery.cameras(&caller.actor()).await? }))
}

/// One camera (no credentials).
#[utoipa::path(get, path = "/v1/cameras/{camera}", tag = "cameras", params(("camera" = CameraId, Path)),
    responses((status = 200, description = "The camera", body = Camera)), security(("api_key" = [])))]
pub async fn get_camera(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera): Path<CameraId>,
) -> Result<Json<Camera>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(state.gallery.camera(&caller.actor(), &camera).await?))
}

/// Replaces a camera's name, collection and settings (and its source when `source_url` is given).
#[utoipa::path(put, path = "/v1/cameras/{camera}", tag = "cameras", params(("camera" = CameraId, Path)),
    request_body = CameraBody, responses((status = 200, description = "Replaced", body = Camera)),
    security(("api_key" = [])))]
pub async fn replace_camera(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera): Path<CameraId>,
    JsonObject(body): JsonObject<CameraBody>,
) -> Result<Json<Camera>, ApiError> {
    caller.require(Scope::Admin)?;
    let spec = camera_spec(body)?;
    Ok(Json(state.gallery.replace_camera(&caller.actor(), &camera, &spec).await?))
}

/// Deletes a camera (a server watching it stops); its sightings stay until their retention ends.
#[utoipa::path(delete, path = "/v1/cameras/{camera}", tag = "cameras", params(("camera" = CameraId, Path)),
    responses((status = 204, description = "Deleted")), security(("api_key" = [])))]
pub async fn delete_camera(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera): Path<CameraId>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.delete_camera(&caller.actor(), &camera).await?;
    Ok(StatusCode::NO_CONTENT)
}
