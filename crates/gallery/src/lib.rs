//! Galleries: the product's rules on top of any [`FaceStore`].
//!
//! - **Collections** (`collections.rs`): collections, subjects and faces for an [`Actor`] (another
//!   tenant's are not found); erasures with their [`Receipt`].
//! - **Decisions on images** (`recognition.rs`): [`Gallery::enroll`] with the face choice, the
//!   [`QualityGate`] and the duplicate check, returning typed [`Rejection`]s; [`Gallery::recognize`],
//!   [`Gallery::search_one`] and [`Gallery::verify`] at an [`OperatingPoint`] (the one place a score
//!   becomes match or unknown). Images are analysed through the gallery's [`Analyser`] (the one seam to
//!   the pipeline: the API's pools, the command line's [`Pipelines`]). Every change writes its audit
//!   event in the same store transaction; every decision records one.
//! - **Doors** (`doors.rs`), their readers on access panels (`readers.rs`: OSDP outputs, cards), webhooks, the MQTT integration's settings (`mqtt.rs`), retention, ignore lists, migrations, API keys: one file each.
//! - **Encryption at rest** ([`crypto`]): each tenant has a 256-bit data key, stored only wrapped by a
//!   [`KeyProvider`]'s master key (a local key from a file or the environment; KMS with the Lambda
//!   host). Templates are sealed with AES-256-GCM, bound to their collection and face ids.
//! - **Search** ([`TemplateIndex`]): a cosine scan over a collection's templates held in contiguous
//!   row-major `f32` arrays (through an 8-bit copy with an exact re-rank for a large collection),
//!   following this process's own changes in place (beside the base, folded in now and then) and
//!   rebuilt when the store's collection revision moves otherwise, so it stays consistent with writes
//!   made by this process or any other.

mod analysis;
mod cameras;
mod changes;
mod collections;
pub mod crypto;
mod doors;
pub mod egress;
mod error;
mod gallery;
mod index;
pub mod keys;
#[cfg(feature = "kms")]
pub mod kms;
mod links;
mod migration;
mod mqtt;
mod negatives;
mod readers;
mod recognition;
mod retention;
mod sealing;
mod sightings;
mod unknowns;
mod webhooks;

pub use analysis::{Analyser, AnalysisError, Pipelines};
pub use cameras::{
    ANALYSED_PER_SECOND, CAMERA_KEY_ID, CameraProblem, CameraSpec, CameraToRun, MAX_CAMERAS, MIN_FACE_PX, without_login,
};
pub use collections::{Actor, ErasureReport, Missing, Receipt, StorageReport};
pub use crypto::{KeyProvider, LocalKeyProvider, SearchRotation, TemplateCipher};
pub use doors::{
    Access, AttendanceDay, DoorDecision, DoorProblem, MAX_ATTENDANCE_DAYS, MAX_DOOR_FRAMES, attendance_csv,
    check_policy, discloses_identity, door_extras, local_time, time_zone,
};
pub use egress::{CAMERA_NETWORKS, EgressPolicy, EgressRefusal, Scheme, url_host};
pub use error::GalleryError;
pub use facegate_store::now_ms;
pub use facegate_store::{AuditAction, AuditReason, AuditResult, DoorReason};
pub use gallery::{Clock, FaceToEnroll, Gallery, IndexedSize, TemplatePacks};
pub(crate) use gallery::{TenantSecrets, crop_binding};
pub use index::{Candidate, FOLD_AFTER, FOLD_AT_LEAST, FOLD_OVERDUE, FoldState, TemplateIndex};
pub use keys::{KeyProblem, Keys, hash_key, new_key_secret};
pub use links::{BEST_SHOT_LINKS, BestShotLink, LinkRefused, MAX_LINK_TTL_S, MIN_LINK_TTL_S};
pub use migration::MigrationProblem;
pub use mqtt::{
    BrokerPublisher, DEFAULT_LINK_TTL_S, DEFAULT_MQTT_EVENTS, DEFAULT_TOPIC_PREFIX, MAX_CREDENTIAL_CHARS,
    MAX_TOPIC_PREFIX_CHARS, MqttConfig, MqttIntegration, MqttProblem, MqttSettings, is_broker,
};
pub use readers::{
    BAUD_RATES, DoorReader, MAX_CARDS, MAX_READER_ADDRESS, MAX_READERS, PANEL_KEY_ID, PanelReply, PanelVerdict, Panels,
    ReaderProblem, ReaderSpec, ReaderToRun, check_cards,
};
pub use recognition::{
    AcceptedFace, EnrollOptions, Enrolment, FaceChoice, Identification, IdentifiedFace, MatchResult, OperatingPoint,
    PossibleDuplicate, Probe, ProbeOptions, QualityGate, Recognition, RejectReason, Rejection, SearchAnswer,
    Unreadable, Verification,
};
pub use retention::{ConsentProblem, MAX_RETENTION_DAYS, Sweep, check_consent};
pub use sightings::{
    DEFAULT_PRESENCE_WINDOW_S, MAX_SIGHTING_MATCHES, MAX_SIGHTINGS, NotThisPerson, Presence, SightingMatch,
    SightingProblem, SightingSearch, TrackEvidence, fold_presence,
};
pub use unknowns::{ClusterName, MAX_NAMING_SHOTS, NamedCluster, UnknownCluster};
pub use webhooks::{CameraEvent, DeliveryRound, RETRY_DELAYS_S, WebhookProblem, WebhookSender, sign as sign_webhook};
