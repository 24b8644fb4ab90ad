//! The records a store keeps. Times are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditAction, AuditReason, AuditResult};
use crate::ids::{CollectionId, DoorId, FaceId, KeyId, NegativeId, RequestId, SubjectId, TenantId};

/// An organisation using facegate; everything else belongs to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created_at_ms: i64,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// detect, embed, compare.
    Detect,
    /// Manage collections and subjects, enrol faces.
    Enroll,
    /// recognize, search, verify.
    Search,
    /// Everything, including the audit trail.
    Admin,
}

impl crate::WireName for Scope {
    const ALL: &'static [Scope] = &[Scope::Detect, Scope::Enroll, Scope::Search, Scope::Admin];
}

/// An API key as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Identifier (shown in logs and the audit trail).
    pub id: KeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Label given at creation.
    pub name: String,
    /// Lowercase hex SHA-256 of the full key string.
    pub key_hash: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Revocation time, if revoked.
    pub revoked_at_ms: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key grants `scope` (admin grants everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A tenant's data key, encrypted by a key provider's master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Which provider wrapped it (`local`, `kms`).
    pub provider: String,
    /// Which master key (provider-specific id).
    pub master_key_id: String,
    /// The wrapped bytes.
    pub ciphertext: Vec<u8>,
}

/// A named gallery bound to one model pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Collection {
    /// Identifier.
    pub id: CollectionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// Model pack whose templates it holds.
    pub pack: String,
    /// Template length.
    pub embedding_size: u32,
    /// Default target false-match rate of decisions.
    pub target_fmr: f64,
    /// Each enrolled face's kept frame is stored sealed beside its template (never the photo), so the
    /// collection can be re-embedded with another pack; erased with the face.
    #[serde(default)]
    pub keep_crops: bool,
    /// Audit events older than this many days are deleted (none: kept until the collection is).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Every recognition and verification against it scores liveness (doors on it may still choose).
    #[serde(default)]
    pub liveness_required: bool,
    /// Creation time.
    pub created_at_ms: i64,
    /// Number of subjects.
    pub subject_count: u64,
    /// Number of faces.
    pub face_count: u64,
}

/// What a new collection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCollection {
    /// Name, unique within the tenant.
    pub name: String,
    /// Model pack.
    pub pack: String,
    /// Template length.
    pub embedding_size: u32,
    /// Default target false-match rate.
    pub target_fmr: f64,
    /// Keep each face's sealed frame for re-embedding.
    pub keep_crops: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

/// A person in a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subject {
    /// Identifier.
    pub id: SubjectId,
    /// Collection it belongs to.
    pub collection_id: CollectionId,
    /// Display name.
    pub name: String,
    /// Free-form JSON supplied by the caller (employee number, badge id...).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Groups the subject belongs to (doors allow groups).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The subject's consent record; at its expiry the subject is erased automatically.
    #[serde(default)]
    pub consent: Option<Consent>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Number of faces enrolled.
    pub face_count: u64,
}

/// What a new or updated subject is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSubject {
    /// Display name.
    pub name: String,
    /// Free-form JSON.
    pub metadata: serde_json::Value,
    /// Groups; on update, `None` keeps the subject's groups.
    pub groups: Option<Vec<String>>,
    /// Consent record; on update, `None` keeps the subject's.
    pub consent: Option<Consent>,
    /// Creation time (ignored on update).
    pub created_at_ms: i64,
}

/// An encrypted template: AES-256-GCM ciphertext (with tag) and its nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedTemplate {
    /// 96-bit nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with the 16-byte tag appended.
    pub ciphertext: Vec<u8>,
}

/// Which model made a template: a pack's name and its version (a digest of its embedder's weights).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackVersion {
    /// Pack name.
    pub pack: String,
    /// Pack version (empty for templates stored before versions were recorded).
    pub version: String,
}

/// A template of one pack, sealed, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    /// The pack that made it.
    pub pack: PackVersion,
    /// The template, encrypted.
    pub template: EncryptedTemplate,
    /// The template under the tenant's secret search rotation, for backends that search in the
    /// database (cosine scores are unchanged by it); other backends ignore it.
    pub search_vector: Vec<f32>,
}

