//! The configuration audit trail: every change to who may do what (keys, webhooks, doors, collection
//! settings, presence resets) is recorded per tenant, in the transaction of the change, naming the acting
//! key, the object and what changed (never a secret).

use serde::{Deserialize, Serialize};

use crate::{KeyId, RequestId};

/// What a configuration change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ChangeAction {
    /// An API key was created.
    #[serde(rename = "key.created")]
    KeyCreated,
    /// An API key was revoked.
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    /// A webhook was registered.
    #[serde(rename = "webhook.created")]
    WebhookCreated,
    /// A webhook was deleted.
    #[serde(rename = "webhook.deleted")]
    WebhookDeleted,
    /// A door was created.
    #[serde(rename = "door.created")]
    DoorCreated,
    /// A door's name, collection or policy was replaced.
    #[serde(rename = "door.replaced")]
    DoorReplaced,
    /// A door was deleted.
    #[serde(rename = "door.deleted")]
    DoorDeleted,
    /// A camera was created.
    #[serde(rename = "camera.created")]
    CameraCreated,
    /// A camera's source, collection or settings were replaced.
    #[serde(rename = "camera.replaced")]
    CameraReplaced,
    /// A camera was deleted.
    #[serde(rename = "camera.deleted")]
    CameraDeleted,
    /// A collection was created.
    #[serde(rename = "collection.created")]
    CollectionCreated,
    /// A collection's settings (retention, liveness) changed.
    #[serde(rename = "collection.updated")]
    CollectionUpdated,
    /// A collection was deleted with everything in it.
    #[serde(rename = "collection.deleted")]
    CollectionDeleted,
    /// Anti-passback presence was reset at a door (one person or everyone).
    #[serde(rename = "presence.reset")]
    PresenceReset,
    /// An integration (the MQTT broker) was configured or its settings replaced.
    #[serde(rename = "integration.configured")]
    IntegrationConfigured,
    /// An integration was removed.
    #[serde(rename = "integration.removed")]
    IntegrationRemoved,
    /// A door's reader (its OSDP output) was set or replaced.
    #[serde(rename = "reader.set")]
    ReaderSet,
    /// A door's reader was removed.
    #[serde(rename = "reader.removed")]
    ReaderRemoved,
    /// A subject's card credentials were replaced.
    #[serde(rename = "credentials.set")]
    CredentialsSet,
}

impl crate::WireName for ChangeAction {
    const ALL: &'static [ChangeAction] = &[
        ChangeAction::KeyCreated,
        ChangeAction::KeyRevoked,
        ChangeAction::WebhookCreated,
        ChangeAction::WebhookDeleted,
        ChangeAction::DoorCreated,
        ChangeAction::DoorReplaced,
        ChangeAction::DoorDeleted,
        ChangeAction::CameraCreated,
        ChangeAction::CameraReplaced,
        ChangeAction::CameraDeleted,
        ChangeAction::CollectionCreated,
        ChangeAction::CollectionUpdated,
        ChangeAction::CollectionDeleted,
        ChangeAction::PresenceReset,
        ChangeAction::IntegrationConfigured,
        ChangeAction::IntegrationRemoved,
        ChangeAction::ReaderSet,
        ChangeAction::ReaderRemoved,
        ChangeAction::CredentialsSet,
    ];
}

/// A configuration change to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewChange {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The API key that made it (`cli` for the command line, `bootstrap` for the host's bootstrap key).
    pub key_id: KeyId,
    /// The request it belongs to (made by the server).
    pub request_id: RequestId,
    /// The client's own correlation id, when it sent a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// What was done.
    pub action: ChangeAction,
    /// The object changed: a key, webhook, door or collection id.
    pub object_id: String,
    /// What changed (fields, before and after; never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl NewChange {
    /// A change made outside any HTTP request (the command line, a host's start-up, a test), by the
    /// actor `key_id` (`cli`, `bootstrap`), at `at_ms`.
    pub fn local(key_id: &str, action: ChangeAction, object_id: &str, details: serde_json::Value, at_ms: i64) -> Self {
        Self {
            at_ms,
            key_id: key_id.into(),
            request_id: RequestId::random(),
            correlation_id: None,
            action,
            object_id: object_id.to_string(),
            details,
        }
    }
}

/// A recorded configuration change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// Position in the tenant's trail (increasing).
    pub seq: i64,
    /// The change.
    #[serde(flatten)]
    pub change: NewChange,
}
