//! The gallery store on PostgreSQL with pgvector (RDS, Aurora or any PostgreSQL ≥ 13 with the
//! extension), so many server or Lambda instances share one gallery.
//!
//! - Migrations are embedded and applied at connect time by sqlx's migrator (checksummed, under its
//!   advisory lock).
//! - Every method is one transaction; transient failures (lost connections, serialization failures,
//!   an administrator shutdown) are retried a few times; a database that stays unreachable gives
//!   [`StoreError::Unavailable`] within the pool's acquire timeout, never a hang.
//! - 1:N search runs in the database. Collections up to [`PgConfig::exact_scan_max_faces`] faces are
//!   scanned exactly; larger ones use the HNSW cosine index of their template length (with iterative
//!   scans so the collection filter does not starve it), and the candidates are re-ranked by exact score.
//!
//! ```no_run
//! # async fn demo() -> Result<(), facegate_store::StoreError> {
//! let store = facegate_store_postgres::PgStore::connect("postgres://localhost/facegate", Default::default()).await?;
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

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use facegate_store::{
    AntiPassbackCheck, ApiKeyRecord, AuditEvent, Change, ChangeAction, Collection, CollectionId, CollectionPolicy,
    DOOR_ACTION, Delivery, DeliveryAttempt, DeliveryState, Door, DoorId, DueDelivery, DueQuery, EncryptedTemplate,
    Erasure, EventType, ExpiredConsent, FaceHit, FaceId, FaceRecord, FaceRef, FaceStore, GRANTED, KeyId,
    MigratedTemplate, MigrationState, NegativeId, NegativeRecord, NewChange, NewCollection, NewDoor, NewEvent, NewFace,
    NewMigration, NewNegative, NewSubject, NewTemplate, NewWebhook, PackVersion, Scope, StoreError, StoreResult,
    StoredCrop, StoredNegative, StoredReceipt, StoredTemplate, Subject, SubjectId, Tenant, TenantId, Webhook,
    WebhookId, WrappedKey, new_id, now_ms, webhook_payload,
};
use pgvector::Vector;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, SqlSafeStr, Transaction};
use sqlx_core::migrate::{Migration, MigrationType, Migrator};

/// Attempts of an operation that keeps failing transiently.
const ATTEMPTS: u32 = 3;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Candidate list size of HNSW searches (pgvector's `hnsw.ef_search`).
const HNSW_EF_SEARCH: u32 = 200;

/// Connection and search settings.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Connections in the pool (keep small on Lambda: one instance serves one request at a time).
    pub max_connections: u32,
    /// How long to wait for a connection before answering "unavailable".
    pub acquire_timeout: Duration,
    /// Collections with at most this many faces are searched exactly; larger ones through HNSW.
    pub exact_scan_max_faces: u64,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self { max_connections: 5, acquire_timeout: Duration::from_secs(3), exact_scan_max_faces: 20_000 }
    }
}

/// The PostgreSQL-backed [`FaceStore`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    config: PgConfig,
    /// A vacuum of the erased tables is scheduled and has not started yet.
    vacuum_pending: Arc<AtomicBool>,
}

/// The tables erasures delete sealed or personal data from, vacuumed after each (`VACUUM FULL` for the
/// small `subject_keys`, so a deleted subject key does not stay in the table's old pages: its file is
/// rewritten and the old one removed).
const ERASED_TABLES: [&str; 9] = [
    "faces",
    "face_templates",
    "face_crops",
    "subjects",
    "negatives",
    "outbox",
    "events",
    "webhooks",
    "FULL subject_keys",
];

/// How long after an erasure the erased tables are vacuumed (erasures in between share it).
const VACUUM_DELAY: Duration = Duration::from_secs(2);

