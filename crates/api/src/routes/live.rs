//! What happens as it happens, as Server-Sent Events (admin: it tells where people are). The cameras'
//! stream: each event one `facegate watch --json` object, its `type` the SSE event name; only this
//! process's cameras are heard, and a listener that falls behind is told how many events it lost. A
//! collection's audit trail: every decision as it is stored, whichever process made it, from a position
//! on (the console's events screen).

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use facegate_gallery::GalleryError;
use facegate_store::{AuditEvent, CollectionId, Scope};
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

/// Where a collection's audit stream starts.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditStreamQuery {
    /// After this position in the trail (a page's `next_after`, an event's `seq`); without it, and
    /// without a `Last-Event-ID` header (what a browser sends when it reconnects), from the start.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// How often an audit stream that has caught up looks for new events in the store (which any process
/// may write: the stream follows the store, not this process).
const AUDIT_TAIL_EVERY: Duration = Duration::from_secs(1);

/// Events read from the store at a time.
const AUDIT_PAGE: u32 = 200;

/// What an audit stream holds between two events.
struct AuditTail {
    state: AppState,
    actor: facegate_gallery::Actor,
    collection_id: CollectionId,
    after: Option<i64>,
    pending: VecDeque<AuditEvent>,
}

/// A collection's audit trail as it grows (`text/event-stream`): every stored event after `after` in
/// order, then each new one within about a second of being stored, as `audit` events whose SSE id is
/// the event's `seq` (a reconnecting browser resumes where it was). 404 for a missing collection.
#[utoipa::path(get, path = "/v1/collections/{collection}/events/stream", tag = "collections",
    params(("collection" = CollectionId, Path), AuditStreamQuery),
    responses((status = 200, description = "An endless stream of audit events", content_type = "text/event-stream", body = String)),
    security(("api_key" = [])))]
pub async fn audit_stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    headers: HeaderMap,
    Query(query): Query<AuditStreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    caller.require(Scope::Admin)?;
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let after = query.after.or(resumed);
    let actor = caller.actor();
    // The first page now: a missing collection is a 404, not an empty stream.
    let first = state.gallery.events(&actor, &collection_id, None, after, AUDIT_PAGE).await?;
    let tail = AuditTail { state, actor, collection_id, after, pending: first.into() };
    let events = futures::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(event) = tail.pending.pop_front() {
                tail.after = Some(event.seq);
                let sse = Event::default().event("audit").id(event.seq.to_string()).json_data(&event);
                let sse = sse.unwrap_or_else(|_| Event::default().comment("an event could not be written"));
                return Some((Ok(sse), tail));
            }
            let read = tail.state.gallery.events(&tail.actor, &tail.collection_id, None, tail.after, AUDIT_PAGE).await;
            match read {
                Ok(events) if !events.is_empty() => tail.pending = events.into(),
                Ok(_) => tokio::time::sleep(AUDIT_TAIL_EVERY).await,
                // The collection was deleted: the stream ends.
                Err(GalleryError::NotFound(_)) => return None,
                Err(error) => {
                    tracing::warn!(%error, "an audit stream cannot read the trail; trying again");
                    tokio::time::sleep(AUDIT_TAIL_EVERY).await;
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
