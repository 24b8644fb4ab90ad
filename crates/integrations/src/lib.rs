//! What facegate plugs into, each a room of its own: [`mqtt`], the broker link that publishes the
//! outbox's events to a tenant's MQTT broker, with Home Assistant discovery and Frigate's and Double
//! Take's topics; [`osdp`], facegate as a card reader (OSDP peripheral device) on access panels. The settings and the queueing rules live in the gallery (`facegate_gallery::MqttSettings`);
//! the link only sends.

pub mod mqtt;
pub mod osdp;

pub use mqtt::{LinkStatus, MqttHub};
pub use osdp::{PanelHub, ReaderStatus};
