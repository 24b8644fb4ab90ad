//! The wire format: every request body and response of the API as a type (serde + utoipa), so the
//! OpenAPI document, generated clients and the handlers agree by construction. Gallery and pipeline
//! types that go on the wire as they are ([`Collection`], [`Subject`], [`Candidate`], [`Receipt`],
//! [`DetectedFace`]...) derive their schemas where they are defined.

use std::collections::BTreeMap;

use facegate_core::{AnalyzedFace, BoundingBox, CalibrationPoint, DetectedFace, LivenessScore, Point};
use facegate_gallery::{
    AcceptedFace, Access, AttendanceDay, Candidate, DoorReason, Identification, IdentifiedFace, MatchResult,
    OperatingPoint,
};
use facegate_store::{
    AuditEvent, Collection, CollectionId, Door, DoorId, DoorPolicy, FaceRecord, RequestId, Subject, SubjectId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::ErrorCode;
use crate::inference::PoolStatus;

/// Every error answer: a stable code (which fixes the status), a message, and the request id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
    /// The request's `x-request-id` (also in the response header); quote it when reporting a problem.
    pub request_id: RequestId,
}

/// The error of an [`ErrorEnvelope`].
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable; one HTTP status per code.
    pub code: ErrorCode,
    /// For people; never contains images, templates or internals.
    pub message: String,
    /// Structured extras: the refused images of an enrolment, the health report of `not_ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// Longest name of a collection, subject or key, characters.
const MAX_NAME_CHARS: usize = 200;

/// A collection's, subject's or key's name, trimmed, or 400 `invalid_request` unless 1 to 200 characters.
pub(crate) fn display_name(name: &str) -> Result<String, crate::ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(crate::ApiError::invalid(format!("`name` must be 1 to {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_string())
}

/// Body of `POST /v1/collections`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCollection {
    /// Name, unique within the tenant (1 to 200 characters, not only spaces).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Model pack (default: the server's default pack).
    #[serde(default)]
    pub pack: Option<String>,
    /// Default target false-match rate of decisions (default 1e-3), within the calibrated range.
    #[serde(default)]
    #[schema(minimum = 1e-6, maximum = 0.1)]
    pub target_fmr: Option<f64>,
    /// Keep each enrolled face's aligned frame, sealed like its template (never the photo), so the
    /// collection can move to another pack later without anyone enrolling again (default false).
    #[serde(default)]
    pub keep_crops: bool,
}

/// A collection's migrations (the store keeps the latest one).
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationList {
    /// Latest first.
    pub migrations: Vec<facegate_store::Migration>,
}

/// Body of a migration's start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMigration {
    /// The pack to move the collection to (one the server has loaded).
    #[schema(min_length = 1, max_length = 100)]
    pub pack: String,
}

/// Body of subject creation and update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubjectBody {
    /// Display name (1 to 200 characters, not only spaces).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// A free-form JSON object (badge number, employee id...), at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// Groups the subject belongs to (doors allow groups), each 1 to 100 characters, at most 50; on
    /// update, absent keeps the subject's groups.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// The subject's consent record; at `expires_at_ms` the subject is erased automatically (with a
    /// receipt kept under the collection's receipts). On update, absent keeps the subject's.
    #[serde(default)]
    pub consent: Option<facegate_store::Consent>,
}

/// The caller's collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    /// Oldest first.
    pub collections: Vec<Collection>,
}

/// The subjects of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectList {
    /// Oldest first.
    pub subjects: Vec<Subject>,
}

/// A subject's enrolled faces (no templates).
#[derive(Debug, Serialize, ToSchema)]
pub struct FaceList {
    /// Oldest first.
    pub faces: Vec<FaceRecord>,
}

/// A page of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// In trail order.
    pub events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; null when this page is empty.
    pub next_after: Option<i64>,
}

/// Who was present where and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceList {
    /// By when each began.
    pub presences: Vec<facegate_gallery::Presence>,
    /// The window that folded them, seconds.
    pub window_s: u32,
    /// More sightings matched than one answer folds (10,000): narrow the time range.
    pub truncated: bool,
}

/// A page of a collection's sightings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SightingPage {
    /// Oldest first.
    pub sightings: Vec<facegate_store::Sighting>,
    /// Pass as `after` for the next page; null when this page is empty.
    pub next_after: Option<i64>,
}

/// The groups of unknown faces of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterList {
    /// The latest seen first.
    pub clusters: Vec<facegate_gallery::UnknownCluster>,
    /// More unknown sightings than one answer reads (10,000): the oldest are left out.
    pub truncated: bool,
}

