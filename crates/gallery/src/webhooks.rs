//! Webhooks: a tenant's subscriptions to its events, signed by the Standard Webhooks scheme, delivered
//! at least once from the store's transactional outbox. The store queues one row per event and
//! subscribed webhook in the transaction of the change (see `facegate_store::EventType`); the dispatcher
//! here sends due rows, signs each with the webhook's secret (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), and records every attempt: a 2xx
//! delivers, anything else retries after [`RETRY_DELAYS_S`] and then gives up. A row's message id never
//! changes, so a receiver that sees a message twice (a process killed between sending and recording)
//! can drop the second by its id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facegate_store::{
    ChangeAction, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, DueQuery, EventType, NewWebhook, TenantId,
    Webhook, WebhookId,
};
use hmac::{Hmac, Mac};
use rand::RngCore;

use crate::collections::{Actor, Missing, missing};
use crate::egress::EgressRefusal;
use crate::{Gallery, GalleryError};

/// Seconds before each retry of a failed delivery; after the last one, the delivery is failed.
pub const RETRY_DELAYS_S: [i64; 7] = [1, 5, 30, 120, 600, 1800, 3600];

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// Sends one signed webhook request; implemented by the host over HTTP.
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `body` (JSON) to `url` with `headers`; the receiver's status, or why there was none.
    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, String>;
}

/// A webhook that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookProblem {
    /// The URL is malformed or outside the egress policy.
    #[error(transparent)]
    Url(#[from] EgressRefusal),
    /// No event type.
    #[error("`event_types` names no event type")]
    NoEventType,
}

/// What a run of deliveries did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Rows sent (2xx or not).
    pub attempted: usize,
    /// Rows delivered.
    pub delivered: usize,
}

/// The `webhook-signature` of a message: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn sign(secret: &[u8], message_id: &str, timestamp_s: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("{message_id}.{timestamp_s}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn secret_binding(id: &WebhookId) -> String {
    format!("facegate/webhook-secret/v1/{id}")
}

