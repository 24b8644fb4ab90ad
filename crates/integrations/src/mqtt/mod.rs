//! The MQTT link: one connection per tenant's broker, opened when its first event is due, publishing
//! each queued event at QoS 1 and reporting it delivered only when the broker acknowledged it (so the
//! outbox keeps what a broker that went away never took, and sends it again when it is back).
//!
//! On every connection: `<prefix>/status` `online` (retained; the last will says `offline`), Home
//! Assistant's discovery configs and each camera's "people here" state (retained), and a subscription to
//! `homeassistant/status`, to send the configs again when Home Assistant comes back online. Where the
//! settings give facegate's public address, a track's end that left a sighting sets its camera's "last
//! face" to a signed, expiring link to the best shot. The broker's address is held to the egress policy
//! when it is dialled. Settings changed over the API take effect
//! at the next event: a link whose settings differ is closed and a new one opened.

mod messages;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use facegate_gallery::{BrokerPublisher, EgressPolicy, EgressRefusal, Gallery, MqttConfig};
use facegate_store::{DueDelivery, EventType, TenantId, WebhookId};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS, Transport};
use serde::Serialize;
use tokio::sync::oneshot;

pub use messages::{
    FRIGATE_TOPIC, HOME_ASSISTANT, HOME_ASSISTANT_STATUS, Message, People, discovery, event_messages, last_face,
    last_face_sighting, last_seen, status_topic, topic_level,
};

/// How long the broker may take to acknowledge one message.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep-alive of the connection (a dead broker is noticed within about one and a half of it).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Longest pause between connection attempts.
const MAX_RECONNECT: Duration = Duration::from_secs(30);
/// Requests queued towards the connection.
const REQUESTS: usize = 64;
/// Largest message either way.
const MAX_PACKET: usize = 256 * 1024;
/// How long a new link may take to connect before its first event is reported not sent.
const FIRST_CONNECT: Duration = Duration::from_secs(3);
/// How often the rows of a link that is down are let through anyway (their settings may have changed).
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// How often a link checks that its integration still exists (removed by another server sharing the
/// store, it closes itself).
const EXISTS_EVERY: Duration = Duration::from_secs(60);

/// Connections opened by this process, for unique client ids.
static NEXT_CONNECTION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How a tenant's broker link stands, as the API and the console show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LinkStatus {
    /// Connected now.
    pub connected: bool,
    /// When it last connected, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at_ms: Option<i64>,
    /// When the broker last acknowledged an event, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_publish_at_ms: Option<i64>,
    /// Events the broker acknowledged since this process started.
    pub published: u64,
    /// The last connection or publish error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

type Ack = oneshot::Sender<Result<(), String>>;

/// What the connection task and the publishers share.
#[derive(Default)]
struct Shared {
    client: Option<AsyncClient>,
    /// Publishes handed to the client, not yet written: their acknowledgement, in order.
    queued: VecDeque<Ack>,
    /// Publishes written, by packet id.
    written: HashMap<u16, Ack>,
    status: LinkStatus,
    people: People,
    /// Door ids and camera topic levels already announced to Home Assistant.
    announced: HashSet<String>,
    /// The link was let go (its settings changed, or it idled): the connection ends quietly.
    closing: bool,
}

impl Shared {
    /// Fails every publish in flight (the connection went away).
    fn fail_all(&mut self, why: &str) {
        for ack in self.queued.drain(..).chain(self.written.drain().map(|(_, a)| a)) {
            let _ = ack.send(Err(why.to_string()));
        }
    }
}

/// One broker connection of one tenant.
struct Link {
    config: MqttConfig,
    tenant_id: TenantId,
    shared: Arc<Mutex<Shared>>,
    /// Held while a publish is handed to the client, so acknowledgements are matched in order.
    order: tokio::sync::Mutex<()>,
    task: tokio::task::JoinHandle<()>,
    /// When its rows were last let through while it was down.
    probed: Mutex<std::time::Instant>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock_instant(at: &Mutex<std::time::Instant>) -> std::sync::MutexGuard<'_, std::time::Instant> {
    at.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    fn connected(&self) -> bool {
        lock(&self.shared).status.connected
    }