/// A group of unknown faces named.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedClusterAnswer {
    /// Who it is.
    pub subject: facegate_store::Subject,
    /// Its sightings, now the subject's.
    pub sightings: u32,
    /// Best shots enrolled (through the quality gate).
    pub accepted: Vec<EnrolledFace>,
    /// Best shots refused, with why.
    pub rejected: Vec<RejectedImage>,
}

/// A page of the tenant's configuration trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// In trail order.
    pub changes: Vec<facegate_store::Change>,
    /// Pass as `after` for the next page; null when this page is empty.
    pub next_after: Option<i64>,
}

/// What a presence reset did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceReset {
    /// Presence records forgotten (people who may pass the door again).
    pub reset: u64,
}

/// An enrolment image that was not enrolled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectedImage {
    /// Position of the image in the request.
    pub image_index: usize,
    /// Why: `no_face`, `multiple_faces`, `low_quality`, `duplicate`, or the image's own error code.
    pub reason: ErrorCode,
    /// What to change.
    pub message: String,
}

/// The answer of an enrolment with at least one face stored. When none is, the answer is the error
/// of the first refused image, with `details.rejected`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// Faces stored, in image order.
    pub accepted: Vec<EnrolledFace>,
    /// Images refused, in image order.
    pub rejected: Vec<RejectedImage>,
}

/// An enrolled face and, when asked for (`crops=true`), its aligned crop.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolledFace {
    /// The stored face.
    #[serde(flatten)]
    pub face: AcceptedFace,
    /// The face aligned onto the 112×112 template, base64 JPEG: to show, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aligned_crop: Option<String>,
}

/// The `details` of a failed enrolment (no image accepted).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollRefusal {
    /// Every image, with why it was refused.
    pub rejected: Vec<RejectedImage>,
}

/// One image as a multipart file (other text fields are parameters).
#[derive(Debug, ToSchema)]
pub struct ImageUpload {
    /// The image file: JPEG, PNG, WebP or BMP.
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
}

/// Images as multipart files, one per field (other text fields are parameters).
#[derive(Debug, ToSchema)]
pub struct ImagesUpload {
    /// Image files: JPEG, PNG, WebP or BMP.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub images: Vec<Vec<u8>>,
}

/// One image as base64 in JSON (other keys are parameters).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageJson {
    /// Base64 (a `data:` URL prefix is allowed).
    #[schema(format = Byte)]
    pub image: String,
}

/// Images as base64 in JSON (other keys are parameters).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImagesJson {
    /// Base64 images (a `data:` URL prefix is allowed).
    pub images: Vec<String>,
    /// `only` or `largest`.
    #[serde(default)]
    pub face: Option<facegate_gallery::FaceChoice>,
    /// Refuse faces that match another subject.
    #[serde(default)]
    pub reject_duplicates: Option<bool>,
}

/// One raw image as the whole body.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawImage(pub Vec<u8>);

/// A video file as the whole body (MP4/MOV/MKV/WebM; sent as `video/*` or `application/octet-stream`).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawVideo(pub Vec<u8>);

/// A JPEG image as the whole body.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct JpegImage(pub Vec<u8>);

/// The answer of a verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// The subject verified against.
    pub subject_id: SubjectId,
    /// Best cosine score over the subject's templates.
    pub score: f32,
    /// At or above the threshold.
    pub same_person: bool,
    /// The threshold at `target_fmr`.
    pub threshold: f32,
    /// The false-match rate the threshold was calibrated for.
    pub target_fmr: f64,
    /// The probe face (the largest of the image).
    pub bbox: BoundingBox,
    /// Its liveness, when asked for (`liveness=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessScore>,
}

/// Width and height of a decoded image, pixels.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageSize {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// A matched subject, as recognition names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectSummary {
    /// Identifier.
    pub id: SubjectId,
    /// Display name.
    pub name: String,
    /// The caller's metadata.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<Subject> for SubjectSummary {
    fn from(subject: Subject) -> Self {
        Self { id: subject.id, name: subject.name, metadata: subject.metadata }
    }
}

/// One face of a recognised image.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecognizedFace {
    /// Position among the image's faces (best detection first).
    pub face_index: usize,
    /// Box, pixels.
    pub bbox: BoundingBox,
    /// Box, fractions of the image size.
    pub bbox_normalized: BoundingBox,
    /// Eyes, nose, mouth corners.
    pub landmarks: [Point; 5],
    /// Detector score.
    pub detection_score: f32,
    /// Match or unknown at the threshold.
    pub result: MatchResult,
    /// The matched subject.
    pub subject: Option<SubjectSummary>,
    /// The matched subject's score.
    pub score: Option<f32>,
    /// Best first.
    pub candidates: Vec<Candidate>,
    /// Its liveness, when asked for (`liveness=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessScore>,
}

