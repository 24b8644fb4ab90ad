//! The events a server's cameras tell as they happen, for whoever listens (the API's event stream and
//! the console's live view): a broadcast channel that never waits for a listener. A listener that
//! falls behind loses the oldest events and is told how many.

use std::sync::Arc;

use facegate_store::TenantId;
use tokio::sync::broadcast;

use crate::watch::WatchEvent;

/// Events kept for listeners that fall behind.
const CAPACITY: usize = 1024;

/// A tenant's camera event.
pub type LiveEvent = Arc<(TenantId, WatchEvent)>;

/// The server's live camera events.
#[derive(Clone)]
pub struct LiveEvents(broadcast::Sender<LiveEvent>);

impl Default for LiveEvents {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl LiveEvents {
    /// Tells every listener (none listening is fine).
    pub fn publish(&self, tenant: &TenantId, event: WatchEvent) {
        let _ = self.0.send(Arc::new((tenant.clone(), event)));
    }

    /// A listener from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.0.subscribe()
    }
}
