//! The audit vocabulary: what an audit event says was done ([`AuditAction`]), what came of it
//! ([`AuditResult`]) and why ([`AuditReason`]), as types; they become text only at the row boundary
//! (`as_str` to write, `parse` to read). Next to them, what a webhook receives of an event: its
//! [`EventType`](crate::EventType) (by the event's action) and its body ([`WebhookBody`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{DoorId, EventType, KeyId, NewEvent, RequestId, SubjectId, TenantId, WireName};

/// What was done, as the audit trail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// 1:N identification of every face of an image.
    Recognize,
    /// Top-k search of one face or template.
    Search,
    /// 1:1 verification against a subject.
    Verify,
    /// Faces enrolled.
    Enroll,
    /// A subject or a face erased.
    Erase,
    /// The collection's move to another pack.
    Migrate,
    /// A door decision.
    Door,
    /// A subject's ignore list changed.
    Ignore,
}

impl WireName for AuditAction {
    const ALL: &'static [AuditAction] = &[
        AuditAction::Recognize,
        AuditAction::Search,
        AuditAction::Verify,
        AuditAction::Enroll,
        AuditAction::Erase,
        AuditAction::Migrate,
        AuditAction::Door,
        AuditAction::Ignore,
    ];
}

/// What came of it, as the audit trail names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    /// A subject at or above the threshold (recognize, search, verify).
    Match,
    /// Nobody at or above the threshold (recognize, search).
    Unknown,
    /// Below the threshold of the subject verified against.
    NoMatch,
    /// Faces stored.
    Accepted,
    /// Templates erased.
    Erased,
    /// A migration started.
    Started,
    /// A migration switched the collection to its target pack.
    Switched,
    /// A door let the person through.
    Granted,
    /// A door stayed closed.
    Denied,
}

impl WireName for AuditResult {
    const ALL: &'static [AuditResult] = &[
        AuditResult::Match,
        AuditResult::Unknown,
        AuditResult::NoMatch,
        AuditResult::Accepted,
        AuditResult::Erased,
        AuditResult::Started,
        AuditResult::Switched,
        AuditResult::Granted,
        AuditResult::Denied,
    ];
}

/// Why a door attempt was denied (or, for a door with a reader, what its panel said of a grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoorReason {
    /// No frame holds a face.
    NoFace,
    /// A frame holds more than one face big enough to be the person at the door.
    MultipleFaces,
    /// No face passes the quality gate.
    LowQuality,
    /// The fused liveness score is below the threshold (a presentation attack is suspected).
    NotLive,
    /// Nobody enrolled at or above the threshold, or the frames disagree on who it is.
    UnknownPerson,
    /// The person is not allowed through this door.
    NotAllowed,
    /// The door is closed at this time.
    OutsideSchedule,
    /// The person already passed this door and has not passed its paired door since.
    AntiPassback,
    /// The door has a reader and the person carries no card for its panel's system.
    NoCredential,
    /// The door's panel granted the card facegate presented (recorded on the grant).
    PanelGranted,
    /// The door's panel denied the card facegate presented.
    PanelDenied,
    /// The door's panel gave no verdict in time (unreachable, not polling, or no Secure Channel).
    PanelOffline,
}

impl WireName for DoorReason {
    const ALL: &'static [DoorReason] = &[
        DoorReason::NoFace,
        DoorReason::MultipleFaces,
        DoorReason::LowQuality,
        DoorReason::NotLive,
        DoorReason::UnknownPerson,
        DoorReason::NotAllowed,
        DoorReason::OutsideSchedule,
        DoorReason::AntiPassback,
        DoorReason::NoCredential,
        DoorReason::PanelGranted,
        DoorReason::PanelDenied,
        DoorReason::PanelOffline,
    ];
}

/// Why something was decided or done, where an event says: a door's reason to deny, or why a subject
/// was erased without a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditReason {
    /// A door denied access for this reason.
    Door(DoorReason),
    /// The subject's consent expired.
    ConsentExpired,
}