impl RecognizedFace {
    /// The face at `face_index` of an image, with what identification said of it.
    pub fn new(face_index: usize, identified: IdentifiedFace) -> Self {
        let IdentifiedFace { face, identification } = identified;
        let Identification { result, subject, candidates } = identification;
        let score = (result == MatchResult::Match).then(|| candidates.first().map(|c| c.score)).flatten();
        Self {
            face_index,
            bbox: face.face.bbox,
            bbox_normalized: face.face.bbox_normalized,
            landmarks: face.face.landmarks,
            detection_score: face.face.score,
            result,
            subject: subject.map(Into::into),
            score,
            candidates,
            liveness: face.liveness,
        }
    }
}

/// The answer of a recognition.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecognizeResponse {
    /// The collection searched.
    pub collection_id: CollectionId,
    /// The decoded image.
    pub image: ImageSize,
    /// The decision threshold.
    pub threshold: f32,
    /// The false-match rate it was calibrated for.
    pub target_fmr: f64,
    /// Faces enrolled in the collection.
    pub gallery_size: u64,
    /// Every face found (up to the server's limit).
    pub faces: Vec<RecognizedFace>,
    /// More faces were found than the server analyses; only the best were.
    pub faces_truncated: bool,
}

/// The answer of a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The collection searched.
    pub collection_id: CollectionId,
    /// The decision threshold.
    pub threshold: f32,
    /// The false-match rate it was calibrated for.
    pub target_fmr: f64,
    /// Match or unknown for the best candidate.
    pub result: MatchResult,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

/// Body of a search by template (instead of an image).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchByTemplate {
    /// A template of the collection's pack.
    pub template: Vec<f32>,
    /// Candidates wanted (1 to 100, default 5).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub top_k: Option<usize>,
}

/// The answer of a detection.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectResponse {
    /// Decoded image width, pixels.
    pub width: u32,
    /// Decoded image height, pixels.
    pub height: u32,
    /// Best detection first.
    pub faces: Vec<DetectedFaceOut>,
    /// More faces were found than the server returns.
    pub faces_truncated: bool,
    /// Whether the image would pass the enrolment quality gate, when asked for (`quality=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<EnrolmentCheck>,
}

/// Whether an image would be enrolled as it is (one face, large, confidently detected and sharp).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentCheck {
    /// The image passes the gate.
    pub enrollable: bool,
    /// Why not: `no_face`, `multiple_faces` or `low_quality`.
    pub reason: Option<ErrorCode>,
    /// What to change.
    pub message: Option<String>,
    /// Sharpness of the largest face's aligned crop.
    pub sharpness: Option<f32>,
}

impl EnrolmentCheck {
    /// The check of a [`facegate_gallery::QualityGate::judge`] verdict.
    pub fn new(verdict: Result<f32, (facegate_gallery::RejectReason, String)>, sharpness: Option<f32>) -> Self {
        match verdict {
            Ok(_) => Self { enrollable: true, reason: None, message: None, sharpness },
            Err((reason, message)) => {
                Self { enrollable: false, reason: Some(reason.into()), message: Some(message), sharpness }
            }
        }
    }
}

/// A detected face and, when asked for, its liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectedFaceOut {
    /// Where the face is.
    #[serde(flatten)]
    pub face: DetectedFace,
    /// Its liveness, when asked for (`liveness=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessScore>,
}

/// The answer of an embedding.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// The pack used.
    pub pack: String,
    /// Decoded image width, pixels.
    pub width: u32,
    /// Decoded image height, pixels.
    pub height: u32,
    /// Faces with their templates.
    pub faces: Vec<AnalyzedFace>,
    /// More faces were found than the server analyses.
    pub faces_truncated: bool,
}

/// One side of a comparison: a base64 image or a template.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompareSide {
    /// Base64 image (JPEG, PNG, WebP or BMP).
    #[serde(default)]
    pub image: Option<String>,
    /// A template of the pack.
    #[serde(default)]
    pub template: Option<Vec<f32>>,
}

/// JSON body of a comparison (multipart with two image files also works).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompareBody {
    /// First face.
    pub a: CompareSide,
    /// Second face.
    pub b: CompareSide,
    /// Target false-match rate (default 1e-3), within the calibrated range.
    #[serde(default)]
    #[schema(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
    /// Pack (default: the server's).
    #[serde(default)]
    pub pack: Option<String>,
}

