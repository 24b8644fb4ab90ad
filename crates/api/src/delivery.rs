//! The work that runs beside requests. Webhook delivery from the outbox: an HTTP sender, a background
//! loop for long-lived servers (woken after every successful write, and every second for retries), and
//! an inline drain for hosts whose process may freeze between requests (Lambda: after the response is
//! ready, within the invocation). Retention: a periodic sweep (expired audit events, expired consents).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use facegate_gallery::{DeliveryRound, WebhookSender};
use tokio::sync::Notify;

use crate::AppState;

/// Rows sent per store round trip.
const BATCH: u32 = 32;
/// How long one webhook request may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the background loop looks for retries that came due.
const TICK: Duration = Duration::from_secs(1);
/// How long an inline drain may hold a response.
const INLINE_BUDGET: Duration = Duration::from_secs(2);

/// Webhook delivery state shared by handlers.
pub(crate) struct Deliveries {
    sender: HttpSender,
    wake: Notify,
    /// Drain inline after each write, for at most this long (Lambda); `None`: the background loop does.
    inline: Option<Duration>,
}

impl Deliveries {
    pub(crate) fn new(inline: bool) -> Self {
        Self { sender: HttpSender::default(), wake: Notify::new(), inline: inline.then_some(INLINE_BUDGET) }
    }
}

/// POSTs webhook bodies over HTTP(S).
struct HttpSender {
    client: reqwest::Client,
}

impl Default for HttpSender {
    fn default() -> Self {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

#[async_trait::async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, url: &str, headers: &[(&'static str, String)], body: &str) -> Result<u16, String> {
        let mut request = self.client.post(url).header("content-type", "application/json").body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.map(|r| r.status().as_u16()).map_err(|e| e.without_url().to_string())
    }
}

/// Sends every due delivery (in batches) until none is due; what was sent.
pub async fn deliver_pending(state: &AppState) -> DeliveryRound {
    let mut total = DeliveryRound::default();
    loop {
        match state.gallery.deliver_due(&state.deliveries.sender, BATCH).await {
            Ok(round) if round.attempted > 0 => {
                total.attempted += round.attempted;
                total.delivered += round.delivered;
            }
            Ok(_) => return total,
            Err(error) => {
                tracing::warn!(%error, "webhook delivery round failed");
                return total;
            }
        }
    }
}

/// Runs webhook delivery in the background for as long as the process lives.
pub fn spawn_deliveries(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deliveries = state.deliveries.clone();
        loop {
            let round = deliver_pending(&state).await;
            if round.attempted > 0 {
                tracing::debug!(attempted = round.attempted, delivered = round.delivered, "webhooks sent");
            }
            tokio::select! {
                () = deliveries.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
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
    match state.gallery.sweep(state.now()).await {
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

/// Shared handle type.
pub(crate) type SharedDeliveries = Arc<Deliveries>;