/// A face to enrol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFace {
    /// Identifier, chosen by the caller (it is bound into the encryption).
    pub id: FaceId,
    /// The template of the collection's pack.
    pub template: NewTemplate,
    /// Templates of other packs (the target of a running migration).
    pub other_templates: Vec<NewTemplate>,
    /// The sealed kept frame, where the collection keeps them.
    pub crop: Option<EncryptedTemplate>,
    /// Detector score of the face.
    pub detection_score: f32,
    /// Sharpness measure of the aligned crop.
    pub sharpness: f32,
    /// Face box side in pixels.
    pub face_size: f32,
    /// Enrolment time.
    pub created_at_ms: i64,
}

impl NewFace {
    /// The template the face is searched by in a collection of `pack` (the one of that pack, if the face
    /// has one: an enrolment that raced a migration's switch), and the others.
    pub fn templates_for(&self, pack: &str) -> (&NewTemplate, Vec<&NewTemplate>) {
        let all: Vec<&NewTemplate> = std::iter::once(&self.template).chain(&self.other_templates).collect();
        let main = all.iter().position(|t| t.pack.pack == pack).unwrap_or(0);
        let searched = all[main];
        (searched, all.into_iter().enumerate().filter(|(i, _)| *i != main).map(|(_, t)| t).collect())
    }
}

/// An enrolled face, without its template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceRecord {
    /// Identifier.
    pub id: FaceId,
    /// Subject it belongs to.
    pub subject_id: SubjectId,
    /// The pack of the template it is searched by.
    pub pack: PackVersion,
    /// Its sealed frame is kept (it can be re-embedded by another pack).
    pub crop_kept: bool,
    /// Detector score at enrolment.
    pub detection_score: f32,
    /// Sharpness at enrolment.
    pub sharpness: f32,
    /// Face box side in pixels at enrolment.
    pub face_size: f32,
    /// Enrolment time.
    pub created_at_ms: i64,
}

/// An encrypted template with what it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Face identifier.
    pub face_id: FaceId,
    /// Subject identifier.
    pub subject_id: SubjectId,
    /// The encrypted template.
    pub template: EncryptedTemplate,
}

/// What a deletion erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    /// Collection concerned.
    pub collection_id: CollectionId,
    /// Subjects erased (or the subject whose face was erased).
    pub subject_ids: Vec<SubjectId>,
    /// Faces (templates) erased.
    pub face_ids: Vec<FaceId>,
    /// When.
    pub erased_at_ms: i64,
    /// The erased bytes were overwritten in the store's live files before the erasure returned
    /// (embedded store); false where the backend only deletes and reclaims later (PostgreSQL).
    #[serde(default)]
    pub physically_erased: bool,
    /// The erased subjects' own data keys were deleted with them (a whole subject or collection erased,
    /// not one face).
    #[serde(default)]
    pub subject_keys_deleted: bool,
    /// Erased sealed items (templates, kept frames, ignore-list templates) that were sealed under the
    /// tenant's data key rather than their subject's (enrolled before subjects had keys): deleting the
    /// subject's key does not make copies of these unreadable.
    #[serde(default)]
    pub tenant_sealed: u64,
    /// Sightings (with their templates and best shots) erased with the subjects.
    #[serde(default)]
    pub sightings: u64,
}

impl Erasure {
    /// What erasing faces of one subject (or the subject itself, with all its faces) erased.
    pub fn of_subject(
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_ids: Vec<FaceId>,
        erased_at_ms: i64,
    ) -> Self {
        Self {
            collection_id: collection_id.clone(),
            subject_ids: vec![subject_id.clone()],
            face_ids,
            erased_at_ms,
            physically_erased: false,
            subject_keys_deleted: false,
            tenant_sealed: 0,
            sightings: 0,
        }
    }
}