/// The answer of a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompareResponse {
    /// Cosine similarity.
    pub score: f32,
    /// At or above the threshold.
    pub same_person: bool,
    /// The threshold at `target_fmr`.
    pub threshold: f32,
    /// The false-match rate it was calibrated for.
    pub target_fmr: f64,
    /// The pack used.
    pub pack: String,
}

impl CompareResponse {
    /// The answer for a score at an operating point.
    pub fn new(score: f32, operating: OperatingPoint, pack: String) -> Self {
        let OperatingPoint { threshold, target_fmr } = operating;
        Self { score, same_person: score >= threshold, threshold, target_fmr, pack }
    }
}

/// The store as health sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// It answered a ping.
    pub reachable: bool,
}

/// Readiness report (also the `details` of a `not_ready` error).
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` or `not_ready`.
    pub status: String,
    /// The gallery store.
    pub store: StoreHealth,
    /// `local` or `kms`.
    pub key_provider: String,
    /// Loaded packs.
    pub packs: Vec<String>,
    /// Pipelines per pack.
    pub pipelines: BTreeMap<String, PoolStatus>,
    /// Server version.
    pub version: String,
}

/// A model of a pack.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// Name.
    pub name: String,
    /// Licence of the weights.
    pub licence: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Template length (embedders only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
}

/// A pack's trained head.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeadInfo {
    /// SHA-256 of the weights.
    pub sha256: String,
    /// Output length.
    pub output_size: usize,
}

/// A loaded model pack.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackInfo {
    /// Name.
    pub name: String,
    /// Used when a request names none.
    pub default: bool,
    /// The face detector.
    pub detector: ModelInfo,
    /// The embedder.
    pub embedder: ModelInfo,
    /// The trained head, if any.
    pub head: Option<HeadInfo>,
    /// Template length.
    pub embedding_size: usize,
    /// Thresholds by false-match rate.
    pub calibration: Vec<CalibrationPoint>,
    /// Where the calibration comes from.
    pub calibration_note: Option<String>,
    /// Which faces are embedded with their mirror image too (`kept`: enrolled templates only, a probe
    /// is embedded once).
    pub mirror: facegate_core::Mirror,
    /// The runtime the embedder runs on, and how it was chosen at load (the trials timed on this
    /// machine, where there were several candidates).
    pub embedder_runtime: facegate_core::RuntimeChoice,
}

/// The loaded packs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// By name.
    pub packs: Vec<PackInfo>,
}

/// What watching an uploaded video saw.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoResponse {
    /// The collection faces were named from.
    pub collection_id: CollectionId,
    /// The name the video's events and sightings carry.
    pub camera: String,
    /// Seconds of video watched.
    pub duration_s: f64,
    /// Width and height of the video.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Frames analysed.
    pub frames_analysed: u64,
    /// Faces tracked (tracks ended).
    pub tracks: u64,
    /// The threshold at the target false-match rate.
    pub threshold: f32,
    /// The target false-match rate.
    pub target_fmr: f64,
    /// Every event of the watch, in order (as `facegate watch --json` writes them); each decided track
    /// is also kept as a sighting of the collection.
    pub events: Vec<facegate_video::WatchEvent>,
}

/// Body of camera creation and replacement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraBody {
    /// Name, unique within the tenant (1 to 200 characters); events and sightings carry it.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// The collection faces are named from.
    pub collection_id: CollectionId,
    /// `rtsp://user:password@host:port/path`: sealed at rest and never returned (only its form without
    /// credentials is). Required on creation; left out on replacement, the stored one is kept.
    #[serde(default)]
    pub source_url: Option<String>,
    /// How it is watched (every field has a default).
    #[serde(default)]
    pub settings: facegate_store::CameraSettings,
}

/// The tenant's cameras.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraList {
    /// Oldest first.
    pub cameras: Vec<facegate_store::Camera>,
}

/// Body of door creation and replacement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorBody {
    /// Name, unique within the tenant (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// The collection people are identified in.
    pub collection_id: CollectionId,
    /// Who may pass and when.
    pub policy: DoorPolicy,
}

/// The tenant's doors.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorList {
    /// Oldest first.
    pub doors: Vec<Door>,
}

/// The person a door decided on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorSubject {
    /// The subject.
    pub id: SubjectId,
    /// Their name.
    pub name: String,
}

