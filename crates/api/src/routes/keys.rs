//! API keys of the caller's tenant (admin): create (the secret shown once), list, revoke. The first
//! admin key of a deployment comes from the host (`facegate keys create`, or the bootstrap key).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use facegate_store::{KeyId, Scope};

use crate::auth::Caller;
use crate::contract::{CreatedKey, KeyBody, KeyInfo, KeyList, display_name};
use crate::{ApiError, AppState, JsonObject};

/// Creates a key of the caller's tenant; the answer carries its secret, shown only this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = KeyBody,
    responses((status = 201, description = "Created, with its secret", body = CreatedKey)), security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject<KeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Scope::Admin)?;
    let name = display_name(&body.name)?;
    let (record, secret) =
        state.gallery.keys().create(&caller.actor(), &name, &body.scopes, None, state.gallery.now()).await?;
    tracing::info!(key_id = %record.id.as_str(), "API key created");
    Ok((StatusCode::CREATED, Json(CreatedKey { key: KeyInfo::from(&record), secret })))
}

/// The tenant's keys, revoked ones included (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "The keys", body = KeyList)), security(("api_key" = [])))]
pub async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<Json<KeyList>, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = state.gallery.keys().list(Some(caller.tenant())).await?;
    Ok(Json(KeyList { keys: keys.iter().map(KeyInfo::from).collect() }))
}

/// The key making the request: what it may do (any key may ask).
#[utoipa::path(get, path = "/v1/keys/current", tag = "keys",
    responses((status = 200, description = "The caller's key", body = KeyInfo)), security(("api_key" = [])))]
pub async fn current_key(caller: Caller) -> Json<KeyInfo> {
    Json(KeyInfo::from(&caller.key))
}

/// Revokes a key of the tenant: it fails every later request.
#[utoipa::path(delete, path = "/v1/keys/{key}", tag = "keys", params(("key" = KeyId, Path)),
    responses((status = 204, description = "Revoked")), security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<KeyId>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.keys().revoke(&caller.actor(), &key_id, state.gallery.now()).await?;
    tracing::info!(key_id = %key_id.as_str(), "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