impl Gallery {
    /// Stores a webhook; returns it with its signing secret (`whsec_...`), shown this once.
    ///
    /// # Errors
    /// [`GalleryError::Webhook`] for a bad URL or no event type; store and crypto failures.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        url: &str,
        mut event_types: Vec<EventType>,
    ) -> Result<(Webhook, String), GalleryError> {
        self.egress.check_url(url).map_err(WebhookProblem::from)?;
        event_types.sort_unstable();
        event_types.dedup();
        if event_types.is_empty() {
            return Err(WebhookProblem::NoEventType.into());
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let id = WebhookId::random();
        let cipher = &self.secrets(&actor.tenant_id).await?.cipher;
        let new = NewWebhook {
            secret: cipher.seal_data(&secret, &secret_binding(&id))?,
            id,
            url: url.to_string(),
            event_types,
            created_at_ms: self.now(),
        };
        let details = serde_json::json!({ "origin": crate::changes::origin(url), "event_types": new.event_types });
        let audit = self.change(actor, ChangeAction::WebhookCreated, &new.id, details);
        let webhook = self.store.create_webhook(&actor.tenant_id, &new, &audit).await?;
        Ok((webhook, format!("{SECRET_PREFIX}{}", STANDARD.encode(secret))))
    }

    /// The tenant's webhooks (no secrets).
    ///
    /// # Errors
    /// Store failures.
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<Webhook>, GalleryError> {
        let hooks = self.store.list_webhooks(&actor.tenant_id).await?;
        Ok(hooks.into_iter().filter(|h| !crate::is_broker(&h.url)).collect())
    }

    /// Deletes a webhook and its undelivered events.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn delete_webhook(&self, actor: &Actor, webhook_id: &WebhookId) -> Result<(), GalleryError> {
        // The MQTT integration's subscription is removed as an integration, not as a webhook.
        if !self.webhooks(actor).await?.iter().any(|h| h.id == *webhook_id) {
            return Err(GalleryError::NotFound(Missing::Webhook));
        }
        let audit = self.change(actor, ChangeAction::WebhookDeleted, webhook_id, serde_json::json!({}));
        self.store.delete_webhook(&actor.tenant_id, webhook_id, &audit).await.map_err(missing(Missing::Webhook))
    }

    /// A webhook's delivery log after the cursor `after_seq`.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn deliveries(
        &self,
        actor: &Actor,
        webhook_id: &WebhookId,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, GalleryError> {
        self.store.deliveries(&actor.tenant_id, webhook_id, after_seq, limit).await.map_err(missing(Missing::Webhook))
    }

    /// Due deliveries of every tenant, oldest first: at most `limit`, at most `per_webhook` of each
    /// webhook, none of `skip` (receivers busy or backing off).
    ///
    /// # Errors
    /// Store failures.
    pub async fn due_deliveries(
        &self,
        limit: u32,
        per_webhook: u32,
        skip: Vec<WebhookId>,
    ) -> Result<Vec<DueDelivery>, GalleryError> {
        let query = DueQuery { now_ms: self.now(), limit, per_webhook, skip };
        Ok(self.store.due_deliveries(&query).await?)
    }

    /// Records attempts, in one transaction. A process killed before it commits sends those rows again,
    /// under the same message ids.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_deliveries(&self, attempts: &[DeliveryAttempt]) -> Result<(), GalleryError> {
        if attempts.is_empty() {
            return Ok(());
        }
        Ok(self.store.record_deliveries(attempts).await?)
    }

    /// Signs and sends one due delivery; what came of it (a failed send is an attempt, not an error).
    pub async fn send_delivery(&self, sender: &dyn WebhookSender, row: &DueDelivery) -> DeliveryAttempt {
        let delivery = &row.delivery;
        let sent = match self.secret_of(&row.tenant_id, &delivery.webhook_id, row).await {
            Ok(secret) => {
                // The signature's timestamp is for the receiver's replay window, against its own clock:
                // the real time, whatever clock the gallery decides by.
                let timestamp = facegate_store::now_ms() / 1000;
                let headers = [
                    ("webhook-id", delivery.message_id.clone()),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", sign(&secret, &delivery.message_id, timestamp, &row.payload)),
                ];
                sender.send(&row.url, &headers, &row.payload).await
            }
            Err(error) => Err(error.to_string()),
        };
        let (status, error) = match sent {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (Some(status), Some(format!("the receiver answered {status}"))),
            Err(error) => (None, Some(error)),
        };
        self.attempt_of(delivery, status, error)
    }

    /// An attempt at a delivery that ended with the receiver's `status` (if any) and `error` (none:
    /// delivered): pending again after its retry delay, or failed after the last one.
    pub(crate) fn attempt_of(
        &self,
        delivery: &Delivery,
        status: Option<u16>,
        error: Option<String>,
    ) -> DeliveryAttempt {
        let at_ms = self.now();
        let delay = RETRY_DELAYS_S.get(delivery.attempts as usize).copied();
        let (state, next_attempt_at_ms) = match (error.is_none(), delay) {
            (true, _) => (DeliveryState::Delivered, None),
            (false, Some(delay)) => (DeliveryState::Pending, Some(at_ms + delay * 1000)),
            (false, None) => (DeliveryState::Failed, None),
        };
        DeliveryAttempt { seq: delivery.seq, at_ms, state, next_attempt_at_ms, status, error }
    }

    async fn secret_of(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        row: &DueDelivery,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, GalleryError> {
        let cipher = &self.secrets(tenant_id).await?.cipher;
        cipher.open_data(&row.secret, &secret_binding(webhook_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (its reference libraries' test vector).
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("base64");
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}

/// A camera's decision to send to the tenant's webhooks (`identity.sighted`, `identity.unknown`): its
/// type, the subject it names, and what it says (a JSON object; the tenant and collection are added).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraEvent {
    /// Its type.
    pub event_type: facegate_store::EventType,
    /// The subject named, if any (its queued deliveries go with the subject's erasure).
    pub subject_id: Option<facegate_store::SubjectId>,
    /// The event.
    pub data: serde_json::Value,
}

impl Gallery {
    /// Queues a camera's decisions for the tenant's webhooks subscribed to their types: delivered at
    /// least once, signed, from the outbox as audit events are, with the body `{type, timestamp, data}`.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a collection that is not the actor's tenant's; store failures.
    pub async fn publish(
        &self,
        actor: &Actor,
        collection_id: &facegate_store::CollectionId,
        events: Vec<CameraEvent>,
    ) -> Result<(), GalleryError> {
        if events.is_empty() {
            return Ok(());
        }
        let at_ms = self.now();
        let outbound: Vec<facegate_store::OutboundEvent> = events
            .into_iter()
            .map(|event| {
                let mut data = event.data;
                if let Some(fields) = data.as_object_mut() {
                    fields.insert("tenant_id".into(), serde_json::json!(actor.tenant_id));
                    fields.insert("collection_id".into(), serde_json::json!(collection_id));
                }
                facegate_store::OutboundEvent {
                    event_type: event.event_type,
                    collection_id: collection_id.clone(),
                    subject_id: event.subject_id,
                    at_ms,
                    payload: facegate_store::WebhookBody::new(event.event_type, at_ms, data).to_json(),
                }
            })
            .collect();
        self.store.publish(&actor.tenant_id, &outbound).await.map_err(missing(Missing::Collection))
    }
}
