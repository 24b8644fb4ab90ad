//! Galleries: the product's rules on top of any [`FaceStore`].
//!
//! - **The service** (`service.rs`, methods of [`Gallery`]): collections, subjects and faces for an
//!   [`Actor`] (another tenant's are not found); [`Gallery::enroll`] with the face choice, the
//!   [`QualityGate`] and the duplicate check, returning typed [`Rejection`]s; [`Gallery::identify`],
//!   [`Gallery::search_one`] and [`Gallery::verify`] at an [`OperatingPoint`] (the one place a score
//!   becomes match or unknown); erasures with their [`Receipt`]. Every change writes its audit event in
//!   the same store transaction; every decision records one.
//! - **Encryption at rest** ([`crypto`]): each tenant has a 256-bit data key, stored only wrapped by a
//!   [`KeyProvider`]'s master key (a local key from a file or the environment; KMS with the Lambda
//!   host). Templates are sealed with AES-256-GCM, bound to their collection and face ids.
//! - **Search** ([`TemplateIndex`]): an exact cosine scan over a collection's templates held in one
//!   contiguous row-major `f32` array, rebuilt when the store's collection revision moves, so it stays
//!   consistent with writes made by this process or any other.

mod changes;
pub mod crypto;
mod doors;
pub mod egress;
mod error;
mod gallery;
mod index;
pub mod keys;
#[cfg(feature = "kms")]
pub mod kms;
mod migration;
mod negatives;
mod retention;
mod sealing;
mod service;
mod webhooks;

pub use crypto::{KeyProvider, LocalKeyProvider, SearchRotation, TemplateCipher};
pub use doors::{
    Access, AttendanceDay, DoorDecision, DoorProblem, FrameFace, MAX_ATTENDANCE_DAYS, MAX_DOOR_FRAMES, attendance_csv,
    check_policy, discloses_identity, local_time, time_zone,
};
pub use egress::{EgressPolicy, EgressRefusal};
pub use error::GalleryError;
pub use facegate_store::now_ms;
pub use facegate_store::{AuditAction, AuditReason, AuditResult, DoorReason};
pub use gallery::{FaceToEnroll, Gallery, IndexedSize, TemplatePacks};
pub(crate) use gallery::{TenantSecrets, crop_binding};
pub use index::{Candidate, TemplateIndex};
pub use keys::{KeyProblem, Keys, hash_key, new_key_secret};
pub use migration::MigrationProblem;
pub use retention::{ConsentProblem, MAX_RETENTION_DAYS, Sweep, check_consent};
pub use service::{
    AcceptedFace, Actor, EnrollOptions, Enrolment, ErasureReport, FaceChoice, FoundFace, Identification, MatchResult,
    Missing, OperatingPoint, PossibleDuplicate, QualityGate, Receipt, RejectReason, Rejection, StorageReport,
    SubjectTemplates, Verification,
};
pub use webhooks::{DeliveryRound, RETRY_DELAYS_S, WebhookProblem, WebhookSender, sign as sign_webhook};
