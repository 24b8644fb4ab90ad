//! The tenant's configuration trail: who changed keys, webhooks, doors and collection settings, when,
//! and what changed (admin).

use axum::Json;
use axum::extract::{Query, State};
use facegate_store::Scope;

use super::common::{PageQuery, event_limit};
use crate::auth::Caller;
use crate::contract::ChangePage;
use crate::{ApiError, AppState};

/// The tenant's configuration changes in order (keys created and revoked, webhooks, doors, collection
/// settings, presence resets), each naming the key that made it and what changed, after the cursor
/// `after`.
#[utoipa::path(get, path = "/v1/changes", tag = "keys", params(PageQuery),
    responses((status = 200, description = "Changes", body = ChangePage)), security(("api_key" = [])))]
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<ChangePage>, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = event_limit(query.limit)?;
    let changes = state.gallery.changes(&caller.actor(), query.after, limit).await?;
    let next_after = changes.last().map(|c| c.seq);
    Ok(Json(ChangePage { changes, next_after }))
}
