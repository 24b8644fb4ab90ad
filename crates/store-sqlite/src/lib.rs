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

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use facegate_store::{
    ApiKeyRecord, AuditEvent, Collection, EncryptedTemplate, Erasure, FaceRecord, FaceStore, NewCollection, NewEvent,
    NewFace, NewSubject, Scope, StoreError, StoreResult, StoredTemplate, Subject, Tenant, WrappedKey, new_id,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, params};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: [&str; 2] =
    [include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_secure_delete.sql")];
/// The first schema version whose files were always written with `secure_delete`; a file from before
/// it is vacuumed once, so bytes deleted by older versions do not linger in its free space.
const SECURE_DELETE_SINCE: usize = 2;

/// The statement every embedded-store erasure receipt carries.
const ERASURE_RESIDUE: &str = "Embedded store: the erased rows were overwritten with zeros in gallery.db \
(secure_delete) and the write-ahead log was checkpointed and truncated before this receipt was issued, so neither \
file holds the erased bytes. Copies of gallery.db made before the erasure (backups, snapshots) still hold the sealed \
templates until those copies are deleted.";

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
        self.with_connection(move |connection| {
            let mut erasure = in_transaction(connection, work)?;
            erasure.physically_erased = checkpoint(connection)?;
            Ok(erasure)
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

/// Appends audit events inside a transaction, each checked to belong to the tenant's collection.
fn insert_events(tx: &Transaction<'_>, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
    let mut insert = tx
        .prepare(
            "INSERT INTO events (collection_id, at_ms, key_id, request_id, action, result, subject_id, score, \
             face_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(map_error)?;
    for event in events {
        ensure_collection(tx, tenant_id, &event.collection_id)?;
        insert
            .execute(params![
                event.collection_id,
                event.at_ms,
                event.key_id,
                event.request_id,
                event.action,
                event.result,
                event.subject_id,
                event.score,
                event.face_index
            ])
            .map_err(map_error)?;
    }
    Ok(())
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

/// Creates the database file readable by its owner only, and makes its WAL and shared-memory files so
/// (SQLite gives those the database file's mode when it creates them).
fn owner_only(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if Path::new(&file).exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// Checkpoints the write-ahead log into the database file and truncates it to zero bytes; false when
/// another process's reader kept it from completing within the busy timeout.
fn checkpoint(connection: &Connection) -> StoreResult<bool> {
    let busy: i64 = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0)).map_err(map_error)?;
    Ok(busy == 0)
}

/// Applies pending migrations; returns the schema version found before.
fn migrate(connection: &mut Connection) -> StoreResult<usize> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "store schema version {version} is newer than this facegate ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = connection.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(version)
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn map_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(error.to_string()),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(error.to_string()),
        _ => backend(error),
    }
}

fn ensure_collection(tx: &Transaction<'_>, tenant_id: &str, collection_id: &str) -> StoreResult<()> {
    tx.query_row(
        "SELECT 1 FROM collections WHERE id = ?1 AND tenant_id = ?2",
        params![collection_id, tenant_id],
        |_| Ok(()),
    )
    .optional()
    .map_err(map_error)?
    .ok_or(StoreError::NotFound)
}

fn ensure_subject(tx: &Transaction<'_>, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<()> {
    tx.query_row(
        "SELECT 1 FROM subjects s JOIN collections c ON c.id = s.collection_id \
         WHERE s.id = ?1 AND c.id = ?2 AND c.tenant_id = ?3",
        params![subject_id, collection_id, tenant_id],
        |_| Ok(()),
    )
    .optional()
    .map_err(map_error)?
    .ok_or(StoreError::NotFound)
}

fn bump_revision(tx: &Transaction<'_>, collection_id: &str) -> StoreResult<()> {
    tx.execute("UPDATE collections SET revision = revision + 1 WHERE id = ?1", params![collection_id])
        .map_err(map_error)?;
    Ok(())
}

const COLLECTION_COLUMNS: &str = "c.id, c.tenant_id, c.name, c.pack, c.embedding_size, c.target_fmr, c.created_at_ms, \
     (SELECT COUNT(*) FROM subjects s WHERE s.collection_id = c.id), \
     (SELECT COUNT(*) FROM faces f WHERE f.collection_id = c.id)";

fn collection_row(row: &Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        pack: row.get(3)?,
        embedding_size: row.get(4)?,
        target_fmr: row.get(5)?,
        created_at_ms: row.get(6)?,
        subject_count: count(row, 7)?,
        face_count: count(row, 8)?,
    })
}

const SUBJECT_COLUMNS: &str = "s.id, s.collection_id, s.name, s.metadata, s.created_at_ms, (SELECT COUNT(*) FROM faces f WHERE f.subject_id = s.id)";

