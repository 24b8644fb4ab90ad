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

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use facegate_store::{
    AntiPassbackCheck, ApiKeyRecord, AuditAction, AuditEvent, AuditReason, AuditResult, AuditStore, Backend, Change,
    ChangeAction, Collection, CollectionId, CollectionPolicy, Delivery, DeliveryAttempt, DeliveryState, Door, DoorId,
    DoorStore, DueDelivery, DueQuery, EncryptedTemplate, Erasure, EventType, ExpiredConsent, FaceId, FaceRecord,
    FaceRef, GalleryStore, KeyId, MigratedTemplate, Migration, MigrationState, MigrationStore, NegativeId,
    NegativeRecord, NegativeStore, NewChange, NewCollection, NewDoor, NewEvent, NewFace, NewMigration, NewNegative,
    NewSubject, NewTemplate, NewWebhook, OutboundEvent, OutboxStore, PackVersion, Scope, StoreError, StoreResult,
    StoredCrop, StoredNegative, StoredReceipt, StoredTemplate, Subject, SubjectId, Tenant, TenantId, TenantStore,
    Webhook, WebhookId, WrappedKey, new_id,
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
    // IMMEDIATE: the write lock is taken (or waited for, up to the busy timeout) at the start. A deferred
    // transaction that reads and then writes fails at once with "database is locked" when another
    // process (a `facegate watch` beside the server) committed in between, without waiting.
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_error)?;
    let value = work(&tx)?;
    tx.commit().map_err(map_error)?;
    Ok(value)
}

#[async_trait]
impl Backend for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.transaction(|tx| tx.query_row("SELECT 1", [], |_| Ok(())).map_err(map_error)).await
    }

    fn erasure_residue(&self) -> &'static str {
        ERASURE_RESIDUE
    }
}
