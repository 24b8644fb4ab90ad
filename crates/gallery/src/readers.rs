//! Door readers: a door's OSDP output, with which facegate acts as a card reader on an access panel.
//! When facegate would grant, it presents the person's card for the panel's door system to the panel
//! and the panel decides: its verdict (`panel_granted`, `panel_denied`, `panel_offline`) is the door's
//! answer and goes into the door's trail; a person without a card for that system is denied
//! (`no_credential`). The link itself (the OSDP Secure Channel over TCP or a serial line) is the
//! integrations room's, behind [`Panels`].

use std::time::Duration;

use facegate_store::{
    CardCredential, CardFormat, ChangeAction, CollectionId, DoorId, ReaderSettings, ReaderTransport, StoredReader,
    SubjectId, TenantId,
};
use serde::{Deserialize, Serialize};

use crate::collections::{Actor, Missing, missing};
use crate::egress::EgressRefusal;
use crate::{Gallery, GalleryError};

/// Most cards one subject carries.
pub const MAX_CARDS: usize = 8;
/// Most door readers one tenant runs (each is a connection and a thread on the server).
pub const MAX_READERS: usize = 64;
/// OSDP addresses a reader may take (0x7F is the broadcast address).
pub const MAX_READER_ADDRESS: u8 = 126;
/// Line speeds a reader may use.
pub const BAUD_RATES: [u32; 6] = [9600, 19_200, 38_400, 57_600, 115_200, 230_400];
/// Longest credential system name.
const MAX_SYSTEM_CHARS: usize = 64;

/// What the panel said about a card facegate presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PanelVerdict {
    /// The panel granted (its LED turned green).
    Granted,
    /// The panel denied (its LED turned red).
    Denied,
    /// No verdict in time: the panel is unreachable, not polling, or the Secure Channel is down.
    Offline,
}

/// What the panel answered a card with: its verdict, and the text it put on the reader's display before
/// it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelReply {
    /// Granted, denied, or no verdict in time.
    pub verdict: PanelVerdict,
    /// The panel's text for the person (`Welcome`, `Card expired`, ...).
    pub text: Option<String>,
}

/// The access panels facegate is a reader of; implemented by the integrations room.
#[async_trait::async_trait]
pub trait Panels: Send + Sync {
    /// Presents `card` at the door's reader and waits at most `timeout` for the panel's verdict.
    async fn present(&self, door_id: &DoorId, card: &CardCredential, timeout: Duration) -> PanelReply;
}

/// Who keeps a key a panel set on a reader in install mode (the trail says so).
pub const PANEL_KEY_ID: &str = "osdp-panel";

/// A door's reader as set (`PUT /v1/doors/{door}/reader`): its settings and, write-only, its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReaderSpec {
    /// How and where the panel is reached, its address, speed and credential system.
    pub settings: ReaderSettings,
    /// The Secure Channel base key (SCBK) the panel uses for this reader: 32 hex digits. Never shown
    /// again, sealed at rest; left out when replacing, the stored one stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A door's reader as shown (no key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DoorReader {
    /// The door.
    pub door_id: DoorId,
    /// Its settings.
    pub settings: ReaderSettings,
    /// When set, ms since the epoch.
    pub updated_at_ms: i64,
}

/// A reader to run: where it is, and its key, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct ReaderToRun {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The door.
    pub door_id: DoorId,
    /// Its settings.
    pub settings: ReaderSettings,
    /// The SCBK.
    pub key: [u8; 16],
}

impl std::fmt::Debug for ReaderToRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderToRun").field("door_id", &self.door_id).field("settings", &self.settings).finish()
    }
}

/// Reader settings or cards that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReaderProblem {
    /// An address out of range.
    #[error("`address` must be 0 to {MAX_READER_ADDRESS}")]
    Address,
    /// A speed that is not a standard one.
    #[error("`baud_rate` must be one of 9600, 19200, 38400, 57600, 115200, 230400")]
    BaudRate,
    /// A TCP target that is not `host:port`, or outside the egress policy.
    #[error("`target` must be host:port the server may dial: {0}")]
    Target(String),
    /// A serial device the operator did not list.
    #[error("`target` must be a serial port the operator listed (osdp_serial_ports)")]
    SerialPort,
    /// A key that is not 32 hex digits, or none for a new reader.
    #[error("`key` must be 32 hex digits (16 bytes), and is needed for a new reader")]
    Key,
    /// A verdict timeout out of range.
    #[error("`verdict_timeout_ms` must be 100 to 10000")]
    Timeout,
    /// A credential system name that is empty, too long or not plain.
    #[error("credential systems are 1 to {MAX_SYSTEM_CHARS} lowercase letters, digits, `-` or `_`")]
    System,
    /// A card whose numbers do not fit its format.
    #[error("a {0} card takes a facility code up to {1} and a card number up to {2}")]
    Card(&'static str, u64, u64),
    /// Too many cards, or two for the same system.
    #[error("at most {MAX_CARDS} cards, one per credential system")]
    Cards,
    /// The tenant already runs [`MAX_READERS`] door readers.
    #[error("at most {MAX_READERS} door readers per tenant")]
    TooMany,
}

