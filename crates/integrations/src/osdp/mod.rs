//! facegate as an OSDP reader (peripheral device) on an access panel: one libosdp PD per door with a
//! reader, in a thread of its own (libosdp is polled every few milliseconds), over TCP (facegate dials
//! the panel or its RS-485 converter, the address held to the egress policy) or a serial line. The
//! Secure Channel is required: the PD enforces it with the door's SCBK (install mode, with the default
//! key, only when the door's settings ask for it). When facegate would grant, the person's card is
//! queued as a card read for the panel's next poll, and the panel's LED command is its verdict (green:
//! granted, red: denied), with the text it put on the reader's display before it; no verdict in time, or
//! no polling panel, is `offline`. The panel's buzzer and text commands are kept in the reader's status.
//! In install mode the panel may set a new key (OSDP KEYSET): the reader uses it at once, leaves install
//! mode, and hands the key to [`PanelHub::rotated_keys`] for the server to keep.

pub mod channel;
pub mod wiegand;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use facegate_gallery::{EgressPolicy, PanelReply, PanelVerdict, Panels, ReaderToRun};
use facegate_store::{CardCredential, CardFormat, DoorId, TenantId};
use libosdp::{
    OsdpCommand, OsdpEvent, OsdpEventCardRead, OsdpFlag, OsdpLedColor, PdCapEntity, PdCapability, PdInfoBuilder,
    PeripheralDevice,
};
use serde::Serialize;
use tokio::sync::oneshot;

pub use channel::StreamChannel;
pub use wiegand::{CardBits, card_bits, read_wiegand26};

/// How often the PD is refreshed (libosdp asks for at least every 50 ms).
const TICK: Duration = Duration::from_millis(5);
/// How long dialling the panel may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest pause between attempts to reach the panel.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// How a door's reader stands, as the API and the console show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReaderStatus {
    /// The transport is up (TCP connected, serial port open).
    pub connected: bool,
    /// The panel is polling this reader.
    pub online: bool,
    /// The Secure Channel is up.
    pub secure_channel: bool,
    /// When the panel last sent anything, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_poll_at_ms: Option<i64>,
    /// The panel's last verdict on a card facegate presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_verdict: Option<PanelVerdict>,
    /// Cards presented since this process started.
    pub cards_presented: u64,
    /// The text the panel last put on the reader's display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_text: Option<String>,
    /// When the panel last sounded the reader's buzzer, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_buzzer_at_ms: Option<i64>,
    /// When the panel last set the reader's key (install mode), ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_set_at_ms: Option<i64>,
    /// The last transport error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A key a panel set on a door's reader (OSDP KEYSET in install mode), for the server to keep.
pub struct RotatedKey {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The door.
    pub door_id: DoorId,
    /// The new Secure Channel base key.
    pub key: [u8; 16],
}

impl std::fmt::Debug for RotatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedKey").field("door_id", &self.door_id).finish_non_exhaustive()
    }
}

