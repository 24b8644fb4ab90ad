//! The tenant's MQTT integration: its broker settings and how its events are queued. It is one outbox
//! subscription (a row of the webhooks table, hidden from the webhook API) whose URL is the broker's and
//! whose sealed secret holds the settings (the password among them), so events reach the broker as they
//! reach webhooks: queued in the transaction of their change, sent at least once under a message id
//! that never changes, retried and logged. The integrations room holds the broker link that sends them.

use facegate_store::{ChangeAction, CollectionId, DeliveryAttempt, DueDelivery, EventType, NewWebhook, WebhookId};
use serde::{Deserialize, Serialize};

use crate::collections::{Actor, Missing};
use crate::egress::EgressRefusal;
use crate::{Gallery, GalleryError, MAX_LINK_TTL_S, MIN_LINK_TTL_S};

/// Longest topic prefix, characters.
pub const MAX_TOPIC_PREFIX_CHARS: usize = 64;
/// Longest user name or password, characters.
pub const MAX_CREDENTIAL_CHARS: usize = 256;
/// How long a "last face" link works when the settings do not say, seconds.
pub const DEFAULT_LINK_TTL_S: u32 = 24 * 3600;
/// The topic prefix when none is given.
pub const DEFAULT_TOPIC_PREFIX: &str = "facegate";

/// The events published when none are named: door decisions and camera decisions.
pub const DEFAULT_MQTT_EVENTS: [EventType; 3] =
    [EventType::DoorDecision, EventType::IdentitySighted, EventType::IdentityUnknown];

/// Track events, always queued to the broker when it is enabled: they keep each camera's retained
/// "people here" state (published as events too only when asked for).
const STATE_EVENTS: [EventType; 2] = [EventType::FaceTrackStarted, EventType::FaceTrackEnded];

/// The broker settings a tenant sends (`PUT /v1/integrations/mqtt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// The broker: `mqtts://host:8883` (TLS), or plain `mqtt://host:1883` to a host the operator allowed.
    pub url: String,
    /// The user name, if the broker asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password (write-only: never shown again, sealed at rest); left out, the stored one stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Publish at all (`false` keeps the settings and queues nothing).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Announce cameras and doors to Home Assistant (retained discovery configs under `homeassistant/`).
    #[serde(default = "yes")]
    pub home_assistant: bool,
    /// The first level of every topic (`facegate`): letters, digits, `_`, `-` and `/` between levels.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// The events to publish (default: door decisions, cameras' named and unknown people).
    #[serde(default = "default_events")]
    pub event_types: Vec<EventType>,
    /// Also publish named people as Frigate does (`frigate/tracked_object_update`, type `face`).
    #[serde(default)]
    pub frigate: bool,
    /// Also publish named people as Double Take does (`double-take/matches/<name>`).
    #[serde(default)]
    pub double_take: bool,
    /// Collections whose people get a "last seen" sensor each (retained, with Home Assistant discovery):
    /// they tell everyone on the broker who is where, so none unless a collection is listed.
    #[serde(default)]
    pub last_seen_collections: Vec<CollectionId>,
    /// facegate's address as Home Assistant reaches it (`https://facegate.example:8443`, a path prefix
    /// allowed): each camera then gets a "last face" image, published as a signed link to its latest
    /// best shot (never the image itself). Left out, no image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// How long a "last face" link opens its image, seconds (60 to 604800; default a day).
    #[serde(default = "default_link_ttl")]
    #[schema(minimum = 60, maximum = 604_800)]
    pub image_link_ttl_s: u32,
}

fn yes() -> bool {
    true
}

fn default_prefix() -> String {
    DEFAULT_TOPIC_PREFIX.to_string()
}

fn default_events() -> Vec<EventType> {
    DEFAULT_MQTT_EVENTS.to_vec()
}

fn default_link_ttl() -> u32 {
    DEFAULT_LINK_TTL_S
}

/// What the broker link needs: the settings as stored (sealed), password included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MqttConfig {
    /// The broker URL.
    pub url: String,
    /// The user name.
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// Publishing at all.
    pub enabled: bool,
    /// Home Assistant discovery.
    pub home_assistant: bool,
    /// The topic prefix.
    pub topic_prefix: String,
    /// The events published.
    pub event_types: Vec<EventType>,
    /// Frigate's topic.
    pub frigate: bool,
    /// Double Take's topics.
    pub double_take: bool,
    /// Collections whose people get "last seen" sensors.
    #[serde(default)]
    pub last_seen_collections: Vec<CollectionId>,
    /// facegate's public address, for the "last face" links (none: no image).
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a "last face" link works, seconds.
    #[serde(default = "default_link_ttl")]
    pub image_link_ttl_s: u32,
    /// When these settings were made, ms since the epoch: a link never goes back to older ones (an
    /// event queued before a change may be sent after it).
    #[serde(default)]
    pub revision: i64,
}

