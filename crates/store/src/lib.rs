//! Where enrolled galleries live. [`FaceStore`] is the persistence contract: tenants, API keys, wrapped
//! data keys, collections, subjects, faces (templates only, already encrypted by the caller) and the
//! audit trail. Backends: `facegate-store-sqlite` (embedded, the default) and `facegate-store-postgres`.
//! Ids are newtypes ([`TenantId`], [`CollectionId`], [`SubjectId`], [`FaceId`], [`KeyId`],
//! [`RequestId`], [`DoorId`]), so the trait's methods cannot take them in the wrong order. Every backend must pass `facegate_store_conformance::run_all` in its tests.
//!
//! All calls that touch a collection take the tenant too: a collection of another tenant is simply
//! not found, so one tenant cannot even learn another's ids exist.

mod audit;
mod cameras;
mod changes;
mod ids;
mod names;
mod outbox;
mod readers;
mod records;
mod sightings;

pub use audit::*;
pub use cameras::*;
pub use changes::*;
pub use ids::*;
pub use names::WireName;
pub use outbox::*;
pub use readers::*;
pub use records::*;
pub use sightings::*;

use async_trait::async_trait;

/// Errors of every backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record (or its parent) does not exist for this tenant.
    #[error("not found")]
    NotFound,
    /// A unique name is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot be reached or is shutting down; worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed or holds data it cannot read.
    #[error("store failure: {0}")]
    Backend(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// What every backend says of itself: its name, whether it answers, what its erasures leave.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A short name of the backend for logs and health (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// One round trip to the backend: `Ok` when it answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// What copies of erased data this backend may still hold after an erasure, and for how long: the
    /// statement every erasure receipt carries.
    fn erasure_residue(&self) -> &'static str;
}

/// Tenants, their API keys (only hashes) and their wrapped data keys.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant at `at_ms`; its name is unique.
    async fn create_tenant(&self, name: &str, at_ms: i64) -> StoreResult<Tenant>;
    /// Finds a tenant by name.
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    /// Stores a new API key record (only its hash), recording `audit` in the key's tenant's configuration
    /// trail in the same transaction.
    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &NewChange) -> StoreResult<()>;
    /// Finds a key by the hash of its secret, revoked or not.
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Every key of every tenant, newest first.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Marks a key revoked, recording `audit` in its tenant's configuration trail; false (and nothing
    /// recorded) if no such key or already revoked.
    async fn revoke_api_key(&self, key_id: &KeyId, at_ms: i64, audit: &NewChange) -> StoreResult<bool>;
    /// The tenant's wrapped data key, if one was made.
    async fn data_key(&self, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>>;
    /// Stores the tenant's wrapped data key unless one exists; returns the one that is stored.
    async fn insert_data_key_if_absent(&self, tenant_id: &TenantId, key: &WrappedKey) -> StoreResult<WrappedKey>;
}