/// What a reader's thread and the presenters share.
#[derive(Default)]
struct Shared {
    status: ReaderStatus,
    /// The presenter waiting for the panel's verdict.
    waiting: Option<oneshot::Sender<PanelVerdict>>,
    /// The text the panel displayed since the card was presented.
    text: Option<String>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One door's reader: its thread, its queue of card reads, its state.
struct Reader {
    /// Its settings and key, as the thread runs them (a key the panel set included).
    config: Arc<Mutex<ReaderToRun>>,
    shared: Arc<Mutex<Shared>>,
    cards: mpsc::Sender<(CardBits, CardFormat)>,
    stop: Arc<AtomicBool>,
    /// One card at a time.
    turn: tokio::sync::Mutex<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The door readers of this server, by door.
#[derive(Clone)]
pub struct PanelHub(Arc<Hub>);

struct Hub {
    egress: EgressPolicy,
    readers: Mutex<HashMap<DoorId, Arc<Reader>>>,
    keys: tokio::sync::mpsc::UnboundedSender<RotatedKey>,
    rotated: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<RotatedKey>>>,
}

fn lock_config(config: &Mutex<ReaderToRun>) -> std::sync::MutexGuard<'_, ReaderToRun> {
    config.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PanelHub {
    /// No reader until one is opened; TCP panels are dialled only where `egress` allows.
    pub fn new(egress: EgressPolicy) -> Self {
        let (keys, rotated) = tokio::sync::mpsc::unbounded_channel();
        Self(Arc::new(Hub { egress, readers: Mutex::default(), keys, rotated: Mutex::new(Some(rotated)) }))
    }

    /// The keys panels set on readers (install mode), for whoever keeps them (once: the first caller).
    pub fn rotated_keys(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<RotatedKey>> {
        self.0.rotated.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn readers(&self) -> std::sync::MutexGuard<'_, HashMap<DoorId, Arc<Reader>>> {
        self.0.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a door's reader (again, when its settings or key changed).
    pub fn open(&self, config: ReaderToRun) {
        let mut readers = self.readers();
        // Settings equal to those running (a key the panel set, once kept, included) change nothing.
        if readers.get(&config.door_id).is_some_and(|r| *lock_config(&r.config) == config) {
            return;
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (cards, queued) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let door_id = config.door_id.clone();
        let config = Arc::new(Mutex::new(config));
        let thread = Thread {
            config: config.clone(),
            egress: self.0.egress.clone(),
            shared: shared.clone(),
            cards: queued,
            stop: stop.clone(),
            keys: self.0.keys.clone(),
        };
        let spawned = std::thread::Builder::new().name(format!("osdp-{door_id}")).spawn(move || thread.run());
        if let Err(error) = spawned {
            lock(&shared).status.last_error = Some(format!("no reader thread: {error}"));
        }
        readers.insert(door_id, Arc::new(Reader { config, shared, cards, stop, turn: tokio::sync::Mutex::new(()) }));
    }

    /// Opens every reader in `configs`.
    pub fn open_all(&self, configs: Vec<ReaderToRun>) {
        for config in configs {
            self.open(config);
        }
    }

    /// Stops a door's reader (removed, or its door deleted).
    pub fn close(&self, door_id: &DoorId) {
        let closed = self.readers().remove(door_id);
        drop(closed);
    }

    /// How a door's reader stands in this process (none when it runs elsewhere or not at all).
    pub fn status(&self, door_id: &DoorId) -> Option<ReaderStatus> {
        self.readers().get(door_id).map(|r| lock(&r.shared).status.clone())
    }
}

#[async_trait::async_trait]
impl Panels for PanelHub {
    async fn present(&self, door_id: &DoorId, card: &CardCredential, timeout: Duration) -> PanelReply {
        let offline = PanelReply { verdict: PanelVerdict::Offline, text: None };
        let Some(reader) = self.readers().get(door_id).cloned() else {
            return offline;
        };
        let _turn = reader.turn.lock().await;
        let (tell, told) = oneshot::channel();
        {
            let mut shared = lock(&reader.shared);
            if !(shared.status.online && shared.status.secure_channel) {
                return offline;
            }
            shared.waiting = Some(tell);
            shared.text = None;
            shared.status.cards_presented += 1;
        }
        if reader.cards.send((card_bits(card), card.format)).is_err() {
            return offline;
        }
        let verdict = match tokio::time::timeout(timeout, told).await {
            Ok(Ok(verdict)) => verdict,
            _ => PanelVerdict::Offline,
        };
        let mut shared = lock(&reader.shared);
        shared.waiting = None;
        shared.status.last_verdict = Some(verdict);
        PanelReply { verdict, text: shared.text.take() }
    }
}

/// The PD's description: address, speed, what it can do, the Secure Channel required.
fn pd_info(config: &ReaderToRun) -> Result<PdInfoBuilder, String> {
    let settings = &config.settings;
    let flag = if settings.install_mode { OsdpFlag::InstallMode } else { OsdpFlag::EnforceSecure };
    let baud = i32::try_from(settings.baud_rate).map_err(|e| e.to_string())?;
    Ok(PdInfoBuilder::new()
        .name("facegate")
        .map_err(|e| e.to_string())?
        .address(i32::from(settings.address))
        .map_err(|e| e.to_string())?
        .baud_rate(baud)
        .map_err(|e| e.to_string())?
        .flag(flag)
        .capability(PdCapability::CommunicationSecurity(PdCapEntity::new(1, 1)))
        .capability(PdCapability::CardDataFormat(PdCapEntity::new(1, 0)))
        .capability(PdCapability::LedControl(PdCapEntity::new(1, 1)))
        .capability(PdCapability::AudibleOutput(PdCapEntity::new(1, 1)))
        .capability(PdCapability::TextOutput(PdCapEntity::new(1, 1)))
        .secure_channel_key(config.key))
}

/// The card read event of a credential's bits: Wiegand, or raw bytes.
fn card_event(card: CardBits, format: CardFormat) -> Result<OsdpEvent, libosdp::OsdpError> {
    let read = match format {
        CardFormat::Raw => OsdpEventCardRead::new_raw(card.data),
        CardFormat::Wiegand26 | CardFormat::Wiegand34 => OsdpEventCardRead::new_wiegand(card.bits, card.data)?,
    };
    Ok(OsdpEvent::CardRead(read))
}

/// The verdict an LED command says: green granted, red denied (the temporary state when one is set).
fn verdict_of(command: &OsdpCommand) -> Option<PanelVerdict> {
    let OsdpCommand::Led(led) = command else { return None };
    let colour =
        if led.temporary.on_color == OsdpLedColor::None { led.permanent.on_color } else { led.temporary.on_color };
    match colour {
        OsdpLedColor::Green => Some(PanelVerdict::Granted),
        OsdpLedColor::Red => Some(PanelVerdict::Denied),
        _ => None,
    }
}

/// What a reader's thread holds.
struct Thread {
    config: Arc<Mutex<ReaderToRun>>,
    egress: EgressPolicy,
    shared: Arc<Mutex<Shared>>,
    cards: mpsc::Receiver<(CardBits, CardFormat)>,
    stop: Arc<AtomicBool>,
    keys: tokio::sync::mpsc::UnboundedSender<RotatedKey>,
}

impl Thread {
    /// Keeps a door's reader on its panel until it is stopped: opens the transport, runs the PD, reopens
    /// after a pause that doubles when the transport fails (with the key the panel set, if it set one).
    fn run(self) {
        let mut pause = Duration::from_millis(200);
        while !self.stop.load(Ordering::Acquire) {
            let config = lock_config(&self.config).clone();
            match channel::open(&config.settings, &self.egress, CONNECT_TIMEOUT) {
                Ok((channel, health)) => {
                    pause = Duration::from_millis(200);
                    lock(&self.shared).status.connected = true;
                    let why = self.serve(&config, channel, &health);
                    // The link is down; what the panel last did stays on show.
                    let status = &mut lock(&self.shared).status;
                    (status.connected, status.online, status.secure_channel) = (false, false, false);
                    status.last_error = why;
                }
                Err(error) => lock(&self.shared).status.last_error = Some(error),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_RETRY);
        }
    }

    /// Runs the PD over one open transport until it fails or the reader stops; why it ended.
    fn serve(&self, config: &ReaderToRun, channel: StreamChannel, health: &channel::Health) -> Option<String> {
        let info = match pd_info(config) {
            Ok(info) => info,
            Err(error) => return Some(error),
        };
        let mut pd = match PeripheralDevice::new(info, Box::new(channel)) {
            Ok(pd) => pd,
            Err(error) => return Some(error.to_string()),
        };
        let (answers, running, keys) = (self.shared.clone(), self.config.clone(), self.keys.clone());
        pd.set_command_callback(move |command| {
            let mut shared = lock(&answers);
            match command {
                OsdpCommand::Text(text) => {
                    let shown = String::from_utf8_lossy(&text.data).trim().to_string();
                    shared.text = Some(shown.clone());
                    shared.status.last_text = Some(shown);
                }
                OsdpCommand::Buzzer(_) => shared.status.last_buzzer_at_ms = Some(facegate_store::now_ms()),
                OsdpCommand::KeySet(keyset) => {
                    // libosdp takes the key once it has acknowledged it: the next connection uses it too.
                    let Ok(key) = <[u8; 16]>::try_from(keyset.data.as_slice()) else { return -1 };
                    let mut config = lock_config(&running);
                    // The panel may send it again (a lost answer): it is kept once.
                    if config.key == key && !config.settings.install_mode {
                        return 0;
                    }
                    config.key = key;
                    config.settings.install_mode = false;
                    shared.status.key_set_at_ms = Some(facegate_store::now_ms());
                    let rotated =
                        RotatedKey { tenant_id: config.tenant_id.clone(), door_id: config.door_id.clone(), key };
                    let _ = keys.send(rotated);
                }
                other => {
                    if let Some(verdict) = verdict_of(other)
                        && let Some(waiting) = shared.waiting.take()
                    {
                        let _ = waiting.send(verdict);
                    }
                }
            }
            0
        });
        while !self.stop.load(Ordering::Acquire) {
            pd.refresh();
            {
                let mut state = lock(&self.shared);
                state.status.online = pd.is_online();
                state.status.secure_channel = pd.is_sc_active();
                state.status.last_poll_at_ms = health.last_read_ms().or(state.status.last_poll_at_ms);
            }
            while let Ok((card, format)) = self.cards.try_recv() {
                if let Err(error) = card_event(card, format).and_then(|e| pd.notify_event(e)) {
                    return Some(format!("the card read was not queued: {error}"));
                }
            }
            if let Some(error) = health.failure() {
                return Some(error);
            }
            std::thread::sleep(TICK);
        }
        None
    }
}
