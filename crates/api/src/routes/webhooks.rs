//! Webhooks: subscriptions to the tenant's events and their delivery log. Signing, retries and the
//! outbox are the gallery's; delivery runs in [`crate::delivery`].

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use facegate_store::{Scope, WebhookId};

use super::common::{PageQuery, event_limit};
use crate::auth::Caller;
use crate::contract::{CreatedWebhook, DeliveryPage, WebhookBody, WebhookList};
use crate::{ApiError, AppState, JsonObject};

/// Subscribes a URL to event types; the answer carries the signing secret, shown only this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookBody,
    responses((status = 201, description = "Created, with its secret", body = CreatedWebhook)), security(("api_key" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject<WebhookBody>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require(Scope::Admin)?;
    let (webhook, secret) = state.gallery.create_webhook(&caller.actor(), &body.url, body.event_types).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook, secret })))
}

/// The tenant's webhooks (no secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Webhooks", body = WebhookList)), security(("api_key" = [])))]
pub async fn list_webhooks(State(state): State<AppState>, caller: Caller) -> Result<Json<WebhookList>, ApiError> {
    caller.require(Scope::Admin)?;
    Ok(Json(WebhookList { webhooks: state.gallery.webhooks(&caller.actor()).await? }))
}

/// Deletes a webhook and its undelivered events.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = WebhookId, Path)),
    responses((status = 204, description = "Deleted")), security(("api_key" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<WebhookId>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Admin)?;
    state.gallery.delete_webhook(&caller.actor(), &webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery log: every event queued for it, its state, attempts and last answer.
#[utoipa::path(get, path = "/v1/webhooks/{webhook}/deliveries", tag = "webhooks", params(("webhook" = WebhookId, Path), PageQuery),
    responses((status = 200, description = "The log", body = DeliveryPage)), security(("api_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook): Path<WebhookId>,
    Query(query): Query<PageQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = event_limit(query.limit)?;
    let deliveries = state.gallery.deliveries(&caller.actor(), &webhook, query.after, limit).await?;
    let next_after = deliveries.last().map(|d| d.seq);
    Ok(Json(DeliveryPage { deliveries, next_after }))
}
