//! Door readers and card credentials: a door's OSDP output (facegate as a card reader on an access
//! panel, the panel keeping the last word) and the cards a subject carries per door system.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::records::EncryptedTemplate;

/// How facegate reaches the access panel as its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReaderTransport {
    /// OSDP frames over TCP: facegate dials the panel (or its RS-485 converter) at `target` (`host:port`).
    Tcp,
    /// OSDP over a serial line (RS-485 through a USB adapter): `target` is the device path.
    Serial,
}

/// A door's OSDP output, as set and shown (the Secure Channel key is sealed apart from it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReaderSettings {
    /// TCP or serial.
    pub transport: ReaderTransport,
    /// `host:port` (TCP) or the device path (serial, `/dev/ttyUSB0`).
    pub target: String,
    /// The reader's OSDP address on the bus, 0 to 126.
    pub address: u8,
    /// The line's speed: 9600, 19200, 38400, 57600, 115200 or 230400.
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// Accept the default Secure Channel key (SCBK-D) for one session, so the panel can set its own
    /// key (install mode): only while installing.
    #[serde(default)]
    pub install_mode: bool,
    /// Which of a subject's credentials this panel reads (a subject may carry cards of several door
    /// systems): `default` unless said.
    #[serde(default = "default_system")]
    pub credential_system: String,
    /// How long to wait for the panel's verdict, ms (100 to 10000; default 2000).
    #[serde(default = "default_verdict_ms")]
    pub verdict_timeout_ms: u32,
}

fn default_baud() -> u32 {
    115_200
}

/// The credential system of a reader or card that names none.
pub fn default_system() -> String {
    "default".into()
}

fn default_verdict_ms() -> u32 {
    2000
}

/// A door's reader as stored: its settings and its sealed Secure Channel base key (SCBK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReader {
    /// The settings.
    pub settings: ReaderSettings,
    /// The 16-byte SCBK, sealed by the caller.
    pub key: EncryptedTemplate,
    /// When set, ms since the epoch.
    pub updated_at_ms: i64,
}

/// How a card's bits are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardFormat {
    /// Wiegand 26-bit (H10301): facility code 0–255, card number 0–65535.
    Wiegand26,
    /// Wiegand 34-bit (H10306): facility code 0–65535, card number 0–65535.
    Wiegand34,
    /// Raw: the card number's bytes (big-endian, no leading zero bytes), no facility code.
    Raw,
}

/// A card a subject carries for one door system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardCredential {
    /// The door system it belongs to (a reader's `credential_system`): `default` unless said.
    #[serde(default = "default_system")]
    pub system: String,
    /// Its format.
    pub format: CardFormat,
    /// The facility code (0 for raw cards).
    #[serde(default)]
    pub facility_code: u32,
    /// The card number (a raw card's at most 2^63 - 1, the schema's int64).
    pub card_number: u64,
}