/// A decision to record in the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewEvent {
    /// Collection the decision was made against.
    pub collection_id: CollectionId,
    /// When.
    pub at_ms: i64,
    /// API key that asked.
    pub key_id: KeyId,
    /// Request it belongs to (an id the server made).
    pub request_id: RequestId,
    /// The client's own correlation id (its `x-request-id`), when it sent a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// `recognize`, `verify`, `search`, `enroll`, `erase`...
    #[schema(value_type = String)]
    pub action: AuditAction,
    /// `match`, `unknown`, `accepted`, `rejected`, `erased`...
    #[schema(value_type = String)]
    pub result: AuditResult,
    /// Subject decided on, if any.
    pub subject_id: Option<SubjectId>,
    /// Score of the decision, if any.
    pub score: Option<f32>,
    /// Index of the face in the image, if any.
    pub face_index: Option<u32>,
    /// The door of a door decision.
    #[serde(default)]
    pub door_id: Option<DoorId>,
    /// Why a door decision was made (`granted` events have none), or why a subject was erased unasked.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reason: Option<AuditReason>,
    /// The fused liveness score of a door decision, where liveness was measured.
    #[serde(default)]
    pub liveness: Option<f32>,
}

impl NewEvent {
    /// The door and subject of a door decision (what a passage records).
    ///
    /// # Errors
    /// [`crate::StoreError::Backend`] for an event without a door or a subject.
    pub fn passage(&self) -> crate::StoreResult<(&DoorId, &SubjectId)> {
        match (&self.door_id, &self.subject_id) {
            (Some(door), Some(subject)) => Ok((door, subject)),
            _ => Err(crate::StoreError::Backend("a passage needs a door and a subject".into())),
        }
    }
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Position in the trail (increasing).
    pub seq: i64,
    /// The decision.
    #[serde(flatten)]
    pub event: NewEvent,
}

/// A face found by a store-side search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceHit {
    /// Face identifier.
    pub face_id: FaceId,
    /// Subject identifier.
    pub subject_id: SubjectId,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// Where a collection's move to another pack stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Kept frames are being re-embedded; the collection still answers with its old pack.
    Running,
    /// The collection switched to the target pack.
    Finished,
}

impl crate::WireName for MigrationState {
    const ALL: &'static [MigrationState] = &[MigrationState::Running, MigrationState::Finished];
}

/// A migration to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMigration {
    /// The pack to move to.
    pub target: PackVersion,
    /// Its template length.
    pub target_dim: u32,
    /// When.
    pub started_at_ms: i64,
}

/// A face and its subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaceRef {
    /// The subject.
    pub subject_id: SubjectId,
    /// The face.
    pub face_id: FaceId,
}

/// A collection's migration (the latest one) and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Migration {
    /// The collection.
    pub collection_id: CollectionId,
    /// The pack it moves from.
    pub from_pack: String,
    /// The pack it moves to.
    pub target: PackVersion,
    /// The target's template length.
    pub target_dim: u32,
    /// Running or finished.
    pub state: MigrationState,
    /// When it started.
    pub started_at_ms: i64,
    /// When the collection switched.
    pub finished_at_ms: Option<i64>,
    /// Faces of the collection.
    pub faces_total: u64,
    /// Faces that have a template of the target pack.
    pub faces_migrated: u64,
    /// Faces with no kept frame and no target template: these people must enrol again to be
    /// recognised under the target pack.
    pub faces_without_crop: Vec<FaceRef>,
}

/// A sealed kept frame to re-embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCrop {
    /// The face.
    pub face_id: FaceId,
    /// Its subject.
    pub subject_id: SubjectId,
    /// The sealed frame.
    pub crop: EncryptedTemplate,
}

/// A face's template under a migration's target pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigratedTemplate {
    /// The face.
    pub face_id: FaceId,
    /// Its template.
    pub template: NewTemplate,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// A weekly opening window of a door, in the door's time zone: `from` (inclusive) to `to` (exclusive),