/// A door's decision on an attempt. Denials are answers too (200): the reason says why.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorAttemptResponse {
    /// The door.
    pub door_id: DoorId,
    /// Open or not.
    pub access: Access,
    /// Why not (absent when granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DoorReason>,
    /// The person identified, when granted or denied by the door's policy (`not_allowed`,
    /// `outside_schedule`, `anti_passback`). A denial for liveness, an unknown person or several faces
    /// names nobody (the audit trail keeps who it was for administrators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<DoorSubject>,
    /// Identity score: the lowest of the frames' scores for that person, when the person is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The identity threshold.
    pub threshold: f32,
    /// The false-match rate it was calibrated for.
    pub target_fmr: f64,
    /// Fused liveness score (mean over the frames), where the door requires liveness, when the person
    /// is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<f32>,
    /// The liveness threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_threshold: Option<f32>,
    /// Frames sent.
    pub frames: usize,
    /// Frames whose face was used.
    pub frames_used: usize,
    /// When the decision was made, ms since the epoch.
    pub at_ms: i64,
    /// What the door's panel said, where the door has a reader and facegate would have let the person
    /// in (the panel's verdict is the answer: `panel_denied`, `panel_offline` deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel: Option<facegate_gallery::PanelVerdict>,
    /// How long the panel took to answer, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel_ms: Option<u32>,
    /// The text the panel put on the reader's display with its answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel_text: Option<String>,
}

/// A door's reader and how its link to the panel stands in this process.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReaderState {
    /// The reader's settings (no key).
    pub reader: facegate_gallery::DoorReader,
    /// The link (not connected where this process does not run it).
    pub link: facegate_integrations::ReaderStatus,
}

/// A subject's cards.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialList {
    /// One per door system.
    pub credentials: Vec<facegate_store::CardCredential>,
}

/// An attendance sheet.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttendanceResponse {
    /// The collection.
    pub collection_id: CollectionId,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day (included).
    pub to: String,
    /// The time zone days are counted in.
    pub timezone: String,
    /// One row per person and day with a door passage, by date then name.
    pub days: Vec<AttendanceDay>,
}

/// A subject's ignore list.
#[derive(Debug, Serialize, ToSchema)]
pub struct NegativeList {
    /// Oldest first.
    pub negatives: Vec<facegate_store::NegativeRecord>,
}

/// Body of webhook creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are POSTed: https, or http to localhost.
    #[schema(example = "https://hooks.example.org/facegate")]
    pub url: String,
    /// The event types it receives.
    #[schema(min_items = 1)]
    pub event_types: Vec<facegate_store::EventType>,
}

/// A created webhook and its signing secret (`whsec_` + base64), shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    pub webhook: facegate_store::Webhook,
    /// The Standard Webhooks signing secret.
    pub secret: String,
}

/// The tenant's MQTT integration and how its broker link stands in this process.
#[derive(Debug, Serialize, ToSchema)]
pub struct MqttState {
    /// The settings (no password).
    pub integration: facegate_gallery::MqttIntegration,
    /// The link (not connected before the first event is due).
    pub link: facegate_integrations::LinkStatus,
}

/// The tenant's webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub webhooks: Vec<facegate_store::Webhook>,
}

/// A page of a webhook's delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// In outbox order.
    pub deliveries: Vec<facegate_store::Delivery>,
    /// Pass as `after` for the next page; null when this page is empty.
    pub next_after: Option<i64>,
}

/// Body of a collection update; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionUpdate {
    /// Days audit events are kept (1 to 36500); null: until the collection is deleted.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub retention_days: Option<Option<u32>>,
    /// Every recognition and verification against the collection scores liveness (the pack must have
    /// liveness models).
    pub liveness_required: Option<bool>,
}

/// A field that is present (its value may be null), as opposed to absent (the `None` of `default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The receipts of a collection's automatic erasures (consent expiry).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptList {
    /// Oldest first.
    pub receipts: Vec<facegate_store::StoredReceipt>,
}

/// Body of key creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// Label (1 to 200 characters), e.g. who or what uses the key.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// What the key may do (`admin` grants everything).
    #[schema(min_items = 1)]
    pub scopes: Vec<facegate_store::Scope>,
}

/// An API key of the tenant (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Identifier.
    pub id: facegate_store::KeyId,
    /// Label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<facegate_store::Scope>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Revocation time, if revoked.
    pub revoked_at_ms: Option<i64>,
}

impl From<&facegate_store::ApiKeyRecord> for KeyInfo {
    fn from(key: &facegate_store::ApiKeyRecord) -> Self {
        Self {
            id: key.id.clone(),
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            created_at_ms: key.created_at_ms,
            revoked_at_ms: key.revoked_at_ms,
        }
    }
}

/// A created key with its secret, shown only this once (only its hash is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    #[serde(flatten)]
    pub key: KeyInfo,
    /// The secret to send as `x-api-key`.
    pub secret: String,
}

/// The tenant's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first, revoked ones included.
    pub keys: Vec<KeyInfo>,
}