impl AuditReason {
    /// The name as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditReason::Door(reason) => reason.as_str(),
            AuditReason::ConsentExpired => "consent_expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "consent_expired" => Some(AuditReason::ConsentExpired),
            door => DoorReason::parse(door).map(AuditReason::Door),
        }
    }
}

impl From<DoorReason> for AuditReason {
    fn from(reason: DoorReason) -> Self {
        AuditReason::Door(reason)
    }
}

impl Serialize for AuditReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        AuditReason::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown reason `{name}`")))
    }
}

impl EventType {
    /// The type of an audit event, if webhooks can receive it.
    pub fn of(event: &NewEvent) -> Option<EventType> {
        match event.action {
            AuditAction::Door => Some(EventType::DoorDecision),
            AuditAction::Recognize | AuditAction::Search | AuditAction::Verify => Some(EventType::IdentityDecision),
            AuditAction::Enroll => Some(EventType::SubjectEnrolled),
            AuditAction::Erase => Some(EventType::SubjectErased),
            AuditAction::Migrate | AuditAction::Ignore => None,
        }
    }
}

/// The JSON body a webhook receives (the Standard Webhooks shape: `type`, `timestamp`, `data`): an audit
/// event's ([`WebhookData`]) or another event's, such as a camera's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookBody<D> {
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened, RFC 3339.
    pub timestamp: String,
    /// The event.
    pub data: D,
}

/// What a webhook is told of an audit event: its fields that are set, and the tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookData<'a> {
    /// The tenant.
    pub tenant_id: &'a TenantId,
    /// The collection.
    pub collection_id: &'a crate::CollectionId,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The key that asked.
    pub key_id: &'a KeyId,
    /// The request (made by the server).
    pub request_id: &'a RequestId,
    /// The client's correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<&'a str>,
    /// What was done.
    pub action: AuditAction,
    /// What came of it.
    pub result: AuditResult,
    /// The subject decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<&'a SubjectId>,
    /// The score of the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The face's index in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_index: Option<u32>,
    /// The door of a door decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub door_id: Option<&'a DoorId>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<AuditReason>,
    /// The fused liveness score of a door decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<f32>,
}

impl<D: Serialize> WebhookBody<D> {
    /// The body of an event of `event_type` that happened at `at_ms` (ms since the epoch) and says `data`.
    pub fn new(event_type: EventType, at_ms: i64, data: D) -> Self {
        let timestamp = jiff::Timestamp::from_millisecond(at_ms).map(|t| t.to_string()).unwrap_or_default();
        Self { event_type, timestamp, data }
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl<'a> WebhookBody<WebhookData<'a>> {
    /// The body of audit `event` of `tenant_id`, as a webhook of `event_type` receives it.
    pub fn of(tenant_id: &'a TenantId, event_type: EventType, event: &'a NewEvent) -> Self {
        let data = WebhookData {
            tenant_id,
            collection_id: &event.collection_id,
            at_ms: event.at_ms,
            key_id: &event.key_id,
            request_id: &event.request_id,
            correlation_id: event.correlation_id.as_deref(),
            action: event.action,
            result: event.result,
            subject_id: event.subject_id.as_ref(),
            score: event.score,
            face_index: event.face_index,
            door_id: event.door_id.as_ref(),
            reason: event.reason,
            liveness: event.liveness,
        };
        Self::new(event_type, event.at_ms, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
            assert_eq!(serde_json::to_value(action).expect("json"), serde_json::json!(action.as_str()));
        }
        for result in AuditResult::ALL {
            assert_eq!(AuditResult::parse(result.as_str()), Some(*result));
            assert_eq!(serde_json::to_value(result).expect("json"), serde_json::json!(result.as_str()));
        }
        for reason in DoorReason::ALL.iter().map(|r| AuditReason::Door(*r)).chain([AuditReason::ConsentExpired]) {
            assert_eq!(AuditReason::parse(reason.as_str()), Some(reason));
            let text = serde_json::to_string(&reason).expect("json");
            assert_eq!(serde_json::from_str::<AuditReason>(&text).expect("back"), reason);
        }
        assert_eq!(AuditAction::parse("nonsense"), None);
    }
}
