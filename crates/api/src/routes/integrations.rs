//! Integrations: the tenant's MQTT broker (settings, and how its link stands in this process). The
//! settings' rules are the gallery's; the link is the integrations room's, driven by [`crate::delivery`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use facegate_gallery::{GalleryError, Missing, MqttIntegration, MqttSettings};
use facegate_store::Scope;

use crate::auth::Caller;
use crate::contract::MqttState;
use crate::{ApiError, AppState, JsonObject};

fn with_link(state: &AppState, integration: MqttIntegration) -> MqttState {
    let link = state.deliveries.mqtt.status(&integration.id).unwrap_or_default();
    MqttState { integration, link }
}

/// The tenant's MQTT broker settings (no password) and its link's state.
#[utoipa::path(get, path = "/v1/integrations/mqtt", tag = "integrations",
    responses((status = 200, description = "The settings and the link", body = MqttState)), security(("api_key" = [])))]
pub async fn get_mqtt(State(state): State<AppState>, caller: Caller) -> Result<Json<MqttState>, ApiError> {
    caller.require(Scope::Admin)?;
    let integration = state.gallery.mqtt(&caller.actor()).await?.ok_or(GalleryError::NotFound(Missing::Mqtt))?;
    Ok(Json(with_link(&state, integration)))
}

/// Configures the tenant's MQTT broker or replaces its settings (a password left out stays); in effect
/// from the next event, without a restart.
#[utoipa::path(put, path = "/v1/integrations/mqtt", tag = "integrations", request_body = MqttSettings,
    responses((status = 200, description = "The settings and the link", body = MqttState)), security(("api_key" = [])))]
pub async fn put_mqtt(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(settings): JsonObject<MqttSettings>,
) -> Result<Json<MqttState>, ApiError> {
    caller.require(Scope::Admin)?;
    let actor = caller.actor();
    let (id, config) = state.gallery.configure_mqtt(&actor, settings).await?;
    state.deliveries.mqtt.open(&actor.tenant_id, &id, &config);
    Ok(Json(with_link(&state, config.view(id))))
}

/// Removes the tenant's MQTT broker and the events not yet published to it.
#[utoipa::path(delete, path = "/v1/integrations/mqtt", tag = "integrations",
    responses((status = 204, description = "Removed")), security(("api_key" = [])))]
pub async fn delete_mqtt(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    let id = state.gallery.remove_mqtt(&caller.actor()).await?;
    state.deliveries.mqtt.close(&id);
    Ok(StatusCode::NO_CONTENT)
}