fn subject_row(row: &Row<'_>) -> rusqlite::Result<Subject> {
    let metadata: String = row.get(3)?;
    Ok(Subject {
        id: row.get(0)?,
        collection_id: row.get(1)?,
        name: row.get(2)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
        created_at_ms: row.get(4)?,
        face_count: count(row, 5)?,
    })
}

fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    row.get::<_, i64>(index).map(|n| u64::try_from(n).unwrap_or(0))
}

fn face_row(row: &Row<'_>) -> rusqlite::Result<FaceRecord> {
    Ok(FaceRecord {
        id: row.get(0)?,
        subject_id: row.get(1)?,
        detection_score: row.get(2)?,
        sharpness: row.get(3)?,
        face_size: row.get(4)?,
        created_at_ms: row.get(5)?,
    })
}

fn template_row(row: &Row<'_>) -> rusqlite::Result<StoredTemplate> {
    Ok(StoredTemplate {
        face_id: row.get(0)?,
        subject_id: row.get(1)?,
        template: EncryptedTemplate { nonce: row.get(2)?, ciphertext: row.get(3)? },
    })
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let scopes: String = row.get(4)?;
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        name: row.get(2)?,
        key_hash: row.get(3)?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        created_at_ms: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> StoreResult<Vec<T>> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map_error)
}

