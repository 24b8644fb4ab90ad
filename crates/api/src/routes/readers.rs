//! Door readers (a door's OSDP output to its access panel) and the cards subjects carry. The rules are
//! the gallery's (`readers.rs`); the link to the panel is the integrations room's [`PanelHub`], which
//! this server runs.
//!
//! [`PanelHub`]: facegate_integrations::PanelHub

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use facegate_gallery::{DoorReader, GalleryError, Missing, ReaderSpec};
use facegate_store::{CollectionId, DoorId, Scope, SubjectId};

use crate::auth::Caller;
use crate::contract::{CredentialList, ReaderState};
use crate::{ApiError, AppState, JsonObject};

/// Runs every door reader in the store in this server, and keeps the keys their panels set in install
/// mode (sealed in the store, so the next start uses them; the reader uses a new key at once).
///
/// # Errors
/// Store and crypto failures reading the readers.
pub async fn start_readers(state: &AppState) -> Result<(), GalleryError> {
    if let Some(mut rotated) = state.readers.rotated_keys() {
        let gallery = state.gallery.clone();
        tokio::spawn(async move {
            while let Some(rotated) = rotated.recv().await {
                match gallery.keep_panel_key(&rotated.tenant_id, &rotated.door_id, &rotated.key).await {
                    Ok(()) => tracing::info!(door = %rotated.door_id, "the panel set the reader's key: kept"),
                    Err(error) => tracing::error!(
                        door = %rotated.door_id, %error,
                        "the key the panel set was not kept: the reader uses it until this server stops"
                    ),
                }
            }
        });
    }
    state.readers.open_all(state.gallery.readers_to_run().await?);
    Ok(())
}

fn with_link(state: &AppState, reader: DoorReader) -> ReaderState {
    let link = state.readers.status(&reader.door_id).unwrap_or_default();
    ReaderState { reader, link }
}

/// A door's reader (no key) and its link to the panel.
#[utoipa::path(get, path = "/v1/doors/{door}/reader", tag = "doors", params(("door" = DoorId, Path)),
    responses((status = 200, description = "The reader and its link", body = ReaderState)), security(("api_key" = [])))]
pub async fn get_reader(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
) -> Result<Json<ReaderState>, ApiError> {
    caller.require(Scope::Admin)?;
    let reader = state.gallery.reader(&caller.actor(), &door).await?.ok_or(GalleryError::NotFound(Missing::Reader))?;
    Ok(Json(with_link(&state, reader)))
}

/// Sets or replaces a door's reader: the door's grants then go to its access panel as card reads, and
/// the panel's verdict is the answer. The key is write-only (kept when left out on a replacement).
#[utoipa::path(put, path = "/v1/doors/{door}/reader", tag = "doors", params(("door" = DoorId, Path)), request_body = ReaderSpec,
    responses((status = 200, description = "The reader and its link", body = ReaderState)), security(("api_key" = [])))]
pub async fn put_reader(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
    JsonObject(spec): JsonObject<ReaderSpec>,
) -> Result<Json<ReaderState>, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = caller.actor();
    let reader = state.gallery.set_reader(&actor, &door, spec).await?;
    if let Some(run) = state.gallery.reader_to_run(&actor, &door).await? {
        state.readers.open(run);
    }
    Ok(Json(with_link(&state, reader)))
}

/// Removes a door's reader; the door decides alone again.
#[utoipa::path(delete, path = "/v1/doors/{door}/reader", tag = "doors", params(("door" = DoorId, Path)),
    responses((status = 204, description = "Removed")), security(("api_key" = [])))]
pub async fn delete_reader(
    State(state): State<AppState>,
    caller: Caller,
    Path(door): Path<DoorId>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.remove_reader(&caller.actor(), &door).await?;
    state.readers.close(&door);
    Ok(StatusCode::NO_CONTENT)
}

/// A subject's cards, one per door system.
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}/credentials", tag = "subjects",
    params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "The cards", body = CredentialList)), security(("api_key" = [])))]
pub async fn get_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
) -> Result<Json<CredentialList>, ApiError> {
    caller.require(Scope::Admin)?;
    let credentials = state.gallery.credentials(&caller.actor(), &collection, &subject).await?;
    Ok(Json(CredentialList { credentials }))
}

/// Replaces a subject's cards (an empty list removes them): what a door's panel is shown when facegate
/// would let the person in.
#[utoipa::path(put, path = "/v1/collections/{collection}/subjects/{subject}/credentials", tag = "subjects",
    params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)), request_body = CredentialList,
    responses((status = 200, description = "The cards", body = CredentialList)), security(("api_key" = [])))]
pub async fn put_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
    JsonObject(body): JsonObject<CredentialList>,
) -> Result<Json<CredentialList>, ApiError> {
    caller.require(Scope::Admin)?;
    let credentials = state.gallery.set_credentials(&caller.actor(), &collection, &subject, body.credentials).await?;
    Ok(Json(CredentialList { credentials }))
}