    /// Waits up to [`FIRST_CONNECT`] for a link that never connected yet.
    async fn first_connection(&self) {
        let started = std::time::Instant::now();
        while lock(&self.shared).status.connected_at_ms.is_none() && started.elapsed() < FIRST_CONNECT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes one message; returns when the broker acknowledged it.
    async fn publish(&self, message: &Message) -> Result<(), String> {
        self.publish_made(|_| Some(message.clone())).await
    }

    /// Publishes the message `make` makes from the link's state (none: nothing to publish), made when it
    /// is handed to the connection: messages made from the state (a camera's "people here") reach the
    /// broker in the order they were made, whatever order their events were delivered in. Returns when
    /// the broker acknowledged it.
    async fn publish_made(&self, make: impl FnOnce(&mut Shared) -> Option<Message>) -> Result<(), String> {
        let (ack, acked) = oneshot::channel();
        {
            let _order = self.order.lock().await;
            let (client, message) = {
                let mut shared = lock(&self.shared);
                let Some(client) = shared.client.clone().filter(|_| shared.status.connected) else {
                    let why = shared.status.last_error.clone().unwrap_or_else(|| "connecting".into());
                    return Err(format!("not connected to the broker: {why}"));
                };
                let Some(message) = make(&mut shared) else {
                    return Ok(());
                };
                shared.queued.push_back(ack);
                (client, message)
            };
            let payload = message.bytes();
            if let Err(error) = client.publish(&message.topic, QoS::AtLeastOnce, message.retain, payload).await {
                lock(&self.shared).queued.pop_back();
                return Err(format!("the broker connection is closing: {error}"));
            }
        }
        match tokio::time::timeout(ACK_TIMEOUT, acked).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the broker connection closed".into()),
            Err(_) => Err("the broker did not acknowledge in time".into()),
        }
    }

    /// Queues `offline` on the status topic (retained), ahead of the disconnect that follows.
    fn say_offline(&self) {
        let client = lock(&self.shared).client.clone();
        if let Some(client) = client {
            let _ = client.try_publish(status_topic(&self.config), QoS::AtLeastOnce, true, "offline");
        }
    }

    /// Announces what Home Assistant does not know yet (everything when `all`), and each camera's state.
    async fn announce(&self, gallery: &Gallery, all: bool) -> Result<(), String> {
        if !self.config.home_assistant {
            return Ok(());
        }
        let (cameras, doors) = gallery.devices(&self.tenant_id).await.map_err(|e| e.to_string())?;
        let (messages, levels) = {
            let mut shared = lock(&self.shared);
            if all {
                shared.announced.clear();
            }
            let fresh_camera = |c: &&facegate_store::Camera| !shared.announced.contains(&topic_level(&c.name));
            let cameras: Vec<_> = cameras.iter().filter(fresh_camera).cloned().collect();
            let doors: Vec<_> = doors.iter().filter(|d| !shared.announced.contains(d.id.as_str())).cloned().collect();
            shared.announced.extend(cameras.iter().map(|c| topic_level(&c.name)));
            shared.announced.extend(doors.iter().map(|d| d.id.to_string()));
            let levels: Vec<String> = cameras.iter().map(|c| topic_level(&c.name)).collect();
            (discovery(&self.config, &cameras, &doors), levels)
        };
        for message in &messages {
            self.publish(message).await?;
        }
        for level in &levels {
            self.publish_made(|shared| Some(shared.people.state(&self.config, level))).await?;
        }
        Ok(())
    }