/// `HH:MM`, on each of `days`. A window whose `to` is not after `from` runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// The days the window opens on.
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM`.
    #[schema(example = "08:00")]
    pub from: String,
    /// Closing time, `HH:MM`.
    #[schema(example = "18:00")]
    pub to: String,
}

/// Which way a door lets people through (anti-passback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Into the area.
    Entry,
    /// Out of it.
    Exit,
}

/// Anti-passback: a door and its paired door of the other direction. A person let through one is not let
/// through it again before passing the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AntiPassback {
    /// This door's direction.
    pub direction: Direction,
    /// The door of the other direction.
    pub paired_door: DoorId,
}

/// The anti-passback check of a passage: the door's pairing and the denial recorded when it refuses.
#[derive(Debug, Clone, Copy)]
pub struct AntiPassbackCheck<'a> {
    /// The door of the other direction.
    pub paired_door: &'a DoorId,
    /// The decision recorded instead of the passage when the person is still inside.
    pub denied: &'a NewEvent,
}

/// Who a door lets in, when, and how sure it must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorPolicy {
    /// Every subject of the collection may pass.
    #[serde(default)]
    pub allow_everyone: bool,
    /// Subjects allowed by id.
    #[serde(default)]
    pub allowed_subjects: Vec<SubjectId>,
    /// Subjects of these groups are allowed.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// IANA time zone of the schedule, e.g. `Europe/Paris`.
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    /// Weekly opening windows; empty: always open.
    #[serde(default)]
    pub schedule: Vec<TimeWindow>,
    /// A live face is required (the pack's liveness models must agree it is not a presentation attack).
    #[serde(default = "yes")]
    pub liveness_required: bool,
    /// Anti-passback pairing with a door of the other direction.
    #[serde(default)]
    pub anti_passback: Option<AntiPassback>,
    /// False-match rate of the identity decision (default: the collection's).
    #[serde(default)]
    pub target_fmr: Option<f64>,
}

fn yes() -> bool {
    true
}

/// A door (access point) of a tenant, deciding against one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Door {
    /// Identifier.
    pub id: DoorId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The collection people are identified in.
    pub collection_id: CollectionId,
    /// Name, unique within the tenant.
    pub name: String,
    /// Who may pass and when.
    pub policy: DoorPolicy,
    /// Creation time.
    pub created_at_ms: i64,
}

/// What a new or replaced door is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDoor {
    /// The collection people are identified in.
    pub collection_id: CollectionId,
    /// Name, unique within the tenant.
    pub name: String,
    /// Who may pass and when.
    pub policy: DoorPolicy,
    /// Creation time (ignored on replacement).
    pub created_at_ms: i64,
}

/// A stranger's face kept as a negative of a subject ("not this person"), sealed, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNegative {
    /// Identifier, chosen by the caller (it is bound into the encryption).
    pub id: NegativeId,
    /// The subject the stranger was taken for.
    pub subject_id: SubjectId,
    /// The pack that made the template.
    pub pack: PackVersion,
    /// The stranger's template, encrypted.
    pub template: EncryptedTemplate,
    /// When.
    pub created_at_ms: i64,
}

/// An ignore-list entry, without its template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NegativeRecord {
    /// Identifier.
    pub id: NegativeId,
    /// The subject the stranger was taken for.
    pub subject_id: SubjectId,
    /// The pack that made its template (entries of another pack than the collection's are not used).
    pub pack: PackVersion,
    /// When.
    pub created_at_ms: i64,
}

/// An ignore-list entry with its encrypted template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNegative {
    /// Identifier.
    pub id: NegativeId,
    /// The subject the stranger was taken for.
    pub subject_id: SubjectId,
    /// The encrypted template.
    pub template: EncryptedTemplate,
}

/// A subject's consent to being enrolled: when, for what, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// When consent was given, ms since the epoch.
    pub given_at_ms: i64,
    /// What for (shown to auditors), 1 to 500 characters.
    pub purpose: String,
    /// When it expires: the subject is then erased automatically, with a receipt.
    pub expires_at_ms: Option<i64>,
}

/// An erasure receipt kept by the store (automatic erasures: nobody asked, so nobody received it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredReceipt {
    /// The collection.
    pub collection_id: CollectionId,
    /// The subject erased.
    pub subject_id: SubjectId,
    /// Why (`consent_expired`).
    pub reason: String,
    /// When, ms since the epoch.
    pub erased_at_ms: i64,
    /// The receipt, as JSON text.
    pub receipt: String,
    /// Lowercase hex SHA-256 of `receipt`'s erasure report.
    pub receipt_sha256: String,
}

/// A subject whose consent expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredConsent {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its collection.
    pub collection_id: CollectionId,
    /// The subject.
    pub subject_id: SubjectId,
}

/// A collection's policy beyond its pack: how long its trail is kept, whether liveness is always scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionPolicy {
    /// Days audit events are kept (none: until the collection is deleted).
    pub retention_days: Option<u32>,
    /// Recognitions and verifications always score liveness.
    pub liveness_required: bool,
}
