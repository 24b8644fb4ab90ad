//! Events out: webhooks and the transactional outbox. A backend's `insert_events` (every audit event
//! goes through it, inside the transaction of the change it records) also writes one outbox row per
//! webhook of the tenant subscribed to the event's type (`EventType::of`, with its body
//! `WebhookBody::of`, both in `audit.rs`), so an event is queued exactly when its change commits, and
//! never otherwise. The rows are delivered at least once by the gallery's dispatcher, each
//! always under the same message id.

use serde::{Deserialize, Serialize};

use crate::records::EncryptedTemplate;
use crate::{TenantId, WebhookId};

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A door granted or denied access.
    #[serde(rename = "door.decision")]
    DoorDecision,
    /// A recognition, search or verification decided who someone is (or that they are unknown).
    #[serde(rename = "identity.decision")]
    IdentityDecision,
    /// Faces were enrolled for a subject.
    #[serde(rename = "subject.enrolled")]
    SubjectEnrolled,
    /// A subject or one of its faces was erased (on request or at consent expiry).
    #[serde(rename = "subject.erased")]
    SubjectErased,
    /// A camera's face track was named (once per track, within the camera's cool-down).
    #[serde(rename = "identity.sighted")]
    IdentitySighted,
    /// A camera's face track matched nobody enrolled (once per track), with its group of unknown faces.
    #[serde(rename = "identity.unknown")]
    IdentityUnknown,
    /// A camera's face track started (a face appeared).
    #[serde(rename = "face.track.started")]
    FaceTrackStarted,
    /// A camera's face track ended, with its first and last sighting and its decision.
    #[serde(rename = "face.track.ended")]
    FaceTrackEnded,
}

impl crate::WireName for EventType {
    const ALL: &'static [EventType] = &[
        EventType::DoorDecision,
        EventType::IdentityDecision,
        EventType::SubjectEnrolled,
        EventType::SubjectErased,
        EventType::IdentitySighted,
        EventType::IdentityUnknown,
        EventType::FaceTrackStarted,
        EventType::FaceTrackEnded,
    ];
}

/// An event to queue for the tenant's webhooks subscribed to its type, with its body already made.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    /// Its type.
    pub event_type: EventType,
    /// The collection it concerns.
    pub collection_id: crate::CollectionId,
    /// The subject it names (its queued rows go with the subject's erasure).
    pub subject_id: Option<crate::SubjectId>,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
    /// The JSON body.
    pub payload: String,
}

impl OutboundEvent {
    /// The outbound events of audit events (those a webhook can subscribe to), with their bodies.
    pub fn of_audit(tenant_id: &TenantId, events: &[crate::NewEvent]) -> Vec<OutboundEvent> {
        events
            .iter()
            .filter_map(|event| {
                let event_type = EventType::of(event)?;
                Some(OutboundEvent {
                    event_type,
                    collection_id: event.collection_id.clone(),
                    subject_id: event.subject_id.clone(),
                    at_ms: event.at_ms,
                    payload: crate::WebhookBody::of(tenant_id, event_type, event).to_json(),
                })
            })
            .collect()
    }
}

/// A webhook to store: its secret sealed by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewWebhook {
    /// Identifier, chosen by the caller (it is bound into the secret's encryption).
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The types it receives.
    pub event_types: Vec<EventType>,
    /// The signing secret, sealed.
    pub secret: EncryptedTemplate,
    /// When.
    pub created_at_ms: i64,
}

/// A webhook, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    /// Identifier.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The types it receives.
    pub event_types: Vec<EventType>,
    /// When.
    pub created_at_ms: i64,
}

/// Where one outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_attempt_at_ms`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl crate::WireName for DeliveryState {
    const ALL: &'static [DeliveryState] = &[DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed];
}

/// One event for one webhook: the delivery log's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Position in the outbox.
    pub seq: i64,
    /// The message id (`webhook-id`), the same on every attempt.
    pub message_id: String,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The event's type.
    pub event_type: EventType,
    /// When the event was queued (its change committed).
    pub created_at_ms: i64,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// The next attempt, while pending.
    pub next_attempt_at_ms: Option<i64>,
    /// The receiver's status code of the last attempt.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at_ms: Option<i64>,
}

/// A pending delivery that is due, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    /// The log row.
    pub delivery: Delivery,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Where to POST.
    pub url: String,
    /// The webhook's sealed secret.
    pub secret: EncryptedTemplate,
    /// The JSON body.
    pub payload: String,
}

/// Which due deliveries to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueQuery {
    /// Due at this time, ms since the epoch.
    pub now_ms: i64,
    /// At most this many rows.
    pub limit: u32,
    /// At most this many rows of each webhook (oldest first), so one receiver's backlog cannot fill a
    /// fetch.
    pub per_webhook: u32,
    /// Webhooks left out (busy or backing off).
    pub skip: Vec<WebhookId>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The outbox row.
    pub seq: i64,
    /// When the attempt ended.
    pub at_ms: i64,
    /// The new state.
    pub state: DeliveryState,
    /// The next attempt, when still pending.
    pub next_attempt_at_ms: Option<i64>,
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}