    /// The source of an event (a door, a camera's topic level) not yet looked up for Home Assistant.
    fn unannounced_source(&self, event_type: EventType, body: &serde_json::Value) -> Option<String> {
        let data = &body["data"];
        let source = match event_type {
            EventType::DoorDecision => data["door_id"].as_str().map(str::to_string),
            _ => data["camera"].as_str().map(topic_level),
        };
        source.filter(|s| !lock(&self.shared).announced.contains(s))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // A clean disconnect (no last will: the next link says `online`), then the task ends.
        let client = {
            let mut shared = lock(&self.shared);
            shared.closing = true;
            shared.client.take()
        };
        if let Some(client) = client {
            let _ = client.try_disconnect();
        }
        let task = self.task.abort_handle();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    task.abort();
                });
            }
            Err(_) => task.abort(),
        }
    }
}

/// The MQTT links of every tenant, by their outbox subscription (cheap to clone: one set of links).
#[derive(Clone)]
pub struct MqttHub(Arc<Hub>);

struct Hub {
    gallery: Arc<Gallery>,
    egress: EgressPolicy,
    links: Mutex<HashMap<WebhookId, Arc<Link>>>,
}

impl MqttHub {
    /// A hub that opens no connection until an event is due.
    pub fn new(gallery: Arc<Gallery>, egress: EgressPolicy) -> Self {
        Self(Arc::new(Hub { gallery, egress, links: Mutex::default() }))
    }

    /// How the link of an integration stands in this process (none before its first event).
    pub fn status(&self, id: &WebhookId) -> Option<LinkStatus> {
        let links = self.0.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.get(id).map(|link| lock(&link.shared).status.clone())
    }

    /// Opens (or reopens with new settings) an integration's link now, so that it connects and announces
    /// before its first event; closes it when the integration is disabled.
    pub fn open(&self, tenant_id: &TenantId, id: &WebhookId, config: &MqttConfig) {
        if config.enabled {
            self.0.link(tenant_id, id, config);
        } else {
            self.close(id);
        }
    }

    /// Closes an integration's link (removed or disabled), saying `offline` first: its doors and
    /// cameras become unavailable in Home Assistant.
    pub fn close(&self, id: &WebhookId) {
        self.0.close_link(id);
    }