/// Galleries: collections and their settings, subjects and their data keys, faces and their sealed templates, revisions and search.
#[async_trait]
pub trait GalleryStore: Backend + Send + Sync {
    /// Creates a collection (its name is unique within the tenant), recording `audit` (its object id is
    /// filled in with the new collection's).
    async fn create_collection(
        &self,
        tenant_id: &TenantId,
        new: &NewCollection,
        audit: &NewChange,
    ) -> StoreResult<Collection>;
    /// The tenant's collections, oldest first.
    async fn list_collections(&self, tenant_id: &TenantId) -> StoreResult<Vec<Collection>>;
    /// One collection.
    async fn collection(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Collection>;
    /// Deletes a collection with its subjects, faces, events and queued webhook events, recording
    /// `audit`; returns what was erased.
    async fn delete_collection(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewChange,
    ) -> StoreResult<Erasure>;
    /// Replaces a collection's policy (retention of its trail, liveness), recording `audit`.
    async fn set_collection_policy(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        policy: &CollectionPolicy,
        audit: &NewChange,
    ) -> StoreResult<Collection>;
    /// Creates a subject in a collection.
    async fn create_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewSubject,
    ) -> StoreResult<Subject>;
    /// The collection's subjects, oldest first.
    async fn list_subjects(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<Subject>>;
    /// One subject.
    async fn subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Subject>;
    /// Replaces a subject's name and metadata.
    async fn update_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        update: &NewSubject,
    ) -> StoreResult<Subject>;
    /// The subjects of a collection with these ids (one round trip), in no particular order; ids that
    /// do not exist are left out.
    async fn subjects_by_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
    ) -> StoreResult<Vec<Subject>>;
    /// Deletes a subject and erases its faces, ignore list, presence and queued webhook events (all but
    /// `audit`'s own), recording `audit` in the same transaction; returns what was erased.
    async fn delete_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure>;
    /// A subject's own data key, sealed under the tenant's, if it has one.
    async fn subject_key(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Option<EncryptedTemplate>>;
    /// Stores a subject's sealed data key unless it has one; returns the one stored
    /// ([`StoreError::NotFound`] for a missing subject). Erased with the subject.
    async fn insert_subject_key_if_absent(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        key: &EncryptedTemplate,
    ) -> StoreResult<EncryptedTemplate>;
    /// The sealed data keys of a collection's subjects (those that have one).
    async fn subject_keys(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>>;
    /// Adds faces to a subject, all or none, recording `audit` in the same transaction.
    async fn add_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        faces: &[NewFace],
        audit: &NewEvent,
    ) -> StoreResult<Vec<FaceRecord>>;
    /// A subject's faces, oldest first.
    async fn list_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<FaceRecord>>;
    /// Deletes one face and erases its template, recording `audit` in the same transaction; returns
    /// what was erased.
    async fn delete_face(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_id: &FaceId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure>;
    /// The encrypted templates of one subject.
    async fn subject_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<StoredTemplate>>;
    /// The collection's revision: it moves with every write to its templates, by exactly one for each
    /// [`FaceStore::add_faces`], [`FaceStore::delete_face`] and [`FaceStore::delete_subject`] (a cached
    /// index follows such a change of its own by this); making or renaming a subject leaves it.
    async fn collection_revision(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<i64>;
    /// Every encrypted template of a collection with the revision they were read at.
    async fn collection_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)>;
    /// Whether [`FaceStore::search_faces`] runs in the store (otherwise callers scan in memory).
    fn searches_in_store(&self) -> bool {
        false
    }
    /// The `limit` faces of a collection most similar to `query` (a search vector, see
    /// [`NewFace::search_vector`]), best first.
    async fn search_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        query: &[f32],
        limit: usize,
    ) -> StoreResult<Vec<FaceHit>> {
        let _ = (tenant_id, collection_id, query, limit);
        Err(StoreError::Backend(format!("the {} store does not search", self.backend())))
    }
}

/// Moving a collection to another pack from its kept frames.
#[async_trait]
pub trait MigrationStore: Send + Sync {
    /// Starts moving a collection to another pack, recording `audit` in the same transaction.
    /// [`StoreError::Conflict`] while another migration of it runs.
    async fn start_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewMigration,
        audit: &NewEvent,
    ) -> StoreResult<Migration>;
    /// The collection's latest migration with its progress, if it ever had one.
    async fn migration(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Option<Migration>>;
    /// Every running migration of every tenant (to resume them after a restart).
    async fn running_migrations(&self) -> StoreResult<Vec<(TenantId, CollectionId)>>;
    /// Up to `limit` kept frames of the running migration's faces that have no target template yet.
    async fn crops_to_migrate(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        limit: u32,
    ) -> StoreResult<Vec<StoredCrop>>;
    /// Stores target templates of the running migration in one transaction; faces erased meanwhile
    /// are skipped. Returns how many were stored.
    async fn add_migrated_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        templates: &[MigratedTemplate],
    ) -> StoreResult<usize>;
    /// Switches the collection to the running migration's pack in one transaction with `audit`: every
    /// face with a target template is searched by it from now on (its old template is kept as one of
    /// its other templates); faces without one stay on the old pack and are no longer searched.
    async fn finish_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewEvent,
    ) -> StoreResult<Migration>;
}

/// Ignore lists: strangers' templates kept as negatives of a subject.
#[async_trait]
pub trait NegativeStore: Send + Sync {
    /// Adds a stranger's template to a subject's ignore list, recording `audit` in the same transaction.
    async fn add_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        negative: &NewNegative,
        audit: &NewEvent,
    ) -> StoreResult<NegativeRecord>;
    /// A subject's ignore list, oldest first.
    async fn list_negatives(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<NegativeRecord>>;
    /// The encrypted ignore-list templates of these subjects made by `pack` (one round trip).
    async fn negatives_of(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
        pack: &str,
    ) -> StoreResult<Vec<StoredNegative>>;
    /// Erases one ignore-list entry (as physically as the backend erases subjects), recording `audit` in
    /// the same transaction.
    async fn delete_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        negative_id: &NegativeId,
        audit: &NewEvent,
    ) -> StoreResult<()>;
}

