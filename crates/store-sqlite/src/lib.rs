//! The embedded gallery store: one SQLite file, no server to run.
//!
//! Why SQLite (through `rusqlite`, bundled): ACID transactions with a write-ahead log and
//! `synchronous=FULL`, so an acknowledged write survives a crash or power cut; one file that backup
//! tools understand; readable with the `sqlite3` shell; and the same SQL model as the PostgreSQL backend.
//! Calls run on tokio's blocking pool over one connection; SQLite serialises writers anyway.
//!
//! Erasure is physical: `secure_delete` makes SQLite overwrite deleted rows and freed pages with zeros,
//! and every erasure ends with a `wal_checkpoint(TRUNCATE)`, which writes the overwritten pages into
//! `gallery.db` and empties the write-ahead log that still held the old page images. When the erasure
//! returns, the erased bytes are in neither file. The file and its WAL are created mode 0600.
//!
//! ```no_run
//! # async fn demo() -> Result<(), facegate_store::StoreError> {
//! let store = facegate_store_sqlite::SqliteStore::open("gallery.db".as_ref())?;
//! # Ok(()) }
//! ```

mod checks;
mod collections;
mod doors;
mod error;
mod events;
mod faces;
mod keys;
mod migrate;
mod migrations;
mod negatives;
mod retention;
mod rows;
mod subjects;
mod webhooks;

use checks::*;
use error::*;
use faces::insert_other_template;
use migrate::*;
use rows::*;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use facegate_store::{
    AntiPassbackCheck, ApiKeyRecord, AuditEvent, Change, ChangeAction, Collection, CollectionId, CollectionPolicy,
    DOOR_ACTION, Delivery, DeliveryAttempt, DeliveryState, Door, DoorId, DueDelivery, DueQuery, EncryptedTemplate,
    Erasure, EventType, ExpiredConsent, FaceId, FaceRecord, FaceRef, FaceStore, GRANTED, KeyId, MigratedTemplate,
    Migration, MigrationState, NegativeId, NegativeRecord, NewChange, NewCollection, NewDoor, NewEvent, NewFace,
    NewMigration, NewNegative, NewSubject, NewTemplate, NewWebhook, PackVersion, Scope, StoreError, StoreResult,
    StoredCrop, StoredNegative, StoredReceipt, StoredTemplate, Subject, SubjectId, Tenant, TenantId, Webhook,
    WebhookId, WrappedKey, new_id, now_ms, webhook_payload,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, params};

/// The statement every embedded-store erasure receipt carries.
const ERASURE_RESIDUE: &str = "Embedded store: the erased rows were overwritten with zeros in gallery.db \
(secure_delete) and the write-ahead log was checkpointed and truncated before this receipt was issued, so neither \
file holds the erased bytes (an erased subject's own data key, which sealed them, went the same way). Copies of \
gallery.db made before the erasure (backups, snapshots) still hold the sealed data and its key until those copies are \
deleted.";