fn check_system(system: &str) -> Result<(), ReaderProblem> {
    let fine = !system.is_empty()
        && system.len() <= MAX_SYSTEM_CHARS
        && system.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if fine { Ok(()) } else { Err(ReaderProblem::System) }
}

/// Checks a subject's cards: their formats' ranges, one per system, at most [`MAX_CARDS`].
pub fn check_cards(cards: &[CardCredential]) -> Result<(), ReaderProblem> {
    let mut systems: Vec<&str> = cards.iter().map(|c| c.system.as_str()).collect();
    systems.sort_unstable();
    systems.dedup();
    if cards.len() > MAX_CARDS || systems.len() != cards.len() {
        return Err(ReaderProblem::Cards);
    }
    for card in cards {
        check_system(&card.system)?;
        let (name, facility, number) = match card.format {
            CardFormat::Wiegand26 => ("wiegand26", 0xFF, 0xFFFF),
            CardFormat::Wiegand34 => ("wiegand34", 0xFFFF, 0xFFFF),
            // The API's schema says int64 (what JSON clients and the OpenAPI tools read): up to 2^63 - 1.
            CardFormat::Raw => ("raw", 0, i64::MAX.unsigned_abs()),
        };
        if u64::from(card.facility_code) > facility || card.card_number > number {
            return Err(ReaderProblem::Card(name, facility, number));
        }
    }
    Ok(())
}

fn parse_key(hex_text: &str) -> Result<[u8; 16], ReaderProblem> {
    let bytes = hex::decode(hex_text.trim()).map_err(|_| ReaderProblem::Key)?;
    bytes.try_into().map_err(|_| ReaderProblem::Key)
}

fn key_binding(door_id: &DoorId) -> String {
    format!("facegate/reader-key/v1/{door_id}")
}

impl Gallery {
    fn check_reader(&self, settings: &ReaderSettings) -> Result<(), ReaderProblem> {
        if settings.address > MAX_READER_ADDRESS {
            return Err(ReaderProblem::Address);
        }
        if !BAUD_RATES.contains(&settings.baud_rate) {
            return Err(ReaderProblem::BaudRate);
        }
        if !(100..=10_000).contains(&settings.verdict_timeout_ms) {
            return Err(ReaderProblem::Timeout);
        }
        check_system(&settings.credential_system)?;
        match settings.transport {
            ReaderTransport::Tcp => {
                let url = url::Url::parse(&format!("tcp://{}", settings.target))
                    .map_err(|e| ReaderProblem::Target(e.to_string()))?;
                let plain = url.path().is_empty() && url.port().is_some() && url.username().is_empty();
                if !plain || url.password().is_some() || url.query().is_some() {
                    return Err(ReaderProblem::Target("not host:port".into()));
                }
                let host = crate::url_host(&url).ok_or_else(|| ReaderProblem::Target("no host".into()))?;
                self.camera_egress
                    .check_host(&host)
                    .map_err(|e: EgressRefusal| ReaderProblem::Target(e.to_string()))?;
            }
            ReaderTransport::Serial => {
                if !self.serial_ports.contains(&settings.target) {
                    return Err(ReaderProblem::SerialPort);
                }
            }
        }
        Ok(())
    }