/// The tenant's MQTT integration as shown (`GET /v1/integrations/mqtt`): no password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MqttIntegration {
    /// The outbox subscription behind it (its delivery log: `GET /v1/webhooks/{id}/deliveries`).
    pub id: WebhookId,
    /// The broker URL.
    pub url: String,
    /// The user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether a password is stored.
    pub password_set: bool,
    /// Publishing at all.
    pub enabled: bool,
    /// Home Assistant discovery.
    pub home_assistant: bool,
    /// The topic prefix.
    pub topic_prefix: String,
    /// The events published.
    pub event_types: Vec<EventType>,
    /// Frigate's topic.
    pub frigate: bool,
    /// Double Take's topics.
    pub double_take: bool,
    /// Collections whose people get "last seen" sensors.
    pub last_seen_collections: Vec<CollectionId>,
    /// facegate's public address, for the cameras' "last face" links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// How long a "last face" link works, seconds.
    pub image_link_ttl_s: u32,
}

/// MQTT settings that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MqttProblem {
    /// The URL is malformed or outside the egress policy.
    #[error(transparent)]
    Url(#[from] EgressRefusal),
    /// A topic prefix that is empty, too long, or has wildcards, `$` or empty levels.
    #[error("`topic_prefix` must be 1 to {MAX_TOPIC_PREFIX_CHARS} letters, digits, `_`, `-`, with `/` between levels")]
    TopicPrefix,
    /// A user name or password too long or with control characters.
    #[error("`{0}` must be at most {MAX_CREDENTIAL_CHARS} printable characters")]
    Credential(&'static str),
    /// No event type.
    #[error("`event_types` names no event type")]
    NoEventType,
    /// A public address that is not a plain `http(s)://host[:port][/path]`.
    #[error("`public_url` must be http:// or https:// with a host, no user, query or fragment")]
    PublicUrl,
    /// A link life out of range.
    #[error("`image_link_ttl_s` must be {MIN_LINK_TTL_S} to {MAX_LINK_TTL_S}")]
    LinkTtl,
}

/// Publishes queued events to a tenant's broker; implemented by the integrations room's MQTT link.
#[async_trait::async_trait]
pub trait BrokerPublisher: Send + Sync {
    /// Publishes one due outbox row to the broker of `config`, returning once the broker acknowledged
    /// it (QoS 1), or why it did not.
    async fn publish(&self, row: &DueDelivery, config: &MqttConfig) -> Result<(), String>;
}

/// Whether an outbox subscription's URL is a broker's (its rows go to the MQTT link, not over HTTP).
pub fn is_broker(url: &str) -> bool {
    url.starts_with("mqtt://") || url.starts_with("mqtts://")
}

fn check_prefix(prefix: &str) -> Result<(), MqttProblem> {
    let fine = prefix.chars().count() <= MAX_TOPIC_PREFIX_CHARS
        && prefix
            .split('/')
            .all(|level| !level.is_empty() && level.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if fine { Ok(()) } else { Err(MqttProblem::TopicPrefix) }
}

fn check_credential(field: &'static str, value: Option<&str>) -> Result<(), MqttProblem> {
    match value {
        Some(v) if v.chars().count() > MAX_CREDENTIAL_CHARS || v.chars().any(char::is_control) => {
            Err(MqttProblem::Credential(field))
        }
        _ => Ok(()),
    }
}

/// A public address as stored: `http(s)://host[:port][/path]`, without a trailing `/`.
fn check_public_url(text: &str) -> Result<String, MqttProblem> {
    let url = url::Url::parse(text).map_err(|_| MqttProblem::PublicUrl)?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if plain { Ok(url.as_str().trim_end_matches('/').to_string()) } else { Err(MqttProblem::PublicUrl) }
}

fn settings_binding(id: &WebhookId) -> String {
    format!("facegate/mqtt-settings/v1/{id}")
}

impl MqttConfig {
    /// The settings as shown, without the password.
    pub fn view(self, id: WebhookId) -> MqttIntegration {
        MqttIntegration {
            id,
            url: self.url,
            username: self.username,
            password_set: self.password.is_some(),
            enabled: self.enabled,
            home_assistant: self.home_assistant,
            topic_prefix: self.topic_prefix,
            event_types: self.event_types,
            frigate: self.frigate,
            double_take: self.double_take,
            last_seen_collections: self.last_seen_collections,
            public_url: self.public_url,
            image_link_ttl_s: self.image_link_ttl_s,
        }
    }

    /// The event types its outbox rows are queued for: none while disabled.
    fn queued_types(&self) -> Vec<EventType> {
        if !self.enabled {
            return Vec::new();
        }
        let mut types: Vec<EventType> = self.event_types.iter().chain(&STATE_EVENTS).copied().collect();
        types.sort_unstable();
        types.dedup();
        types
    }
}

impl Gallery {
    /// The tenant's MQTT integration, if configured.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub async fn mqtt(&self, actor: &Actor) -> Result<Option<MqttIntegration>, GalleryError> {
        Ok(self.mqtt_config(actor).await?.map(|(id, config)| config.view(id)))
    }

    /// The tenant's MQTT integration with its full settings (password included), for the broker link.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub async fn mqtt_config(&self, actor: &Actor) -> Result<Option<(WebhookId, MqttConfig)>, GalleryError> {
        let Some(hook) = self.broker_hook(&actor.tenant_id).await? else {
            return Ok(None);
        };
        let sealed = self.store.webhook_secret(&actor.tenant_id, &hook.id).await?;
        let config = self.open_mqtt(&actor.tenant_id, &hook.id, &sealed).await?;
        Ok(Some((hook.id, config)))
    }

    async fn open_mqtt(
        &self,
        tenant_id: &facegate_store::TenantId,
        id: &WebhookId,
        sealed: &facegate_store::EncryptedTemplate,
    ) -> Result<MqttConfig, GalleryError> {
        let cipher = &self.secrets(tenant_id).await?.cipher;
        let plain = cipher.open_data(sealed, &settings_binding(id))?;
        serde_json::from_slice(&plain).map_err(|e| GalleryError::Crypto(format!("MQTT settings: {e}")))
    }

    /// Configures the tenant's MQTT broker, or replaces its settings (a password left out stays); takes
    /// effect at the next event, without a restart. Events already queued go to the new broker.
    /// Returns the integration's id and its settings as stored (the password included), for its link.
    ///
    /// # Errors
    /// [`GalleryError::Mqtt`] for settings that cannot be stored; store and crypto failures.
    pub async fn configure_mqtt(
        &self,
        actor: &Actor,
        settings: MqttSettings,
    ) -> Result<(WebhookId, MqttConfig), GalleryError> {
        self.egress.check_broker_url(&settings.url).map_err(MqttProblem::from)?;
        check_prefix(&settings.topic_prefix)?;
        check_credential("username", settings.username.as_deref())?;
        check_credential("password", settings.password.as_deref())?;
        let mut event_types = settings.event_types;
        event_types.sort_unstable();
        event_types.dedup();
        if event_types.is_empty() {
            return Err(MqttProblem::NoEventType.into());
        }
        let public_url = settings.public_url.as_deref().filter(|u| !u.is_empty()).map(check_public_url).transpose()?;
        if !(MIN_LINK_TTL_S..=MAX_LINK_TTL_S).contains(&settings.image_link_ttl_s) {
            return Err(MqttProblem::LinkTtl.into());
        }
        let mut last_seen = settings.last_seen_collections;
        last_seen.sort_unstable();
        last_seen.dedup();
        for collection_id in &last_seen {
            self.collection(actor, collection_id).await?;
        }
        let existing = self.mqtt_config(actor).await?;
        let password = settings.password.or_else(|| existing.as_ref().and_then(|(_, c)| c.password.clone()));
        let config = MqttConfig {
            url: settings.url,
            username: settings.username.filter(|u| !u.is_empty()),
            password: password.filter(|p| !p.is_empty()),
            enabled: settings.enabled,
            home_assistant: settings.home_assistant,
            topic_prefix: settings.topic_prefix,
            event_types,
            frigate: settings.frigate,
            double_take: settings.double_take,
            last_seen_collections: last_seen,
            public_url,
            image_link_ttl_s: settings.image_link_ttl_s,
            revision: self.now(),
        };
        let id = existing.map_or_else(WebhookId::random, |(id, _)| id);
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&config).map_err(|e| GalleryError::Crypto(format!("MQTT settings: {e}")))?,
        );
        let cipher = &self.secrets(&actor.tenant_id).await?.cipher;
        let new = NewWebhook {
            secret: cipher.seal_data(&plain, &settings_binding(&id))?,
            id,
            url: config.url.clone(),
            event_types: config.queued_types(),
            created_at_ms: self.now(),
        };
        let details = serde_json::json!({
            "integration": "mqtt",
            "origin": crate::changes::origin(&config.url),
            "enabled": config.enabled,
            "home_assistant": config.home_assistant,
            "topic_prefix": config.topic_prefix,
            "event_types": config.event_types,
            "public_url": config.public_url,
        });
        let audit = self.change(actor, ChangeAction::IntegrationConfigured, &new.id, details);
        let stored = match self.store.replace_webhook(&actor.tenant_id, &new, &audit).await {
            Err(facegate_store::StoreError::NotFound) => {
                self.store.create_webhook(&actor.tenant_id, &new, &audit).await
            }
            other => other,
        }?;
        Ok((stored.id, config))
    }

    /// Removes the tenant's MQTT integration and its undelivered events; the id it had.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] when none is configured.
    pub async fn remove_mqtt(&self, actor: &Actor) -> Result<WebhookId, GalleryError> {
        let hook = self.broker_hook(&actor.tenant_id).await?.ok_or(GalleryError::NotFound(Missing::Mqtt))?;
        let details = serde_json::json!({ "integration": "mqtt" });
        let audit = self.change(actor, ChangeAction::IntegrationRemoved, &hook.id, details);
        self.store.delete_webhook(&actor.tenant_id, &hook.id, &audit).await?;
        Ok(hook.id)
    }

    /// Whether `id` is still the tenant's MQTT integration (a link checks, so that one removed through
    /// another server sharing the store is closed here too).
    ///
    /// # Errors
    /// Store failures.
    pub async fn is_mqtt_integration(
        &self,
        tenant_id: &facegate_store::TenantId,
        id: &WebhookId,
    ) -> Result<bool, GalleryError> {
        Ok(self.broker_hook(tenant_id).await?.is_some_and(|h| h.id == *id))
    }

    /// The outbox subscription behind the tenant's MQTT integration (a tenant has at most one).
    async fn broker_hook(
        &self,
        tenant_id: &facegate_store::TenantId,
    ) -> Result<Option<facegate_store::Webhook>, GalleryError> {
        let hooks = self.store.list_webhooks(tenant_id).await?;
        Ok(hooks.into_iter().find(|h| is_broker(&h.url)))
    }

    /// The settings of the broker a due outbox row goes to.
    ///
    /// # Errors
    /// Crypto failures (a tampered row).
    pub async fn broker_of(&self, row: &DueDelivery) -> Result<MqttConfig, GalleryError> {
        self.open_mqtt(&row.tenant_id, &row.delivery.webhook_id, &row.secret).await
    }

    /// Publishes one due outbox row of an MQTT integration; what came of it (a failed publish is an
    /// attempt, retried as a webhook's is, not an error).
    pub async fn send_to_broker(&self, publisher: &dyn BrokerPublisher, row: &DueDelivery) -> DeliveryAttempt {
        let sent = match self.broker_of(row).await {
            Ok(config) => publisher.publish(row, &config).await,
            Err(error) => Err(error.to_string()),
        };
        self.attempt_of(&row.delivery, None, sent.err())
    }

    /// The tenant's cameras and doors, as the broker link announces them.
    ///
    /// # Errors
    /// Store failures.
    pub async fn devices(
        &self,
        tenant_id: &facegate_store::TenantId,
    ) -> Result<(Vec<facegate_store::Camera>, Vec<facegate_store::Door>), GalleryError> {
        Ok((self.store.list_cameras(tenant_id).await?, self.store.list_doors(tenant_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_prefixes_are_plain_levels() {
        for good in ["facegate", "site-1/facegate", "a_b"] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", "a//b", "/a", "a/", "a/+", "#", "$SYS", "a b", &"x".repeat(65)] {
            assert_eq!(check_prefix(bad), Err(MqttProblem::TopicPrefix), "{bad}");
        }
    }

    #[test]
    fn public_addresses_are_plain_http_origins_with_an_optional_path() {
        assert_eq!(check_public_url("https://facegate.example:8443/"), Ok("https://facegate.example:8443".into()));
        assert_eq!(check_public_url("http://10.0.0.5/fg"), Ok("http://10.0.0.5/fg".into()));
        for bad in ["ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f", "not a url", "file:///etc"] {
            assert_eq!(check_public_url(bad), Err(MqttProblem::PublicUrl), "{bad}");
        }
    }

    #[test]
    fn disabled_settings_queue_nothing_and_enabled_ones_keep_the_track_events() {
        let config = MqttConfig {
            url: "mqtts://broker.example.org".into(),
            username: None,
            password: None,
            enabled: true,
            home_assistant: true,
            topic_prefix: DEFAULT_TOPIC_PREFIX.into(),
            event_types: vec![EventType::DoorDecision],
            frigate: false,
            double_take: false,
            last_seen_collections: Vec::new(),
            public_url: None,
            image_link_ttl_s: DEFAULT_LINK_TTL_S,
            revision: 0,
        };
        assert_eq!(
            config.queued_types(),
            vec![EventType::DoorDecision, EventType::FaceTrackStarted, EventType::FaceTrackEnded]
        );
        assert!(MqttConfig { enabled: false, ..config }.queued_types().is_empty());
    }
}