/// The SQLite-backed [`FaceStore`].
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or is from a newer facegate.
    pub fn open(path: &Path) -> StoreResult<Self> {
        owner_only(path)?;
        let mut connection = Connection::open(path).map_err(backend)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;",
            )
            .map_err(backend)?;
        let before = migrate(&mut connection)?;
        if before < SECURE_DELETE_SINCE && before > 0 {
            connection.execute_batch("VACUUM").map_err(backend)?;
            checkpoint(&connection)?;
        }
        Ok(Self { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs an erasure in one transaction, then checkpoints and truncates the write-ahead log so the
    /// overwritten pages reach the database file and the old page images leave the log.
    async fn erase<F>(&self, work: F) -> StoreResult<Erasure>
    where
        F: FnOnce(&Transaction<'_>) -> StoreResult<Erasure> + Send + 'static,
    {
        let (mut erasure, physical) = self.erasing(work).await?;
        erasure.physically_erased = physical;
        Ok(erasure)
    }

    /// Runs a transaction that deletes sealed or personal data, then checkpoints as [`SqliteStore::erase`]
    /// does; also whether the checkpoint completed (the bytes left both files).
    async fn erasing<T, F>(&self, work: F) -> StoreResult<(T, bool)>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.with_connection(move |connection| {
            let value = in_transaction(connection, work)?;
            Ok((value, checkpoint(connection)?))
        })
        .await
    }

    /// Runs `work` in one transaction on the blocking pool; commits only if it returns `Ok`.
    async fn transaction<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.with_connection(move |connection| in_transaction(connection, work)).await
    }

    /// Runs `work` on the connection, on the blocking pool.
    async fn with_connection<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection =
                connection.lock().map_err(|_| StoreError::Unavailable("store connection poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

/// Runs `work` in one transaction; commits only if it returns `Ok`.
fn in_transaction<T>(
    connection: &mut Connection,
    work: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = connection.transaction().map_err(map_error)?;
    let value = work(&tx)?;
    tx.commit().map_err(map_error)?;
    Ok(value)
}

#[async_trait]
impl FaceStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        keys::ping(self).await
    }

    fn erasure_residue(&self) -> &'static str {
        ERASURE_RESIDUE
    }

    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        keys::create_tenant(self, name).await
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        keys::tenant_by_name(self, name).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &NewChange) -> StoreResult<()> {
        keys::insert_api_key(self, key, audit).await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        keys::api_key_by_hash(self, key_hash).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        keys::list_api_keys(self).await
    }

    async fn revoke_api_key(&self, key_id: &KeyId, at_ms: i64, audit: &NewChange) -> StoreResult<bool> {
        keys::revoke_api_key(self, key_id, at_ms, audit).await
    }

    async fn data_key(&self, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>> {
        keys::data_key(self, tenant_id).await
    }

    async fn insert_data_key_if_absent(&self, tenant_id: &TenantId, key: &WrappedKey) -> StoreResult<WrappedKey> {
        keys::insert_data_key_if_absent(self, tenant_id, key).await
    }

    async fn create_collection(
        &self,
        tenant_id: &TenantId,
        new: &NewCollection,
        audit: &NewChange,
    ) -> StoreResult<Collection> {
        collections::create_collection(self, tenant_id, new, audit).await
    }

    async fn list_collections(&self, tenant_id: &TenantId) -> StoreResult<Vec<Collection>> {
        collections::list_collections(self, tenant_id).await
    }

    async fn collection(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Collection> {
        collections::collection(self, tenant_id, collection_id).await
    }

    async fn delete_collection(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewChange,
    ) -> StoreResult<Erasure> {
        collections::delete_collection(self, tenant_id, collection_id, audit).await
    }

    async fn set_collection_policy(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        policy: &CollectionPolicy,
        audit: &NewChange,
    ) -> StoreResult<Collection> {
        retention::set_collection_policy(self, tenant_id, collection_id, policy, audit).await
    }

    async fn expire_events(&self, now_ms: i64) -> StoreResult<u64> {
        retention::expire_events(self, now_ms).await
    }

    async fn expired_consents(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<ExpiredConsent>> {
        retention::expired_consents(self, now_ms, limit).await
    }

    async fn save_receipt(&self, tenant_id: &TenantId, receipt: &StoredReceipt) -> StoreResult<()> {
        retention::save_receipt(self, tenant_id, receipt).await
    }

    async fn receipts(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<StoredReceipt>> {
        retention::receipts(self, tenant_id, collection_id).await
    }

    async fn create_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewSubject,
    ) -> StoreResult<Subject> {
        subjects::create_subject(self, tenant_id, collection_id, new).await
    }

    async fn list_subjects(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<Subject>> {
        subjects::list_subjects(self, tenant_id, collection_id).await
    }

    async fn subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Subject> {
        subjects::subject(self, tenant_id, collection_id, subject_id).await
    }

    async fn subjects_by_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
    ) -> StoreResult<Vec<Subject>> {
        subjects::subjects_by_id(self, tenant_id, collection_id, subject_ids).await
    }

    async fn update_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        update: &NewSubject,
    ) -> StoreResult<Subject> {
        subjects::update_subject(self, tenant_id, collection_id, subject_id, update).await
    }

    async fn delete_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        subjects::delete_subject(self, tenant_id, collection_id, subject_id, audit).await
    }

    async fn add_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        faces: &[NewFace],
        audit: &NewEvent,
    ) -> StoreResult<Vec<FaceRecord>> {
        faces::add_faces(self, tenant_id, collection_id, subject_id, faces, audit).await
    }

    async fn list_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<FaceRecord>> {
        faces::list_faces(self, tenant_id, collection_id, subject_id).await
    }

    async fn delete_face(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_id: &FaceId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        faces::delete_face(self, tenant_id, collection_id, subject_id, face_id, audit).await
    }

    async fn subject_key(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Option<EncryptedTemplate>> {
        subjects::subject_key(self, tenant_id, collection_id, subject_id).await
    }

    async fn insert_subject_key_if_absent(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        key: &EncryptedTemplate,
    ) -> StoreResult<EncryptedTemplate> {
        subjects::insert_subject_key_if_absent(self, tenant_id, collection_id, subject_id, key).await
    }

    async fn subject_keys(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>> {
        subjects::subject_keys(self, tenant_id, collection_id).await
    }

    async fn subject_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<StoredTemplate>> {
        faces::subject_templates(self, tenant_id, collection_id, subject_id).await
    }

    async fn collection_revision(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<i64> {
        collections::collection_revision(self, tenant_id, collection_id).await
    }

    async fn collection_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)> {
        collections::collection_templates(self, tenant_id, collection_id).await
    }

    async fn start_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewMigration,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        migrations::start_migration(self, tenant_id, collection_id, new, audit).await
    }

    async fn migration(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Option<Migration>> {
        migrations::migration(self, tenant_id, collection_id).await
    }

    async fn running_migrations(&self) -> StoreResult<Vec<(TenantId, CollectionId)>> {
        migrations::running_migrations(self).await
    }

    async fn crops_to_migrate(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        limit: u32,
    ) -> StoreResult<Vec<StoredCrop>> {
        migrations::crops_to_migrate(self, tenant_id, collection_id, limit).await
    }

    async fn add_migrated_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        templates: &[MigratedTemplate],
    ) -> StoreResult<usize> {
        migrations::add_migrated_templates(self, tenant_id, collection_id, templates).await
    }

    async fn finish_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        migrations::finish_migration(self, tenant_id, collection_id, audit).await
    }

    async fn add_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        negative: &NewNegative,
        audit: &NewEvent,
    ) -> StoreResult<NegativeRecord> {
        negatives::add_negative(self, tenant_id, collection_id, negative, audit).await
    }

    async fn list_negatives(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<NegativeRecord>> {
        negatives::list_negatives(self, tenant_id, collection_id, subject_id).await
    }

    async fn negatives_of(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
        pack: &str,
    ) -> StoreResult<Vec<StoredNegative>> {
        negatives::negatives_of(self, tenant_id, collection_id, subject_ids, pack).await
    }

    async fn delete_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        negative_id: &NegativeId,
        audit: &NewEvent,
    ) -> StoreResult<()> {
        negatives::delete_negative(self, tenant_id, collection_id, subject_id, negative_id, audit).await
    }

    async fn create_door(&self, tenant_id: &TenantId, new: &NewDoor, audit: &NewChange) -> StoreResult<Door> {
        doors::create_door(self, tenant_id, new, audit).await
    }

    async fn list_doors(&self, tenant_id: &TenantId) -> StoreResult<Vec<Door>> {
        doors::list_doors(self, tenant_id).await
    }

    async fn door(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
        doors::door(self, tenant_id, door_id).await
    }

    async fn replace_door(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        new: &NewDoor,
        audit: &NewChange,
    ) -> StoreResult<Door> {
        doors::replace_door(self, tenant_id, door_id, new, audit).await
    }

    async fn delete_door(&self, tenant_id: &TenantId, door_id: &DoorId, audit: &NewChange) -> StoreResult<()> {
        doors::delete_door(self, tenant_id, door_id, audit).await
    }

    async fn record_passage(
        &self,
        tenant_id: &TenantId,
        granted: &NewEvent,
        check: Option<AntiPassbackCheck<'_>>,
    ) -> StoreResult<bool> {
        doors::record_passage(self, tenant_id, granted, check).await
    }

    async fn reset_presence(
        &self,
        tenant_id: &TenantId,
        doors: &[DoorId],
        subject_id: Option<&SubjectId>,
        audit: &NewChange,
    ) -> StoreResult<u64> {
        doors::reset_presence(self, tenant_id, doors, subject_id, audit).await
    }

    async fn passages(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<AuditEvent>> {
        doors::passages(self, tenant_id, collection_id, from_ms, to_ms).await
    }

    async fn create_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook> {
        webhooks::create_webhook(self, tenant_id, new, audit).await
    }

    async fn list_webhooks(&self, tenant_id: &TenantId) -> StoreResult<Vec<Webhook>> {
        webhooks::list_webhooks(self, tenant_id).await
    }

    async fn delete_webhook(&self, tenant_id: &TenantId, webhook_id: &WebhookId, audit: &NewChange) -> StoreResult<()> {
        webhooks::delete_webhook(self, tenant_id, webhook_id, audit).await
    }

    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        webhooks::deliveries(self, tenant_id, webhook_id, after_seq, limit).await
    }

    async fn due_deliveries(&self, query: &DueQuery) -> StoreResult<Vec<DueDelivery>> {
        webhooks::due_deliveries(self, query).await
    }

    async fn record_deliveries(&self, attempts: &[DeliveryAttempt]) -> StoreResult<()> {
        webhooks::record_deliveries(self, attempts).await
    }

    async fn append_events(&self, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
        events::append_events(self, tenant_id, events).await
    }

    async fn changes(&self, tenant_id: &TenantId, after_seq: Option<i64>, limit: u32) -> StoreResult<Vec<Change>> {
        events::changes(self, tenant_id, after_seq, limit).await
    }

    async fn events(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        events::events(self, tenant_id, collection_id, since_ms, after_seq, limit).await
    }
}