    /// Sets (or replaces) a door's reader. A new reader needs its key; a replaced one keeps its key
    /// unless a new one is given.
    ///
    /// # Errors
    /// [`GalleryError::Reader`] for settings that cannot be stored; [`GalleryError::NotFound`] for
    /// another tenant's or a missing door; store and crypto failures.
    pub async fn set_reader(
        &self,
        actor: &Actor,
        door_id: &DoorId,
        spec: ReaderSpec,
    ) -> Result<DoorReader, GalleryError> {
        self.check_reader(&spec.settings)?;
        let existing = self.store.reader(&actor.tenant_id, door_id).await.map_err(missing(Missing::Door))?;
        let cipher = &self.secrets(&actor.tenant_id).await?.cipher;
        if existing.is_none() {
            let readers = self.store.all_readers().await?;
            if readers.iter().filter(|(tenant, _, _)| *tenant == actor.tenant_id).count() >= MAX_READERS {
                return Err(ReaderProblem::TooMany.into());
            }
        }
        let key = match (&spec.key, existing) {
            (Some(text), _) => cipher.seal_data(&parse_key(text)?, &key_binding(door_id))?,
            (None, Some(stored)) => stored.key,
            (None, None) => return Err(ReaderProblem::Key.into()),
        };
        let stored = StoredReader { settings: spec.settings, key, updated_at_ms: self.now() };
        let details = serde_json::json!({
            "transport": stored.settings.transport,
            "address": stored.settings.address,
            "install_mode": stored.settings.install_mode,
            "key_changed": spec.key.is_some(),
        });
        let audit = self.change(actor, ChangeAction::ReaderSet, door_id, details);
        self.store
            .set_reader(&actor.tenant_id, door_id, Some(&stored), &audit)
            .await
            .map_err(missing(Missing::Door))?;
        Ok(DoorReader { door_id: door_id.clone(), settings: stored.settings, updated_at_ms: stored.updated_at_ms })
    }

    /// A door's reader, if it has one.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for another tenant's or a missing door.
    pub async fn reader(&self, actor: &Actor, door_id: &DoorId) -> Result<Option<DoorReader>, GalleryError> {
        let stored = self.store.reader(&actor.tenant_id, door_id).await.map_err(missing(Missing::Door))?;
        Ok(stored.map(|s| DoorReader {
            door_id: door_id.clone(),
            settings: s.settings,
            updated_at_ms: s.updated_at_ms,
        }))
    }

    /// Removes a door's reader (its sealed key erased); the door decides alone again.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a door without a reader, another tenant's or a missing one.
    pub async fn remove_reader(&self, actor: &Actor, door_id: &DoorId) -> Result<(), GalleryError> {
        if self.reader(actor, door_id).await?.is_none() {
            return Err(GalleryError::NotFound(Missing::Reader));
        }
        let audit = self.change(actor, ChangeAction::ReaderRemoved, door_id, serde_json::json!({}));
        self.store.set_reader(&actor.tenant_id, door_id, None, &audit).await.map_err(missing(Missing::Door))
    }

    async fn to_run(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        stored: StoredReader,
    ) -> Result<ReaderToRun, GalleryError> {
        let cipher = &self.secrets(tenant_id).await?.cipher;
        let key = cipher.open_data(&stored.key, &key_binding(door_id))?;
        let key: [u8; 16] = key.as_slice().try_into().map_err(|_| GalleryError::Crypto("reader key length".into()))?;
        Ok(ReaderToRun { tenant_id: tenant_id.clone(), door_id: door_id.clone(), settings: stored.settings, key })
    }

    /// A door's reader to run (its key opened), if it has one.
    ///
    /// # Errors
    /// As [`Gallery::reader`]; crypto failures.
    pub async fn reader_to_run(&self, actor: &Actor, door_id: &DoorId) -> Result<Option<ReaderToRun>, GalleryError> {
        match self.store.reader(&actor.tenant_id, door_id).await.map_err(missing(Missing::Door))? {
            Some(stored) => Ok(Some(self.to_run(&actor.tenant_id, door_id, stored).await?)),
            None => Ok(None),
        }
    }

    /// Every tenant's door readers to run (a server opens them at start).
    ///
    /// # Errors
    /// Store and crypto failures.
    pub async fn readers_to_run(&self) -> Result<Vec<ReaderToRun>, GalleryError> {
        let mut readers = Vec::new();
        for (tenant_id, door_id, stored) in self.store.all_readers().await? {
            readers.push(self.to_run(&tenant_id, &door_id, stored).await?);
        }
        Ok(readers)
    }

    /// Replaces a subject's cards.
    ///
    /// # Errors
    /// [`GalleryError::Reader`] for cards that cannot be stored; [`GalleryError::NotFound`].
    pub async fn set_credentials(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        cards: Vec<CardCredential>,
    ) -> Result<Vec<CardCredential>, GalleryError> {
        check_cards(&cards)?;
        let systems: Vec<&str> = cards.iter().map(|c| c.system.as_str()).collect();
        let audit =
            self.change(actor, ChangeAction::CredentialsSet, subject_id, serde_json::json!({ "systems": systems }));
        self.store
            .set_credentials(&actor.tenant_id, collection_id, subject_id, &cards, &audit)
            .await
            .map_err(missing(Missing::Subject))?;
        Ok(cards)
    }