#[async_trait]
impl FaceStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.transaction(|tx| tx.query_row("SELECT 1", [], |_| Ok(())).map_err(map_error)).await
    }

    fn erasure_residue(&self) -> &'static str {
        ERASURE_RESIDUE
    }

    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        let tenant = Tenant { id: new_id(), name: name.to_string(), created_at_ms: now_ms() };
        let stored = tenant.clone();
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at_ms) VALUES (?1, ?2, ?3)",
                params![stored.id, stored.name, stored.created_at_ms],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await?;
        Ok(tenant)
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let name = name.to_string();
        self.transaction(move |tx| {
            tx.query_row("SELECT id, name, created_at_ms FROM tenants WHERE name = ?1", params![name], |r| {
                Ok(Tenant { id: r.get(0)?, name: r.get(1)?, created_at_ms: r.get(2)? })
            })
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.transaction(move |tx| {
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            tx.execute(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.id,
                    key.tenant_id,
                    key.name,
                    key.key_hash,
                    scopes.join(","),
                    key.created_at_ms,
                    key.revoked_at_ms
                ],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let key_hash = key_hash.to_string();
        self.transaction(move |tx| {
            tx.query_row(
                "SELECT id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms FROM api_keys WHERE key_hash = ?1",
                params![key_hash],
                key_row,
            )
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.transaction(|tx| {
            let mut statement = tx
                .prepare(
                    "SELECT id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms FROM api_keys \
                     ORDER BY created_at_ms DESC, id",
                )
                .map_err(map_error)?;
            collect(statement.query_map([], key_row).map_err(map_error)?)
        })
        .await
    }

    async fn revoke_api_key(&self, key_id: &str, at_ms: i64) -> StoreResult<bool> {
        let key_id = key_id.to_string();
        self.transaction(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
                    params![key_id, at_ms],
                )
                .map_err(map_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn data_key(&self, tenant_id: &str) -> StoreResult<Option<WrappedKey>> {
        let tenant_id = tenant_id.to_string();
        self.transaction(move |tx| read_data_key(tx, &tenant_id)).await
    }

    async fn insert_data_key_if_absent(&self, tenant_id: &str, key: &WrappedKey) -> StoreResult<WrappedKey> {
        let (tenant_id, key) = (tenant_id.to_string(), key.clone());
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO data_keys (tenant_id, provider, master_key_id, ciphertext) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant_id) DO NOTHING",
                params![tenant_id, key.provider, key.master_key_id, key.ciphertext],
            )
            .map_err(map_error)?;
            read_data_key(tx, &tenant_id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn create_collection(&self, tenant_id: &str, new: &NewCollection) -> StoreResult<Collection> {
        let (tenant_id, new) = (tenant_id.to_string(), new.clone());
        self.transaction(move |tx| {
            let id = new_id();
            tx.execute(
                "INSERT INTO collections (id, tenant_id, name, pack, embedding_size, target_fmr, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, tenant_id, new.name, new.pack, new.embedding_size, new.target_fmr, new.created_at_ms],
            )
            .map_err(map_error)?;
            read_collection(tx, &tenant_id, &id)
        })
        .await
    }

    async fn list_collections(&self, tenant_id: &str) -> StoreResult<Vec<Collection>> {
        let tenant_id = tenant_id.to_string();
        self.transaction(move |tx| {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = ?1 ORDER BY c.created_at_ms, c.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![tenant_id], collection_row).map_err(map_error)?)
        })
        .await
    }

    async fn collection(&self, tenant_id: &str, collection_id: &str) -> StoreResult<Collection> {
        let (tenant_id, collection_id) = (tenant_id.to_string(), collection_id.to_string());
        self.transaction(move |tx| read_collection(tx, &tenant_id, &collection_id)).await
    }

    async fn delete_collection(&self, tenant_id: &str, collection_id: &str, at_ms: i64) -> StoreResult<Erasure> {
        let (tenant_id, collection_id) = (tenant_id.to_string(), collection_id.to_string());
        self.erase(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let subject_ids =
                ids(tx, "SELECT id FROM subjects WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            let face_ids =
                ids(tx, "SELECT id FROM faces WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            tx.execute("DELETE FROM collections WHERE id = ?1", params![collection_id]).map_err(map_error)?;
            Ok(Erasure { collection_id, subject_ids, face_ids, erased_at_ms: at_ms, physically_erased: false })
        })
        .await
    }

    async fn create_subject(&self, tenant_id: &str, collection_id: &str, new: &NewSubject) -> StoreResult<Subject> {
        let (tenant_id, collection_id, new) = (tenant_id.to_string(), collection_id.to_string(), new.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let id = new_id();
            tx.execute(
                "INSERT INTO subjects (id, collection_id, name, metadata, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, collection_id, new.name, new.metadata.to_string(), new.created_at_ms],
            )
            .map_err(map_error)?;
            read_subject(tx, &tenant_id, &collection_id, &id)
        })
        .await
    }

    async fn list_subjects(&self, tenant_id: &str, collection_id: &str) -> StoreResult<Vec<Subject>> {
        let (tenant_id, collection_id) = (tenant_id.to_string(), collection_id.to_string());
        self.transaction(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = ?1 ORDER BY s.created_at_ms, s.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![collection_id], subject_row).map_err(map_error)?)
        })
        .await
    }

    async fn subject(&self, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Subject> {
        let (t, c, s) = (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string());
        self.transaction(move |tx| read_subject(tx, &t, &c, &s)).await
    }

    async fn subjects_by_id(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_ids: &[String],
    ) -> StoreResult<Vec<Subject>> {
        let (t, c, wanted) = (tenant_id.to_string(), collection_id.to_string(), subject_ids.to_vec());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = ?1 AND s.id IN \
                 (SELECT value FROM json_each(?2))"
            );
            let ids = serde_json::Value::from(wanted).to_string();
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![c, ids], subject_row).map_err(map_error)?)
        })
        .await
    }

    async fn update_subject(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
        update: &NewSubject,
    ) -> StoreResult<Subject> {
        let (t, c, s, update) =
            (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string(), update.clone());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            tx.execute(
                "UPDATE subjects SET name = ?2, metadata = ?3 WHERE id = ?1",
                params![s, update.name, update.metadata.to_string()],
            )
            .map_err(map_error)?;
            read_subject(tx, &t, &c, &s)
        })
        .await
    }

    async fn delete_subject(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        let (t, c, s, audit) =
            (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string(), audit.clone());
        self.erase(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let face_ids = ids(tx, "SELECT id FROM faces WHERE subject_id = ?1 ORDER BY created_at_ms, id", &s)?;
            tx.execute("DELETE FROM faces WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            tx.execute("DELETE FROM subjects WHERE id = ?1", params![s]).map_err(map_error)?;
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(Erasure::of_subject(&c, &s, face_ids, audit.at_ms))
        })
        .await
    }

    async fn add_faces(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
        faces: &[NewFace],
        audit: &NewEvent,
    ) -> StoreResult<Vec<FaceRecord>> {
        let (t, c, s, faces, audit) =
            (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string(), faces.to_vec(), audit.clone());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO faces (id, subject_id, collection_id, nonce, ciphertext, detection_score, sharpness, \
                     face_size, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(map_error)?;
            let mut records = Vec::with_capacity(faces.len());
            for face in faces {
                insert
                    .execute(params![
                        face.id,
                        s,
                        c,
                        face.template.nonce,
                        face.template.ciphertext,
                        face.detection_score,
                        face.sharpness,
                        face.face_size,
                        face.created_at_ms
                    ])
                    .map_err(map_error)?;
                records.push(FaceRecord {
                    id: face.id,
                    subject_id: s.clone(),
                    detection_score: face.detection_score,
                    sharpness: face.sharpness,
                    face_size: face.face_size,
                    created_at_ms: face.created_at_ms,
                });
            }
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(records)
        })
        .await
    }

    async fn list_faces(&self, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Vec<FaceRecord>> {
        let (t, c, s) = (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let mut statement = tx
                .prepare(
                    "SELECT id, subject_id, detection_score, sharpness, face_size, created_at_ms FROM faces \
                     WHERE subject_id = ?1 ORDER BY created_at_ms, rowid",
                )
                .map_err(map_error)?;
            collect(statement.query_map(params![s], face_row).map_err(map_error)?)
        })
        .await
    }

    async fn delete_face(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
        face_id: &str,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        let (t, c, s, f, audit) = (
            tenant_id.to_string(),
            collection_id.to_string(),
            subject_id.to_string(),
            face_id.to_string(),
            audit.clone(),
        );
        self.erase(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let deleted =
                tx.execute("DELETE FROM faces WHERE id = ?1 AND subject_id = ?2", params![f, s]).map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(Erasure::of_subject(&c, &s, vec![f], audit.at_ms))
        })
        .await
    }

    async fn subject_templates(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
    ) -> StoreResult<Vec<StoredTemplate>> {
        let (t, c, s) = (tenant_id.to_string(), collection_id.to_string(), subject_id.to_string());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let mut statement = tx
                .prepare("SELECT id, subject_id, nonce, ciphertext FROM faces WHERE subject_id = ?1 ORDER BY created_at_ms, rowid")
                .map_err(map_error)?;
            collect(statement.query_map(params![s], template_row).map_err(map_error)?)
        })
        .await
    }

    async fn collection_revision(&self, tenant_id: &str, collection_id: &str) -> StoreResult<i64> {
        let (t, c) = (tenant_id.to_string(), collection_id.to_string());
        self.transaction(move |tx| {
            tx.query_row("SELECT revision FROM collections WHERE id = ?1 AND tenant_id = ?2", params![c, t], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_error)?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn collection_templates(
        &self,
        tenant_id: &str,
        collection_id: &str,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)> {
        let (t, c) = (tenant_id.to_string(), collection_id.to_string());
        self.transaction(move |tx| {
            let revision: i64 = tx
                .query_row("SELECT revision FROM collections WHERE id = ?1 AND tenant_id = ?2", params![c, t], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            let mut statement = tx
                .prepare("SELECT id, subject_id, nonce, ciphertext FROM faces WHERE collection_id = ?1 ORDER BY rowid")
                .map_err(map_error)?;
            let templates = collect(statement.query_map(params![c], template_row).map_err(map_error)?)?;
            Ok((revision, templates))
        })
        .await
    }

    async fn append_events(&self, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
        let (t, events) = (tenant_id.to_string(), events.to_vec());
        self.transaction(move |tx| insert_events(tx, &t, &events)).await
    }

    async fn events(
        &self,
        tenant_id: &str,
        collection_id: &str,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let (t, c) = (tenant_id.to_string(), collection_id.to_string());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let mut statement = tx
                .prepare(
                    "SELECT seq, collection_id, at_ms, key_id, request_id, action, result, subject_id, score, face_index \
                     FROM events WHERE collection_id = ?1 AND at_ms > ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![c, since_ms.unwrap_or(i64::MIN), after_seq.unwrap_or(i64::MIN), limit], |r| {
                    Ok(AuditEvent {
                        seq: r.get(0)?,
                        event: NewEvent {
                            collection_id: r.get(1)?,
                            at_ms: r.get(2)?,
                            key_id: r.get(3)?,
                            request_id: r.get(4)?,
                            action: r.get(5)?,
                            result: r.get(6)?,
                            subject_id: r.get(7)?,
                            score: r.get(8)?,
                            face_index: r.get(9)?,
                        },
                    })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }
}

fn read_data_key(tx: &Transaction<'_>, tenant_id: &str) -> StoreResult<Option<WrappedKey>> {
    tx.query_row(
        "SELECT provider, master_key_id, ciphertext FROM data_keys WHERE tenant_id = ?1",
        params![tenant_id],
        |r| Ok(WrappedKey { provider: r.get(0)?, master_key_id: r.get(1)?, ciphertext: r.get(2)? }),
    )
    .optional()
    .map_err(map_error)
}

fn read_collection(tx: &Transaction<'_>, tenant_id: &str, collection_id: &str) -> StoreResult<Collection> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = ?1 AND c.tenant_id = ?2");
    tx.query_row(&sql, params![collection_id, tenant_id], collection_row)
        .optional()
        .map_err(map_error)?
        .ok_or(StoreError::NotFound)
}

fn read_subject(tx: &Transaction<'_>, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Subject> {
    ensure_subject(tx, tenant_id, collection_id, subject_id)?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id = ?1");
    tx.query_row(&sql, params![subject_id], subject_row).map_err(map_error)
}

fn ids(tx: &Transaction<'_>, sql: &str, parent: &str) -> StoreResult<Vec<String>> {
    let mut statement = tx.prepare(sql).map_err(map_error)?;
    collect(statement.query_map(params![parent], |r| r.get(0)).map_err(map_error)?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