/// Doors, their passages and anti-passback presence.
#[async_trait]
pub trait DoorStore: Send + Sync {
    /// Creates a door on one of the tenant's collections (its name is unique within the tenant),
    /// recording `audit` (its object id filled in with the new door's).
    async fn create_door(&self, tenant_id: &TenantId, new: &NewDoor, audit: &NewChange) -> StoreResult<Door>;
    /// The tenant's doors, oldest first.
    async fn list_doors(&self, tenant_id: &TenantId) -> StoreResult<Vec<Door>>;
    /// One door.
    async fn door(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door>;
    /// Replaces a door's name, collection and policy, recording `audit`.
    async fn replace_door(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        new: &NewDoor,
        audit: &NewChange,
    ) -> StoreResult<Door>;
    /// Deletes a door (its decisions stay in the trail), its presence records, and the anti-passback
    /// pairing of every door paired with it, recording `audit`.
    async fn delete_door(&self, tenant_id: &TenantId, door_id: &DoorId, audit: &NewChange) -> StoreResult<()>;
    /// Records a granted door decision as a passage, atomically: the subject is no longer present at the
    /// doors paired with this one (in either direction). With an anti-passback `check`, unless the
    /// subject is still recorded present at this door (then `check.denied` is recorded instead and the
    /// answer is false), the subject is also marked present here. Presence is its own record, apart from
    /// the audit trail and its retention.
    async fn record_passage(
        &self,
        tenant_id: &TenantId,
        granted: &NewEvent,
        check: Option<AntiPassbackCheck<'_>>,
    ) -> StoreResult<bool>;
    /// Whether the subject is recorded present at the tenant's door (anti-passback would deny them there).
    async fn is_present(&self, tenant_id: &TenantId, door_id: &DoorId, subject_id: &SubjectId) -> StoreResult<bool>;
    /// Forgets presence at `doors` (of one subject, or everyone), recording `audit`; returns how many
    /// presence records went.
    async fn reset_presence(
        &self,
        tenant_id: &TenantId,
        doors: &[DoorId],
        subject_id: Option<&SubjectId>,
        audit: &NewChange,
    ) -> StoreResult<u64>;
    /// A collection's granted door decisions with `from_ms <= at_ms < to_ms`, in trail order (attendance).
    async fn passages(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<AuditEvent>>;
}

/// Webhooks and the transactional outbox (the delivery log).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Stores a webhook of the tenant, recording `audit`.
    async fn create_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook>;
    /// Replaces a webhook's URL, event types and sealed secret (its queued rows stay, to the new
    /// destination), recording `audit`; [`StoreError::NotFound`] for another tenant's or a missing one.
    async fn replace_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook>;
    /// A webhook's sealed secret; [`StoreError::NotFound`] for another tenant's or a missing one.
    async fn webhook_secret(&self, tenant_id: &TenantId, webhook_id: &WebhookId) -> StoreResult<EncryptedTemplate>;
    /// The tenant's webhooks, oldest first.
    async fn list_webhooks(&self, tenant_id: &TenantId) -> StoreResult<Vec<Webhook>>;
    /// Deletes a webhook, its sealed secret and its outbox rows (as physically as the backend erases
    /// subjects), recording `audit`.
    async fn delete_webhook(&self, tenant_id: &TenantId, webhook_id: &WebhookId, audit: &NewChange) -> StoreResult<()>;
    /// A webhook's delivery log after the cursor `after_seq`, in outbox order, at most `limit`.
    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Pending deliveries of every tenant due at `query.now_ms`, oldest first: at most `query.limit`, at
    /// most `query.per_webhook` of each webhook, none of the webhooks in `query.skip`.
    async fn due_deliveries(&self, query: &DueQuery) -> StoreResult<Vec<DueDelivery>>;
    /// Records the outcomes of attempts, in one transaction.
    async fn record_deliveries(&self, attempts: &[DeliveryAttempt]) -> StoreResult<()>;
    /// Queues events that are not audit events (a camera's decisions) for the tenant's webhooks
    /// subscribed to their types, in one transaction; [`StoreError::NotFound`] for a collection that is
    /// not the tenant's.
    async fn publish(&self, tenant_id: &TenantId, events: &[OutboundEvent]) -> StoreResult<()>;
}

/// The audit trail and the configuration trail, retention and consent expiry, kept receipts.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends decisions to the audit trail.
    async fn append_events(&self, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()>;
    /// A collection's events in trail order (`seq`), at most `limit`: only those after `since_ms`
    /// (exclusive) and after the cursor `after_seq` (exclusive, the last `seq` of the previous page).
    async fn events(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The tenant's configuration changes in trail order, after the cursor `after_seq`, at most `limit`.
    async fn changes(&self, tenant_id: &TenantId, after_seq: Option<i64>, limit: u32) -> StoreResult<Vec<Change>>;
    /// Erases, in every collection with a retention, the audit events and queued webhook events older
    /// than it at `now_ms` (as physically as the backend erases subjects); returns how many rows.
    async fn expire_events(&self, now_ms: i64) -> StoreResult<u64>;
    /// Subjects of every tenant whose consent expired at `now_ms`, at most `limit`.
    async fn expired_consents(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<ExpiredConsent>>;
    /// Keeps the receipt of an automatic erasure.
    async fn save_receipt(&self, tenant_id: &TenantId, receipt: &StoredReceipt) -> StoreResult<()>;
    /// The kept receipts of a collection's automatic erasures, oldest first (they outlive the collection).
    async fn receipts(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<StoredReceipt>>;
}

/// Sightings of video tracks ("who was seen where and when"). A subject's sightings go with its
/// erasure, a collection's with it, and they follow the collection's retention like its audit events.
#[async_trait]
pub trait SightingStore: Send + Sync {
    /// Stores a sighting of one of the tenant's collections, with its evidence when given; answers its
    /// `seq`.
    async fn record_sighting(
        &self,
        tenant_id: &TenantId,
        sighting: &NewSighting,
        evidence: Option<&SightingEvidence>,
    ) -> StoreResult<i64>;
    /// A collection's sightings that pass `filter`, oldest first, each with the name of the person seen.
    async fn sightings(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<Sighting>>;
    /// The sightings that pass `filter` and kept evidence, with their sealed templates (not their best
    /// shots), oldest first.
    async fn sighting_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> StoreResult<Vec<(Sighting, EncryptedTemplate)>>;
    /// One sighting with its evidence; [`StoreError::NotFound`] when the collection has no sighting `seq`.
    async fn sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
    ) -> StoreResult<SightingWithEvidence>;
    /// A new id for a group of unknown faces of the collection, never handed out before by this store
    /// and at least `at_least` (ids given before the store kept the count); [`StoreError::NotFound`]
    /// for a missing collection.
    async fn new_cluster_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        at_least: u64,
    ) -> StoreResult<u64>;
    /// Relabels a sighting (who it is, its group, its evidence sealed again); [`StoreError::NotFound`]
    /// for a missing sighting or subject.
    async fn relabel_sighting(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
        label: &SightingLabel,
    ) -> StoreResult<()>;
}

/// Cameras (video sources a server watches), their URLs sealed by the caller. A collection's cameras go
/// with it.
#[async_trait]
pub trait CameraStore: Send + Sync {
    /// Stores a camera of one of the tenant's collections ([`StoreError::Conflict`] for a name taken).
    async fn create_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera>;
    /// The tenant's cameras, oldest first.
    async fn list_cameras(&self, tenant_id: &TenantId) -> StoreResult<Vec<Camera>>;
    /// One camera.
    async fn camera(&self, tenant_id: &TenantId, camera_id: &CameraId) -> StoreResult<Camera>;
    /// Replaces a camera's collection, name, settings and (when given) source.
    async fn replace_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera>;
    /// Deletes a camera (its sightings stay, under its name, until their retention ends).
    async fn delete_camera(&self, tenant_id: &TenantId, camera_id: &CameraId, audit: &NewChange) -> StoreResult<()>;
    /// Every tenant's enabled cameras, with their sealed URLs.
    async fn running_cameras(&self) -> StoreResult<Vec<RunningCamera>>;
}

/// Door readers (a door's OSDP output, its key sealed) and the cards subjects carry.
#[async_trait]
pub trait ReaderStore: Send + Sync {
    /// Sets (or with `None` removes) a door's reader, recording `audit`; [`StoreError::NotFound`] for a
    /// door that is not the tenant's.
    async fn set_reader(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        reader: Option<&StoredReader>,
        audit: &NewChange,
    ) -> StoreResult<()>;
    /// A door's reader, if it has one; [`StoreError::NotFound`] for a door that is not the tenant's.
    async fn reader(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Option<StoredReader>>;
    /// Every tenant's door readers.
    async fn all_readers(&self) -> StoreResult<Vec<(TenantId, DoorId, StoredReader)>>;
    /// Replaces a subject's cards, recording `audit`; [`StoreError::NotFound`] for a subject not in the
    /// tenant's collection. They go with the subject when it is erased.
    async fn set_credentials(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        credentials: &[CardCredential],
        audit: &NewChange,
    ) -> StoreResult<()>;
    /// A subject's cards (none when it has none or is not the tenant's).
    async fn credentials(&self, tenant_id: &TenantId, subject_id: &SubjectId) -> StoreResult<Vec<CardCredential>>;
}

/// The persistence contract of galleries, the sum of its areas; each method is one transaction. A backend
/// implements each area trait in its own file; every type that implements them all is a `FaceStore`.
pub trait FaceStore:
    Backend
    + TenantStore
    + GalleryStore
    + MigrationStore
    + NegativeStore
    + DoorStore
    + OutboxStore
    + AuditStore
    + SightingStore
    + CameraStore
    + ReaderStore
{
}

impl<
    T: Backend
        + TenantStore
        + GalleryStore
        + MigrationStore
        + NegativeStore
        + DoorStore
        + OutboxStore
        + AuditStore
        + SightingStore
        + CameraStore
        + ReaderStore,
> FaceStore for T
{
}

/// Milliseconds since the Unix epoch: the time of every record and event.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh random identifier (UUID v4, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