    /// Integrations whose link is down now: their rows wait in the outbox (their retry count untouched)
    /// until it is up again, instead of failing one by one; every [`PROBE_EVERY`] they are let through
    /// once (the next row brings the integration's settings, perhaps a corrected broker).
    pub fn offline(&self) -> Vec<WebhookId> {
        let links = self.0.links.lock().unwrap_or_else(PoisonError::into_inner);
        links
            .iter()
            .filter(|(_, link)| {
                if link.connected() {
                    return false;
                }
                let mut probed = lock_instant(&link.probed);
                if probed.elapsed() < PROBE_EVERY {
                    return true;
                }
                *probed = std::time::Instant::now();
                false
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

impl Hub {
    /// The link for an integration with these settings: the open one, or a new one.
    fn link(self: &Arc<Self>, tenant_id: &TenantId, id: &WebhookId, config: &MqttConfig) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        // The open link serves settings equal to its own, and older ones (an event queued before a
        // change, sent after it, goes out as the change says).
        if let Some(link) = links.get(id).filter(|l| l.config == *config || l.config.revision > config.revision) {
            return link.clone();
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let options = Options {
            id: id.clone(),
            tenant_id: tenant_id.clone(),
            config: config.clone(),
            egress: self.egress.clone(),
        };
        let task = tokio::spawn(run(Arc::downgrade(self), id.clone(), options, shared.clone()));
        let link = Arc::new(Link {
            config: config.clone(),
            tenant_id: tenant_id.clone(),
            shared,
            order: tokio::sync::Mutex::new(()),
            task,
            probed: Mutex::new(std::time::Instant::now()),
        });
        links.insert(id.clone(), link.clone());
        link
    }

    /// Whether the integration is still in the store (a store failure counts as yes).
    async fn still_configured(&self, tenant_id: &TenantId, id: &WebhookId) -> bool {
        self.gallery.is_mqtt_integration(tenant_id, id).await.unwrap_or(true)
    }

    /// Closes a link (its integration is gone), saying `offline` first.
    fn close_link(&self, id: &WebhookId) {
        let closed = self.links.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        if let Some(link) = closed {
            link.say_offline();
        }
    }

    fn open_link(&self, id: &WebhookId) -> Option<Arc<Link>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }
}

/// The hub publishes the outbox's rows of MQTT integrations.
#[async_trait::async_trait]
impl BrokerPublisher for MqttHub {
    async fn publish(&self, row: &DueDelivery, config: &MqttConfig) -> Result<(), String> {
        let link = self.0.link(&row.tenant_id, &row.delivery.webhook_id, config);
        let config = &link.config;
        link.first_connection().await;
        let event_type = row.delivery.event_type;
        // The row's body, read once for every message made from it.
        let body: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
        if let Some(source) = link.unannounced_source(event_type, &body) {
            link.announce(&self.0.gallery, false).await?;
            // A source that is no door or camera (an uploaded video's name, `facegate watch` on a file)
            // has no config: it is looked up once, not at each of its events.
            lock(&link.shared).announced.insert(source);
        }
        for message in &event_messages(config, &row.delivery.message_id, event_type, &body) {
            link.publish(message).await?;
        }
        link.publish_made(|shared| shared.people.follow(config, event_type, &body)).await?;
        if let Some((collection, seq, level)) = last_face_sighting(config, event_type, &body) {
            let path = self
                .0
                .gallery
                .best_shot_link(&row.tenant_id, &collection.into(), seq, config.image_link_ttl_s)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(message) = last_face(config, &level, &path) {
                link.publish(&message).await?;
            }
        }
        if let Some((person, discovery, state)) = last_seen(config, &body) {
            let new = config.home_assistant && lock(&link.shared).announced.insert(person.clone());
            if new && let Err(error) = link.publish(&discovery).await {
                lock(&link.shared).announced.remove(&person);
                return Err(error);
            }
            link.publish(&state).await?;
        }
        let mut shared = lock(&link.shared);
        shared.status.published += 1;
        shared.status.last_publish_at_ms = Some(facegate_store::now_ms());
        Ok(())
    }
}

/// What a connection is made of.
struct Options {
    id: WebhookId,
    tenant_id: TenantId,
    config: MqttConfig,
    egress: EgressPolicy,
}

impl Options {
    /// The client's options, the broker's address checked against the egress policy now.
    async fn mqtt(&self) -> Result<MqttOptions, String> {
        let url = url::Url::parse(&self.config.url).map_err(|e| e.to_string())?;
        let tls = url.scheme() == "mqtts";
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let host = facegate_gallery::url_host(&url).ok_or("the broker URL has no host")?;
        let address = match host {
            url::Host::Domain(name) => {
                let found: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|a| a.ip())
                    .collect();
                let allowed = self.egress.filter_resolved(&name, found).map_err(|e| e.to_string())?;
                // TLS needs the name (certificate and SNI); a plain connection dials the checked address.
                if tls { name } else { allowed.first().map(IpAddr::to_string).ok_or("no address")? }
            }
            url::Host::Ipv4(v4) => checked(&self.egress, IpAddr::V4(v4))?,
            url::Host::Ipv6(v6) => checked(&self.egress, IpAddr::V6(v6))?,
        };
        let short: String = self.id.as_str().chars().filter(char::is_ascii_alphanumeric).take(8).collect();
        // One id per connection: a link reopened with new settings never takes the old one's session
        // over (the broker would publish the old one's last will).
        let connection = NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10_000;
        let client_id = format!("fg-{short}-{}-{connection}", std::process::id() % 1_000_000);
        let mut options = MqttOptions::new(client_id, address, port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(status_topic(&self.config), "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &self.config.username {
            options.set_credentials(user.clone(), self.config.password.clone().unwrap_or_default());
        }
        if tls {
            options.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls_config()?)));
        }
        Ok(options)
    }
}