/// The statement every PostgreSQL erasure receipt carries.
const ERASURE_RESIDUE: &str = "PostgreSQL: the rows were deleted in the transaction that issued this receipt, and the \
erased tables are vacuumed within seconds. PostgreSQL does not overwrite deleted rows, so until it reuses the freed space \
the table, index and WAL files may still hold the erased sealed templates, kept frames and ignore-list templates, and each \
face's search vector (the template under the tenant's secret rotation, which the database searches). Each subject's \
sealed data is sealed under the subject's own data key, which this erasure deleted and whose table is rewritten \
(VACUUM FULL) within seconds: once the WAL segments written before the erasure are recycled (minutes, bounded by \
checkpoint_timeout and max_wal_size), the sealed copies left behind cannot be opened (crypto_shredded), except items sealed \
under the tenant's key before subjects had keys (tenant_sealed). The search vectors are not covered: whoever holds the \
tenant's key can read those left in old pages until they are reused. WAL archives and base backups taken before the \
erasure hold the subject's key and data for as long as you retain those.";

type Tx = Transaction<'static, Postgres>;

impl PgStore {
    /// Connects, applies pending migrations, and returns the store.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached; [`StoreError::Backend`] when
    /// its schema is newer than this facegate or a migration fails.
    pub async fn connect(url: &str, config: PgConfig) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .connect(url)
            .await
            .map_err(map_error)?;
        let store = Self { pool, config, vacuum_pending: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        migrator().run(&self.pool).await.map_err(|e| StoreError::Backend(format!("schema migration: {e}")))
    }

    /// Runs an erasure as [`PgStore::transaction`] does, then schedules the vacuum of the erased tables.
    async fn erase<F, Fut>(&self, work: F) -> StoreResult<Erasure>
    where
        F: Fn(Tx) -> Fut,
        Fut: Future<Output = Result<(Erasure, Tx), StoreError>>,
    {
        self.erasing(work).await
    }

    /// Runs a transaction that deletes sealed or personal data as [`PgStore::transaction`] does, then
    /// schedules the vacuum of the tables erasures delete from.
    async fn erasing<T, F, Fut>(&self, work: F) -> StoreResult<T>
    where
        F: Fn(Tx) -> Fut,
        Fut: Future<Output = Result<(T, Tx), StoreError>>,
    {
        let value = self.transaction(work).await?;
        self.schedule_vacuum();
        Ok(value)
    }

    /// Vacuums the tables erasures delete from, soon, once for every erasure made until it starts.
    fn schedule_vacuum(&self) {
        if self.vacuum_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, pending) = (self.pool.clone(), self.vacuum_pending.clone());
        tokio::spawn(async move {
            tokio::time::sleep(VACUUM_DELAY).await;
            pending.store(false, Ordering::Release);
            for table in ERASED_TABLES {
                if let Err(error) = sqlx::raw_sql(AssertSqlSafe(format!("VACUUM {table}"))).execute(&pool).await {
                    tracing::warn!(%error, table, "vacuum after erasure failed");
                }
            }
        });
    }

    /// Runs `work` in a transaction, retrying transient failures; commits only on success.
    async fn transaction<T, F, Fut>(&self, work: F) -> StoreResult<T>
    where
        F: Fn(Tx) -> Fut,
        Fut: Future<Output = Result<(T, Tx), StoreError>>,
    {
        let mut attempt = 1;
        loop {
            let result = match self.pool.begin().await {
                // The pool already waited its whole acquire timeout: answer now rather than wait again.
                Err(error @ sqlx::Error::PoolTimedOut) => return Err(map_error(error)),
                Err(error) => Err(map_error(error)),
                Ok(tx) => {
                    async {
                        let (value, tx) = work(tx).await?;
                        tx.commit().await.map_err(map_error)?;
                        Ok(value)
                    }
                    .await
                }
            };
            match result {
                Err(StoreError::Unavailable(cause)) if attempt < ATTEMPTS => {
                    tracing::warn!(%cause, attempt, "transient database error, retrying");
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl FaceStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
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

    fn searches_in_store(&self) -> bool {
        true
    }

    async fn search_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        query: &[f32],
        limit: usize,
    ) -> StoreResult<Vec<FaceHit>> {
        faces::search_faces(self, tenant_id, collection_id, query, limit).await
    }

    async fn start_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewMigration,
        audit: &NewEvent,
    ) -> StoreResult<facegate_store::Migration> {
        migrations::start_migration(self, tenant_id, collection_id, new, audit).await
    }

    async fn migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<Option<facegate_store::Migration>> {
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
    ) -> StoreResult<facegate_store::Migration> {
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
