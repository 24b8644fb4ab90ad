//! The work that runs beside requests. Webhook delivery from the outbox: an HTTP sender held to the
//! egress policy at connect time (its resolver drops every address the policy refuses, and IP literals are
//! checked before connecting), and a dispatcher that sends with bounded concurrency per receiver, per
//! tenant and overall, recording each attempt as it ends, so one slow or hanging receiver delays only
//! itself; a receiver that fails backs off on its own. Long-lived servers run it in the background
//! (woken after every successful write, and every second for retries); hosts whose process may freeze
//! between requests (Lambda) drain inline, after the response is ready, within the invocation.
//! Rows of a tenant's MQTT integration go to its broker link (`facegate_integrations::MqttHub`) instead,
//! under the same limits and retries.
//! Retention: a periodic sweep (expired audit events and queued events, expired consents).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use facegate_gallery::{DeliveryRound, EgressPolicy, EgressRefusal, Gallery, WebhookSender};
use facegate_integrations::MqttHub;
use facegate_store::{DeliveryAttempt, DeliveryState, DueDelivery, TenantId, WebhookId};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::AppState;

/// Deliveries in flight at once, overall.
const MAX_IN_FLIGHT: usize = 32;
/// Deliveries in flight at once to one webhook (one receiver).
const MAX_PER_WEBHOOK: usize = 4;
/// Deliveries in flight at once for one tenant's webhooks.
const MAX_PER_TENANT: usize = 16;
/// Rows fetched per look at the outbox.
const FETCH: u32 = 64;
/// How long one webhook request may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to a receiver may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the background loop looks for retries that came due.
const TICK: Duration = Duration::from_secs(1);
/// How long an inline drain may hold a response.
const INLINE_BUDGET: Duration = Duration::from_secs(2);
/// Longest pause of a failing receiver.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Webhook delivery state shared by handlers.
pub(crate) struct Deliveries {
    sender: Arc<HttpSender>,
    /// The tenants' MQTT broker links.
    pub(crate) mqtt: MqttHub,
    wake: Notify,
    /// Drain inline after each write, for at most this long (Lambda); `None`: the background loop does.
    inline: Option<Duration>,
    /// Receivers backing off after failures.
    backoff: Backoff,
}

/// Receivers backing off after failures: consecutive failures, and until when.
#[derive(Default)]
struct Backoff(Mutex<HashMap<WebhookId, (u32, Instant)>>);

impl Deliveries {
    pub(crate) fn new(inline: bool, gallery: &Arc<Gallery>) -> Self {
        let egress = gallery.egress().clone();
        Self {
            mqtt: MqttHub::new(gallery.clone(), egress.clone()),
            sender: Arc::new(HttpSender::new(egress)),
            wake: Notify::new(),
            inline: inline.then_some(INLINE_BUDGET),
            backoff: Backoff::default(),
        }
    }
}

impl Backoff {
    /// Webhooks whose receiver is backing off now.
    fn paused(&self) -> Vec<WebhookId> {
        let mut backoff = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.retain(|_, (_, until)| *until > Instant::now());
        backoff.keys().cloned().collect()
    }

    /// Notes how a receiver answered: a failure pauses it (1 s, doubling per failure in a row, at most
    /// [`MAX_BACKOFF`]); a success ends its pause.
    fn note(&self, webhook_id: &WebhookId, delivered: bool) {
        let mut backoff = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if delivered {
            backoff.remove(webhook_id);
            return;
        }
        let failures = backoff.get(webhook_id).map_or(0, |(n, _)| *n).saturating_add(1);
        let pause = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF);
        backoff.insert(webhook_id.clone(), (failures, Instant::now() + pause));
    }
}

/// Resolves receivers' names, keeping only the addresses the egress policy allows.
struct EgressResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, host) = (self.policy.clone(), name.as_str().to_string());
        Box::pin(async move {
            if !policy.may_resolve(&host) {
                return Err(Box::new(EgressRefusal::Host(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let found: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect();
            let allowed = policy.filter_resolved(&host, found)?;
            let addresses: reqwest::dns::Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addresses)
        })
    }
}

/// POSTs webhook bodies over HTTP(S), only where the egress policy allows: no proxy, no redirects.
struct HttpSender {
    client: reqwest::Client,
    policy: EgressPolicy,
}

impl HttpSender {
    fn new(policy: EgressPolicy) -> Self {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(EgressResolver { policy: policy.clone() }))
            .build()
            .unwrap_or_default();
        Self { client, policy }
    }
}

