//! What the server's cameras see as it happens, as Server-Sent Events (admin: it tells where people
//! are). Each event is one `facegate watch --json` object, its `type` the SSE event name. Only this
//! process's cameras are heard; a listener that falls behind is told how many events it lost.

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use facegate_store::Scope;
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Which events.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Only this camera's (its name).
    pub camera: Option<String>,
}

/// The tenant's camera events as they happen (`text/event-stream`): `face.track.started`,
/// `identity.sighted`, `identity.unknown`, `face.track.ended`, each the watch's JSON object.
#[utoipa::path(get, path = "/v1/events/stream", tag = "monitoring", params(StreamQuery),
    responses((status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String)),
    security(("api_key" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    caller.require(Scope::Admin)?;
    let tenant = caller.key.tenant_id.clone();
    let events = futures::stream::unfold(state.live.subscribe(), move |mut receiver| {
        let (tenant, camera) = (tenant.clone(), query.camera.clone());
        async move {
            loop {
                match receiver.recv().await {
                    Ok(item) => {
                        let (owner, event) = &*item;
                        if *owner != tenant || camera.as_ref().is_some_and(|c| *c != event.camera) {
                            continue;
                        }
                        let kind = serde_json::to_value(event.kind).ok();
                        let name = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("event").to_string();
                        let Ok(sse) = Event::default().event(name).json_data(event) else { continue };
                        return Some((Ok(sse), receiver));
                    }
                    Err(RecvError::Lagged(lost)) => {
                        return Some((Ok(Event::default().comment(format!("{lost} events lost"))), receiver));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
