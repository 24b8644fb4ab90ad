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

mod audit;
mod cameras;
mod checks;
mod doors;
mod error;
mod galleries;
mod keys;
mod migrate;
mod migrations;
mod negatives;
mod readers;
mod rows;
mod sightings;
mod webhooks;

use checks::*;
use error::*;
use galleries::insert_other_template;
use migrate::*;
use rows::*;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use facegate_store::{
    AntiPassbackCheck, ApiKeyRecord, AuditAction, AuditEvent, AuditReason, AuditResult, AuditStore, Backend, Change,
    ChangeAction, Collection, CollectionId, CollectionPolicy, Delivery, DeliveryAttempt, DeliveryState, Door, DoorId,
    DoorStore, DueDelivery, DueQuery, EncryptedTemplate, Erasure, EventType, ExpiredConsent, FaceHit, FaceId,
    FaceRecord, FaceRef, GalleryStore, KeyId, MigratedTemplate, MigrationState, MigrationStore, NegativeId,
    NegativeRecord, NegativeStore, NewChange, NewCollection, NewDoor, NewEvent, NewFace, NewMigration, NewNegative,
    NewSubject, NewTemplate, NewWebhook, OutboundEvent, OutboxStore, PackVersion, Scope, StoreError, StoreResult,
    StoredCrop, StoredNegative, StoredReceipt, StoredTemplate, Subject, SubjectId, Tenant, TenantId, TenantStore,
    Webhook, WebhookId, WrappedKey, new_id,
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
const ERASED_TABLES: [&str; 11] = [
    "faces",
    "face_templates",
    "face_crops",
    "subjects",
    "negatives",
    "outbox",
    "events",
    "webhooks",
    "door_readers",
    "subject_credentials",
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
impl Backend for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error).map(|_| ())
    }

    fn erasure_residue(&self) -> &'static str {
        ERASURE_RESIDUE
    }
}