/// The egress refusal behind a failed send, if that is why it failed.
fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressRefusal> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<EgressRefusal>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

#[async_trait::async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        // IP literals are connected to without a lookup: the policy is applied to them here.
        let literal = url::Url::parse(url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        });
        if let Some(address) = literal.filter(|a| !self.policy.allows_address(*a)) {
            return Err(EgressRefusal::Address(address).to_string());
        }
        let mut request = self.client.post(url).header("content-type", "application/json").body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.map(|r| r.status().as_u16()).map_err(|e| match refusal(&e) {
            Some(refused) => refused.to_string(),
            None => e.without_url().to_string(),
        })
    }
}

/// Deliveries in flight: by outbox row, with their webhook and tenant.
#[derive(Default)]
struct InFlight(HashMap<i64, (WebhookId, TenantId)>);

impl InFlight {
    fn count(&self, matches: impl Fn(&(WebhookId, TenantId)) -> bool) -> usize {
        self.0.values().filter(|v| matches(v)).count()
    }

    /// Webhooks at their limit now.
    fn full_webhooks(&self) -> Vec<WebhookId> {
        let mut counts: HashMap<&WebhookId, usize> = HashMap::new();
        for (webhook, _) in self.0.values() {
            *counts.entry(webhook).or_default() += 1;
        }
        counts.into_iter().filter(|(_, n)| *n >= MAX_PER_WEBHOOK).map(|(w, _)| w.clone()).collect()
    }

    /// Whether `row` may start now.
    fn admits(&self, row: &DueDelivery) -> bool {
        let webhook = &row.delivery.webhook_id;
        self.0.len() < MAX_IN_FLIGHT
            && !self.0.contains_key(&row.delivery.seq)
            && self.count(|(w, _)| w == webhook) < MAX_PER_WEBHOOK
            && self.count(|(_, t)| *t == row.tenant_id) < MAX_PER_TENANT
    }
}

/// Sends due deliveries until none is due and none is in flight (`until_idle`), or for as long as the
/// process lives; what was sent.
async fn dispatch(state: &AppState, until_idle: bool) -> DeliveryRound {
    let deliveries = &state.deliveries;
    let mut total = DeliveryRound::default();
    let mut running: JoinSet<DeliveryAttempt> = JoinSet::new();
    let mut in_flight = InFlight::default();
    loop {
        let mut started = 0;
        if in_flight.0.len() < MAX_IN_FLIGHT {
            let mut skip = deliveries.backoff.paused();
            skip.extend(in_flight.full_webhooks());
            skip.extend(deliveries.mqtt.offline());
            let per_webhook = MAX_PER_WEBHOOK as u32;
            match state.gallery.due_deliveries(FETCH, per_webhook, skip).await {
                Ok(rows) => {
                    for row in rows {
                        if !in_flight.admits(&row) {
                            continue;
                        }
                        let owner = (row.delivery.webhook_id.clone(), row.tenant_id.clone());
                        in_flight.0.insert(row.delivery.seq, owner);
                        let (gallery, sender) = (state.gallery.clone(), deliveries.sender.clone());
                        let mqtt = deliveries.mqtt.clone();
                        running.spawn(async move { send(&gallery, sender.as_ref(), &mqtt, row).await });
                        started += 1;
                    }
                }
                Err(error) => tracing::warn!(%error, "reading due webhook deliveries failed"),
            }
        }
        if running.is_empty() && started == 0 && until_idle {
            return total;
        }
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => {
                let mut attempts: Vec<DeliveryAttempt> = done.into_iter().collect();
                while let Some(more) = running.try_join_next() {
                    attempts.extend(more);
                }
                record(state, &mut in_flight, &attempts, &mut total).await;
            }
            () = deliveries.wake.notified(), if !until_idle => {}
            () = tokio::time::sleep(TICK), if !until_idle || running.is_empty() => {}
        }
    }
}

async fn send(gallery: &Gallery, sender: &HttpSender, mqtt: &MqttHub, row: DueDelivery) -> DeliveryAttempt {
    if facegate_gallery::is_broker(&row.url) {
        gallery.send_to_broker(mqtt, &row).await
    } else {
        gallery.send_delivery(sender, &row).await
    }
}