    /// A subject's cards.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a subject not in the tenant's collection.
    pub async fn credentials(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> Result<Vec<CardCredential>, GalleryError> {
        self.subject(actor, collection_id, subject_id).await?;
        Ok(self.store.credentials(&actor.tenant_id, subject_id).await?)
    }

    /// What the door's panel says of a person facegate would let in, where the door has a reader: its
    /// verdict and how long it took, or why the person was not presented (no card for the panel's
    /// system; still inside by the door's anti-passback, checked here because the panel's grant opens
    /// the door). `None`: the door has no reader and facegate decides alone.
    pub(crate) async fn ask_panel(
        &self,
        tenant_id: &TenantId,
        door: &facegate_store::Door,
        subject_id: &SubjectId,
    ) -> Result<Option<PanelAnswer>, GalleryError> {
        let door_id = &door.id;
        let Some(reader) = self.store.reader(tenant_id, door_id).await? else {
            return Ok(None);
        };
        if door.policy.anti_passback.is_some() && self.store.is_present(tenant_id, door_id, subject_id).await? {
            return Ok(Some(PanelAnswer::StillInside));
        }
        let cards = self.store.credentials(tenant_id, subject_id).await?;
        let Some(card) = cards.into_iter().find(|c| c.system == reader.settings.credential_system) else {
            return Ok(Some(PanelAnswer::NoCredential));
        };
        let timeout = Duration::from_millis(u64::from(reader.settings.verdict_timeout_ms));
        let started = std::time::Instant::now();
        let reply = match &self.panels {
            Some(panels) => panels.present(door_id, &card, timeout).await,
            None => PanelReply { verdict: PanelVerdict::Offline, text: None },
        };
        let ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        Ok(Some(PanelAnswer::Verdict(reply, ms)))
    }

    /// Keeps the key a door's panel set on its reader in install mode (OSDP KEYSET): sealed in place of
    /// the one it had, install mode off (the default key is never accepted again), recorded in the
    /// configuration trail as the panel's doing. A reader removed meanwhile keeps nothing.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a door gone or without a reader; store and crypto failures.
    pub async fn keep_panel_key(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        key: &[u8; 16],
    ) -> Result<(), GalleryError> {
        let stored = self.store.reader(tenant_id, door_id).await.map_err(missing(Missing::Door))?;
        let stored = stored.ok_or(GalleryError::NotFound(Missing::Reader))?;
        let cipher = &self.secrets(tenant_id).await?.cipher;
        let mut settings = stored.settings;
        settings.install_mode = false;
        let kept =
            StoredReader { settings, key: cipher.seal_data(key, &key_binding(door_id))?, updated_at_ms: self.now() };
        let actor = Actor::new(tenant_id.clone(), PANEL_KEY_ID.into(), facegate_store::RequestId::random());
        let details = serde_json::json!({ "key_changed": true, "set_by": "panel", "install_mode": false });
        let audit = self.change(&actor, ChangeAction::ReaderSet, door_id, details);
        self.store.set_reader(tenant_id, door_id, Some(&kept), &audit).await.map_err(missing(Missing::Door))
    }
}

/// What came of asking a door's panel.
pub(crate) enum PanelAnswer {
    /// The person carries no card for the panel's system.
    NoCredential,
    /// Anti-passback: the person is recorded inside already.
    StillInside,
    /// The panel's reply, and how long it took (ms).
    Verdict(PanelReply, u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(system: &str, format: CardFormat, facility_code: u32, card_number: u64) -> CardCredential {
        CardCredential { system: system.into(), format, facility_code, card_number }
    }

    #[test]
    fn cards_fit_their_formats_one_per_system() {
        assert!(check_cards(&[card("default", CardFormat::Wiegand26, 255, 65_535)]).is_ok());
        assert!(check_cards(&[card("default", CardFormat::Wiegand26, 256, 1)]).is_err());
        assert!(check_cards(&[card("default", CardFormat::Wiegand34, 65_535, 65_536)]).is_err());
        assert!(check_cards(&[card("default", CardFormat::Raw, 1, 5)]).is_err(), "raw cards have no facility");
        assert!(check_cards(&[card("default", CardFormat::Raw, 0, i64::MAX.unsigned_abs())]).is_ok());
        assert!(check_cards(&[card("default", CardFormat::Raw, 0, 1 << 63)]).is_err(), "past the schema's int64");
        assert!(check_cards(&[card("Tower A", CardFormat::Raw, 0, 5)]).is_err());
        let twice = [card("a", CardFormat::Raw, 0, 1), card("a", CardFormat::Raw, 0, 2)];
        assert_eq!(check_cards(&twice), Err(ReaderProblem::Cards));
        assert_eq!(parse_key("00112233445566778899aabbccddeeff").map(|k| k[15]), Ok(0xff));
        assert_eq!(parse_key("0011"), Err(ReaderProblem::Key));
    }
}
