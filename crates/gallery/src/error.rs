//! What gallery operations fail with.

use facegate_store::StoreError;

use crate::{ConsentProblem, DoorProblem, KeyProblem, MigrationProblem, Missing, WebhookProblem};

/// Errors of gallery operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GalleryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The collection, subject or face does not exist for this tenant.
    #[error("{} not found", .0.as_str())]
    NotFound(Missing),
    /// The subject has no enrolled faces to verify against.
    #[error("the subject has no enrolled faces")]
    NoTemplates,
    /// The image has no face to decide on.
    #[error("no face found in the image")]
    NoFace,
    /// An image could not be analysed (a bad image, a pack not loaded, a failing model).
    #[error(transparent)]
    Analysis(#[from] crate::AnalysisError),
    /// No threshold at the asked false-match rate (no calibration, or a rate outside it).
    #[error(transparent)]
    Calibration(#[from] facegate_core::PipelineError),
    /// A template or key could not be sealed or opened (wrong key, tampered data).
    #[error("encryption: {0}")]
    Crypto(String),
    /// A migration cannot start or go on.
    #[error(transparent)]
    Migration(#[from] MigrationProblem),
    /// A door cannot be stored as given.
    #[error(transparent)]
    Door(#[from] DoorProblem),
    /// A webhook cannot be stored as given.
    #[error(transparent)]
    Webhook(#[from] WebhookProblem),
    /// A door reader or cards cannot be stored as given.
    #[error(transparent)]
    Reader(#[from] crate::ReaderProblem),
    /// MQTT settings cannot be stored as given.
    #[error(transparent)]
    Mqtt(#[from] crate::MqttProblem),
    /// A camera cannot be stored as given.
    #[error(transparent)]
    Camera(#[from] crate::CameraProblem),
    /// A sighting cannot be changed as asked.
    #[error(transparent)]
    Sighting(#[from] crate::SightingProblem),
    /// A signed link that opens nothing: expired, altered, or not this service's.
    #[error(transparent)]
    Link(#[from] crate::LinkRefused),
    /// A consent record or retention cannot be stored as given.
    #[error(transparent)]
    Consent(#[from] ConsentProblem),
    /// An API key cannot be made or revoked as asked.
    #[error(transparent)]
    Key(#[from] KeyProblem),
    /// A template of the wrong length for the collection.
    #[error("template has {got} values, the collection holds {expected}")]
    Dimension {
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
}
