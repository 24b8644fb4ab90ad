//! Cameras: a tenant's video sources watched by `facegate serve`. The source URL (which may carry the
//! camera's user name and password) is sealed by the caller like a webhook's secret; only its form
//! without credentials is ever read back.

use serde::{Deserialize, Serialize};

use crate::ids::{CameraId, CollectionId, DoorId, TenantId};
use crate::records::EncryptedTemplate;

/// A part of the frame, in fractions of its width and height (0 to 1 from the top left corner).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl Zone {
    /// Whether the point (fractions of the frame) lies inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x && x <= self.x + self.width && y >= self.y && y <= self.y + self.height
    }
}

/// How a camera is watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CameraSettings {
    /// Whether `facegate serve` watches it.
    pub enabled: bool,
    /// Frames analysed per second (the rest are decoded and dropped).
    pub detections_per_second: f64,
    /// A face smaller than this (the shorter side of its box, pixels) is never named.
    pub min_face_px: f32,
    /// Most pixels the detector looks at per frame (a larger frame is scaled down to it).
    pub detect_pixels: u64,
    /// Only enrolled people are reported and kept: nothing is recorded about anyone else.
    pub known_only: bool,
    /// A person is announced again on this camera at most once per this many seconds.
    pub cooldown_s: f64,
    /// RTP over UDP instead of interleaved in the RTSP connection.
    pub udp: bool,
    /// Parts of the frame where faces are ignored (a poster, a screen, a window onto the street).
    pub masks: Vec<Zone>,
    /// Days the camera's sightings (with their best shots) are kept after the face was last seen; unset
    /// keeps them for the collection's `retention_days` (whichever ends first applies).
    pub retention_days: Option<u32>,
    /// The door this camera watches (a door of the camera's collection): each face track that gathers
    /// enough good observations is a door attempt on its best frames, decided by the door's rules
    /// (liveness included) as if a client had posted them.
    pub door_id: Option<DoorId>,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            detections_per_second: 5.0,
            min_face_px: 32.0,
            detect_pixels: 1920 * 1080,
            known_only: false,
            cooldown_s: 0.0,
            udp: false,
            masks: Vec::new(),
            retention_days: None,
            door_id: None,
        }
    }
}

/// A camera's source: the URL without credentials (what is shown) and the whole URL, sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraSource {
    /// The URL without user name and password.
    pub display: String,
    /// The whole URL, encrypted (bound to the camera's id).
    pub sealed: EncryptedTemplate,
}

/// A camera, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCamera {
    /// Identifier, chosen by the caller (it is bound into the URL's encryption).
    pub id: CameraId,
    /// The collection faces are named from.
    pub collection_id: CollectionId,
    /// Name, unique within the tenant; sightings and events carry it.
    pub name: String,
    /// Where the video comes from; on replacement `None` keeps the stored one.
    pub source: Option<CameraSource>,
    /// How it is watched.
    pub settings: CameraSettings,
    /// When (creation, or the replacement).
    pub at_ms: i64,
}

/// A camera, without its credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Camera {
    /// Identifier.
    pub id: CameraId,
    /// The collection faces are named from.
    pub collection_id: CollectionId,
    /// Name, unique within the tenant.
    pub name: String,
    /// The source URL without user name and password.
    pub source: String,
    /// How it is watched.
    pub settings: CameraSettings,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it was last replaced.
    pub updated_at_ms: i64,
}

/// An enabled camera of any tenant, with its sealed URL: what a server watches.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningCamera {
    /// Whose.
    pub tenant_id: TenantId,
    /// The camera.
    pub camera: Camera,
    /// Its whole URL, encrypted.
    pub sealed_url: EncryptedTemplate,
}