/// Records finished attempts together and notes each receiver's answer.
async fn record(state: &AppState, in_flight: &mut InFlight, attempts: &[DeliveryAttempt], total: &mut DeliveryRound) {
    if let Err(error) = state.gallery.record_deliveries(attempts).await {
        tracing::warn!(%error, "recording webhook deliveries failed; they will be sent again");
    }
    for attempt in attempts {
        let delivered = attempt.state == DeliveryState::Delivered;
        if let Some((webhook_id, _)) = in_flight.0.remove(&attempt.seq) {
            state.deliveries.backoff.note(&webhook_id, delivered);
        }
        total.attempted += 1;
        total.delivered += usize::from(delivered);
    }
}

/// Sends every due delivery until none is due; what was sent.
pub async fn deliver_pending(state: &AppState) -> DeliveryRound {
    dispatch(state, true).await
}

/// Runs webhook delivery in the background for as long as the process lives.
pub fn spawn_deliveries(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        dispatch(&state, false).await;
    })
}

/// After a successful write (anything but GET/HEAD), wakes the delivery loop, or drains inline.
pub(crate) async fn after_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let write = !matches!(*request.method(), Method::GET | Method::HEAD);
    let response = next.run(request).await;
    if write && response.status().is_success() {
        match state.deliveries.inline {
            Some(budget) => {
                let _ = tokio::time::timeout(budget, deliver_pending(&state)).await;
            }
            None => state.deliveries.wake.notify_one(),
        }
    }
    response
}

/// Applies retention now (by the state's clock); what it did (failures are logged).
pub async fn sweep(state: &AppState) -> facegate_gallery::Sweep {
    match state.gallery.sweep().await {
        Ok(sweep) => {
            if sweep.events_expired > 0 || sweep.subjects_erased > 0 {
                tracing::info!(events = sweep.events_expired, subjects = sweep.subjects_erased, "retention applied");
            }
            sweep
        }
        Err(error) => {
            tracing::warn!(%error, "retention sweep failed");
            facegate_gallery::Sweep::default()
        }
    }
}

/// Sweeps every `every` for as long as the process lives (the first sweep at once).
pub fn spawn_sweeper(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            sweep(&state).await;
            state.deliveries.wake.notify_one();
            tokio::time::sleep(every).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    async fn resolve(policy: EgressPolicy, host: &str) -> Result<Vec<IpAddr>, String> {
        let name: reqwest::dns::Name = host.parse().map_err(|_| "name".to_string())?;
        let resolver = EgressResolver { policy };
        match resolver.resolve(name).await {
            Ok(addresses) => Ok(addresses.map(|a| a.ip()).collect()),
            Err(error) => Err(error.to_string()),
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_internal_addresses_are_never_dialled() {
        // `localhost` resolves to loopback (from /etc/hosts, no network): as a rebinding name would.
        let refused = resolve(EgressPolicy::default(), "localhost").await.expect_err("refused");
        assert!(refused.starts_with("refused by egress policy"), "{refused}");
        let allowed = resolve(EgressPolicy::loopback_only(), "localhost").await.expect("allowed");
        assert!(!allowed.is_empty() && allowed.iter().all(|a| a.is_loopback()), "{allowed:?}");
        let closed = EgressPolicy::new(false, &["127.0.0.0/8".into()]).expect("policy");
        let unlisted = resolve(closed, "hooks.example.org").await.expect_err("not looked up");
        assert!(unlisted.contains("not allowed"), "{unlisted}");
    }

    #[tokio::test]
    async fn ip_literals_outside_the_policy_are_refused_before_connecting() {
        let sender = HttpSender::new(EgressPolicy::new(false, &["127.0.0.2/32".into()]).expect("policy"));
        for url in ["http://127.0.0.1:9/x", "http://[::ffff:127.0.0.1]:9/x", "http://169.254.169.254/x"] {
            let refused = sender.send(url, &[], "{}").await.expect_err("refused");
            assert!(refused.starts_with("refused by egress policy"), "{url}: {refused}");
        }
    }

    #[test]
    fn a_failing_receiver_backs_off_and_a_success_ends_it() {
        let backoff = Backoff::default();
        let hook = WebhookId::from("w1");
        backoff.note(&hook, false);
        assert_eq!(backoff.paused(), vec![hook.clone()]);
        backoff.note(&hook, true);
        assert!(backoff.paused().is_empty());
    }
}