fn checked(egress: &EgressPolicy, address: IpAddr) -> Result<String, String> {
    if egress.allows_address(address) {
        Ok(address.to_string())
    } else {
        Err(EgressRefusal::Address(address).to_string())
    }
}

/// TLS with the web's roots, on the ring provider as the rest of facegate.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Keeps a link's connection up while its hub and link live: connects, hands out acknowledgements,
/// announces on every connection and on Home Assistant's birth, reconnects after a pause that doubles.
async fn run(hub: std::sync::Weak<Hub>, id: WebhookId, options: Options, shared: Arc<Mutex<Shared>>) {
    let mut pause = Duration::from_secs(1);
    loop {
        let error = match options.mqtt().await {
            Ok(mqtt) => {
                let (client, eventloop) = AsyncClient::new(mqtt, REQUESTS);
                lock(&shared).client = Some(client.clone());
                serve(&hub, &options.tenant_id, &id, eventloop, &client, &shared, &mut pause).await
            }
            Err(error) => error,
        };
        {
            let mut state = lock(&shared);
            if state.closing {
                return;
            }
            tracing::warn!(integration = %id, %error, "MQTT broker link down");
            state.status.connected = false;
            state.status.last_error = Some(error.clone());
            state.client = None;
            state.fail_all(&error);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RECONNECT);
    }
}

/// Polls one connection until it fails; why it failed.
async fn serve(
    hub: &std::sync::Weak<Hub>,
    tenant_id: &TenantId,
    id: &WebhookId,
    mut eventloop: EventLoop,
    client: &AsyncClient,
    shared: &Arc<Mutex<Shared>>,
    pause: &mut Duration,
) -> String {
    let mut check = tokio::time::interval(EXISTS_EVERY);
    check.tick().await;
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            _ = check.tick() => {
                if let Some(hub) = hub.upgrade() && !hub.still_configured(tenant_id, id).await {
                    tracing::info!(integration = %id, "MQTT integration removed: closing its link");
                    hub.close_link(id);
                }
                continue;
            }
        };
        let event = match polled {
            Ok(event) => event,
            Err(error) => return error.to_string(),
        };
        match event {
            Event::Incoming(Incoming::ConnAck(_)) => {
                *pause = Duration::from_secs(1);
                {
                    let mut state = lock(shared);
                    state.status.connected = true;
                    state.status.connected_at_ms = Some(facegate_store::now_ms());
                    state.status.last_error = None;
                }
                tracing::info!(integration = %id, "MQTT broker link up");
                let _ = client.try_subscribe(HOME_ASSISTANT_STATUS, QoS::AtLeastOnce);
                on_connect(hub.clone(), id.clone(), true);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let mut state = lock(shared);
                if let Some(ack) = state.queued.pop_front() {
                    state.written.insert(pkid, ack);
                }
            }
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(waiting) = lock(shared).written.remove(&ack.pkid) {
                    let _ = waiting.send(Ok(()));
                }
            }
            Event::Incoming(Incoming::Publish(message))
                if message.topic == HOME_ASSISTANT_STATUS && message.payload.as_ref() == b"online" =>
            {
                on_connect(hub.clone(), id.clone(), false);
            }
            _ => {}
        }
    }
}

/// Says `online` (on a new connection) and announces everything to Home Assistant, in a task of its own
/// (the connection task must go on polling for the acknowledgements).
fn on_connect(hub: std::sync::Weak<Hub>, id: WebhookId, connected: bool) {
    tokio::spawn(async move {
        let Some(hub) = hub.upgrade() else { return };
        let Some(link) = hub.open_link(&id) else { return };
        if connected {
            let online = Message { topic: status_topic(&link.config), payload: "online".into(), retain: true };
            if let Err(error) = link.publish(&online).await {
                tracing::warn!(integration = %id, %error, "MQTT status not published");
            }
        }
        if let Err(error) = link.announce(&hub.gallery, true).await {
            tracing::warn!(integration = %id, %error, "Home Assistant discovery not published");
        }
    });
}
