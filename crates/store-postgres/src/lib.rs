//! The gallery store on PostgreSQL with pgvector (RDS, Aurora or any PostgreSQL ≥ 13 with the
//! extension), so many server or Lambda instances share one gallery.
//!
//! - Migrations are embedded and applied at connect time under an advisory lock.
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

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use facegate_store::{
    ApiKeyRecord, AuditEvent, Collection, EncryptedTemplate, Erasure, FaceHit, FaceRecord, FaceStore, NewCollection,
    NewEvent, NewFace, NewSubject, Scope, StoreError, StoreResult, StoredTemplate, Subject, Tenant, WrappedKey, new_id,
};
use pgvector::Vector;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};

/// Schema migrations, applied in order; `facegate_schema` records the version.
const MIGRATIONS: [&str; 1] = [include_str!("../migrations/0001_init.sql")];
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

/// How long after an erasure the faces and subjects tables are vacuumed (erasures in between share it).
const VACUUM_DELAY: Duration = Duration::from_secs(2);

/// The statement every PostgreSQL erasure receipt carries.
const ERASURE_RESIDUE: &str = "PostgreSQL: the rows were deleted in the transaction that issued this receipt, and the faces \
and subjects tables are vacuumed within seconds. Until PostgreSQL reuses the freed space, the deleted sealed templates \
(AES-256-GCM under the tenant's data key) and their rotated search vectors may remain in the table and index files. \
WAL segments written before the erasure hold them until they are recycled after later checkpoints (minutes, bounded by \
checkpoint_timeout and max_wal_size); WAL archives and base backups taken before the erasure hold them for as long as \
you retain those.";

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
        let mut tx = self.pool.begin().await.map_err(map_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock(7420519)").execute(&mut *tx).await.map_err(map_error)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS facegate_schema (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        let version: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM facegate_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_error)?;
        let version = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "database schema version {version} is newer than this facegate ({})",
                MIGRATIONS.len()
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await.map_err(map_error)?;
            sqlx::query("INSERT INTO facegate_schema (version) VALUES ($1)")
                .bind((index + 1) as i32)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
        }
        tx.commit().await.map_err(map_error)
    }

    /// Runs an erasure as [`PgStore::transaction`] does, then schedules the vacuum of the erased tables.
    async fn erase<F, Fut>(&self, work: F) -> StoreResult<Erasure>
    where
        F: Fn(Tx) -> Fut,
        Fut: Future<Output = Result<(Erasure, Tx), StoreError>>,
    {
        let erasure = self.transaction(work).await?;
        self.schedule_vacuum();
        Ok(erasure)
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
            for table in ["faces", "subjects"] {
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
            let result = async {
                let tx = self.pool.begin().await.map_err(map_error)?;
                let (value, tx) = work(tx).await?;
                tx.commit().await.map_err(map_error)?;
                Ok(value)
            }
            .await;
            match result {
                Err(StoreError::Unavailable(cause)) if attempt < ATTEMPTS && !cause.contains("timed out") => {
                    tracing::warn!(%cause, attempt, "transient database error, retrying");
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Maps database errors onto the store's: constraint violations, transient and connection failures.
fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                "23505" => StoreError::Conflict(db.message().to_string()),
                "23503" => StoreError::NotFound,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" => StoreError::Unavailable(error.to_string()),
                c if c.starts_with("08") => StoreError::Unavailable(error.to_string()),
                _ => StoreError::Backend(error.to_string()),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Backend(error.to_string()),
    }
}

async fn ensure_collection(tx: &mut Tx, tenant_id: &str, collection_id: &str) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM collections WHERE id = $1 AND tenant_id = $2")
        .bind(collection_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

async fn ensure_subject(tx: &mut Tx, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<()> {
    let found = sqlx::query(
        "SELECT 1 FROM subjects s JOIN collections c ON c.id = s.collection_id \
         WHERE s.id = $1 AND c.id = $2 AND c.tenant_id = $3 FOR SHARE OF s",
    )
    .bind(subject_id)
    .bind(collection_id)
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_error)?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

async fn bump_revision(tx: &mut Tx, collection_id: &str) -> StoreResult<()> {
    sqlx::query("UPDATE collections SET revision = revision + 1 WHERE id = $1")
        .bind(collection_id)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(())
}

const COLLECTION_COLUMNS: &str = "c.id, c.tenant_id, c.name, c.pack, c.embedding_size, c.target_fmr, c.created_at_ms, \
     (SELECT COUNT(*) FROM subjects s WHERE s.collection_id = c.id) AS subject_count, \
     (SELECT COUNT(*) FROM faces f WHERE f.collection_id = c.id) AS face_count";

fn collection_row(row: &PgRow) -> Result<Collection, sqlx::Error> {
    Ok(Collection {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        pack: row.try_get("pack")?,
        embedding_size: u32::try_from(row.try_get::<i32, _>("embedding_size")?).unwrap_or(0),
        target_fmr: row.try_get("target_fmr")?,
        created_at_ms: row.try_get("created_at_ms")?,
        subject_count: u64::try_from(row.try_get::<i64, _>("subject_count")?).unwrap_or(0),
        face_count: u64::try_from(row.try_get::<i64, _>("face_count")?).unwrap_or(0),
    })
}

const SUBJECT_COLUMNS: &str = "s.id, s.collection_id, s.name, s.metadata, s.created_at_ms, \
     (SELECT COUNT(*) FROM faces f WHERE f.subject_id = s.id) AS face_count";

fn subject_row(row: &PgRow) -> Result<Subject, sqlx::Error> {
    let metadata: String = row.try_get("metadata")?;
    Ok(Subject {
        id: row.try_get("id")?,
        collection_id: row.try_get("collection_id")?,
        name: row.try_get("name")?,
        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
        created_at_ms: row.try_get("created_at_ms")?,
        face_count: u64::try_from(row.try_get::<i64, _>("face_count")?).unwrap_or(0),
    })
}

const FACE_COLUMNS: &str = "id, subject_id, detection_score, sharpness, face_size, created_at_ms";

fn face_row(row: &PgRow) -> Result<FaceRecord, sqlx::Error> {
    Ok(FaceRecord {
        id: row.try_get("id")?,
        subject_id: row.try_get("subject_id")?,
        detection_score: row.try_get("detection_score")?,
        sharpness: row.try_get("sharpness")?,
        face_size: row.try_get("face_size")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn template_row(row: &PgRow) -> Result<StoredTemplate, sqlx::Error> {
    Ok(StoredTemplate {
        face_id: row.try_get("id")?,
        subject_id: row.try_get("subject_id")?,
        template: EncryptedTemplate { nonce: row.try_get("nonce")?, ciphertext: row.try_get("ciphertext")? },
    })
}

fn key_row(row: &PgRow) -> Result<ApiKeyRecord, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        created_at_ms: row.try_get("created_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}

fn rows<T>(rows: Vec<PgRow>, read: fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter().map(read).collect::<Result<_, _>>().map_err(map_error)
}

const KEY_COLUMNS: &str = "id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms";

async fn read_collection(tx: &mut Tx, tenant_id: &str, collection_id: &str) -> StoreResult<Collection> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = $1 AND c.tenant_id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(collection_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    collection_row(&row.ok_or(StoreError::NotFound)?).map_err(map_error)
}

/// Appends audit events inside a transaction, each checked to belong to the tenant's collection.
async fn insert_events(tx: &mut Tx, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
    for event in events {
        ensure_collection(tx, tenant_id, &event.collection_id).await?;
        sqlx::query(
                    "INSERT INTO events (collection_id, at_ms, key_id, request_id, action, result, subject_id, score, face_index) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&event.collection_id)
                .bind(event.at_ms)
                .bind(&event.key_id)
                .bind(&event.request_id)
                .bind(&event.action)
                .bind(&event.result)
                .bind(&event.subject_id)
                .bind(event.score)
                .bind(event.face_index.map(|i| i as i32))
                .execute(&mut **tx)
                .await
                .map_err(map_error)?;
    }
    Ok(())
}

async fn read_subject(tx: &mut Tx, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Subject> {
    ensure_subject(tx, tenant_id, collection_id, subject_id).await?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_one(&mut **tx).await.map_err(map_error)?;
    subject_row(&row).map_err(map_error)
}

async fn read_data_key(tx: &mut Tx, tenant_id: &str) -> StoreResult<Option<WrappedKey>> {
    let row = sqlx::query("SELECT provider, master_key_id, ciphertext FROM data_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    row.map(|r| {
        Ok(WrappedKey {
            provider: r.try_get("provider")?,
            master_key_id: r.try_get("master_key_id")?,
            ciphertext: r.try_get("ciphertext")?,
        })
    })
    .transpose()
    .map_err(map_error)
}

async fn ids(tx: &mut Tx, sql: &'static str, parent: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(sql).bind(parent).fetch_all(&mut **tx).await.map_err(map_error)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl FaceStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_error).map(|_| ())
    }

    fn erasure_residue(&self) -> &'static str {
        ERASURE_RESIDUE
    }

    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        let tenant = Tenant { id: new_id(), name: name.to_string(), created_at_ms: now_ms() };
        let t = &tenant;
        self.transaction(|mut tx| async move {
            sqlx::query("INSERT INTO tenants (id, name, created_at_ms) VALUES ($1, $2, $3)")
                .bind(&t.id)
                .bind(&t.name)
                .bind(t.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok(((), tx))
        })
        .await?;
        Ok(tenant)
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        self.transaction(|mut tx| async move {
            let row = sqlx::query("SELECT id, name, created_at_ms FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
            let tenant = row
                .map(|r| {
                    Ok::<_, sqlx::Error>(Tenant {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        created_at_ms: r.try_get("created_at_ms")?,
                    })
                })
                .transpose()
                .map_err(map_error)?;
            Ok((tenant, tx))
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = &scopes.join(",");
        self.transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key.id)
            .bind(&key.tenant_id)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(scopes)
            .bind(key.created_at_ms)
            .bind(key.revoked_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok(((), tx))
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
            let row =
                sqlx::query(AssertSqlSafe(sql)).bind(key_hash).fetch_optional(&mut *tx).await.map_err(map_error)?;
            Ok((row.as_ref().map(key_row).transpose().map_err(map_error)?, tx))
        })
        .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms DESC, id");
            let found = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, key_row)?, tx))
        })
        .await
    }

    async fn revoke_api_key(&self, key_id: &str, at_ms: i64) -> StoreResult<bool> {
        self.transaction(|mut tx| async move {
            let done = sqlx::query("UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL")
                .bind(key_id)
                .bind(at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((done.rows_affected() == 1, tx))
        })
        .await
    }

    async fn data_key(&self, tenant_id: &str) -> StoreResult<Option<WrappedKey>> {
        self.transaction(|mut tx| async move {
            let key = read_data_key(&mut tx, tenant_id).await?;
            Ok((key, tx))
        })
        .await
    }

    async fn insert_data_key_if_absent(&self, tenant_id: &str, key: &WrappedKey) -> StoreResult<WrappedKey> {
        self.transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO data_keys (tenant_id, provider, master_key_id, ciphertext) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(&key.provider)
            .bind(&key.master_key_id)
            .bind(&key.ciphertext)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let stored = read_data_key(&mut tx, tenant_id).await?.ok_or(StoreError::NotFound)?;
            Ok((stored, tx))
        })
        .await
    }

    async fn create_collection(&self, tenant_id: &str, new: &NewCollection) -> StoreResult<Collection> {
        let id = &new_id();
        self.transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO collections (id, tenant_id, name, pack, embedding_size, target_fmr, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(&new.name)
            .bind(&new.pack)
            .bind(new.embedding_size as i32)
            .bind(new.target_fmr)
            .bind(new.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let dim = new.embedding_size;
            if dim > 0 && dim <= 2000 {
                // One HNSW index per template length (pgvector indexes need a fixed dimension).
                let sql = format!(
                    "CREATE INDEX IF NOT EXISTS faces_hnsw_{dim} ON faces USING hnsw \
                     ((search_vector::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
                );
                sqlx::query("SELECT pg_advisory_xact_lock(7420520)").execute(&mut *tx).await.map_err(map_error)?;
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(map_error)?;
            }
            let collection = read_collection(&mut tx, tenant_id, id).await?;
            Ok((collection, tx))
        })
        .await
    }

    async fn list_collections(&self, tenant_id: &str) -> StoreResult<Vec<Collection>> {
        self.transaction(|mut tx| async move {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = $1 ORDER BY c.created_at_ms, c.id"
            );
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, collection_row)?, tx))
        })
        .await
    }

    async fn collection(&self, tenant_id: &str, collection_id: &str) -> StoreResult<Collection> {
        self.transaction(|mut tx| async move {
            let collection = read_collection(&mut tx, tenant_id, collection_id).await?;
            Ok((collection, tx))
        })
        .await
    }

    async fn delete_collection(&self, tenant_id: &str, collection_id: &str, at_ms: i64) -> StoreResult<Erasure> {
        self.erase(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let subject_ids = ids(
                &mut tx,
                "SELECT id FROM subjects WHERE collection_id = $1 ORDER BY created_at_ms, id",
                collection_id,
            )
            .await?;
            let face_ids = ids(
                &mut tx,
                "SELECT id FROM faces WHERE collection_id = $1 ORDER BY created_at_ms, seq",
                collection_id,
            )
            .await?;
            sqlx::query("DELETE FROM collections WHERE id = $1")
                .bind(collection_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            let erasure = Erasure {
                collection_id: collection_id.to_string(),
                subject_ids,
                face_ids,
                erased_at_ms: at_ms,
                physically_erased: false,
            };
            Ok((erasure, tx))
        })
        .await
    }

    async fn create_subject(&self, tenant_id: &str, collection_id: &str, new: &NewSubject) -> StoreResult<Subject> {
        let id = &new_id();
        let metadata = &new.metadata.to_string();
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            sqlx::query(
                "INSERT INTO subjects (id, collection_id, name, metadata, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(collection_id)
            .bind(&new.name)
            .bind(metadata)
            .bind(new.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let subject = read_subject(&mut tx, tenant_id, collection_id, id).await?;
            Ok((subject, tx))
        })
        .await
    }

    async fn list_subjects(&self, tenant_id: &str, collection_id: &str) -> StoreResult<Vec<Subject>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = $1 ORDER BY s.created_at_ms, s.id"
            );
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(collection_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, subject_row)?, tx))
        })
        .await
    }

    async fn subject(&self, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Subject> {
        self.transaction(|mut tx| async move {
            let subject = read_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            Ok((subject, tx))
        })
        .await
    }

    async fn subjects_by_id(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_ids: &[String],
    ) -> StoreResult<Vec<Subject>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = $1 AND s.id = ANY($2)");
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(subject_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, subject_row)?, tx))
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
        let metadata = &update.metadata.to_string();
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            sqlx::query("UPDATE subjects SET name = $2, metadata = $3 WHERE id = $1")
                .bind(subject_id)
                .bind(&update.name)
                .bind(metadata)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            let subject = read_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            Ok((subject, tx))
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
        self.erase(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let face_ids =
                ids(&mut tx, "SELECT id FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq", subject_id)
                    .await?;
            sqlx::query("DELETE FROM faces WHERE subject_id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            sqlx::query("DELETE FROM subjects WHERE id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            let erasure = Erasure::of_subject(collection_id, subject_id, face_ids, audit.at_ms);
            Ok((erasure, tx))
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
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let mut records = Vec::with_capacity(faces.len());
            for face in faces {
                sqlx::query(
                    "INSERT INTO faces (id, subject_id, collection_id, nonce, ciphertext, dim, search_vector, \
                     detection_score, sharpness, face_size, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&face.id)
                .bind(subject_id)
                .bind(collection_id)
                .bind(&face.template.nonce)
                .bind(&face.template.ciphertext)
                .bind(face.search_vector.len() as i32)
                .bind(Vector::from(face.search_vector.clone()))
                .bind(face.detection_score)
                .bind(face.sharpness)
                .bind(face.face_size)
                .bind(face.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                records.push(FaceRecord {
                    id: face.id.clone(),
                    subject_id: subject_id.to_string(),
                    detection_score: face.detection_score,
                    sharpness: face.sharpness,
                    face_size: face.face_size,
                    created_at_ms: face.created_at_ms,
                });
            }
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            Ok((records, tx))
        })
        .await
    }

    async fn list_faces(&self, tenant_id: &str, collection_id: &str, subject_id: &str) -> StoreResult<Vec<FaceRecord>> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let sql = format!("SELECT {FACE_COLUMNS} FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq");
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, face_row)?, tx))
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
        self.erase(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let done = sqlx::query("DELETE FROM faces WHERE id = $1 AND subject_id = $2")
                .bind(face_id)
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            let erasure = Erasure::of_subject(collection_id, subject_id, vec![face_id.to_string()], audit.at_ms);
            Ok((erasure, tx))
        })
        .await
    }

    async fn subject_templates(
        &self,
        tenant_id: &str,
        collection_id: &str,
        subject_id: &str,
    ) -> StoreResult<Vec<StoredTemplate>> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let found = sqlx::query(
                "SELECT id, subject_id, nonce, ciphertext FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq",
            )
            .bind(subject_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok((rows(found, template_row)?, tx))
        })
        .await
    }

    async fn collection_revision(&self, tenant_id: &str, collection_id: &str) -> StoreResult<i64> {
        self.transaction(|mut tx| async move {
            let revision: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM collections WHERE id = $1 AND tenant_id = $2")
                    .bind(collection_id)
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
            Ok((revision.ok_or(StoreError::NotFound)?, tx))
        })
        .await
    }

    async fn collection_templates(
        &self,
        tenant_id: &str,
        collection_id: &str,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)> {
        self.transaction(|mut tx| async move {
            let revision: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM collections WHERE id = $1 AND tenant_id = $2")
                    .bind(collection_id)
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
            let revision = revision.ok_or(StoreError::NotFound)?;
            let found = sqlx::query(
                "SELECT id, subject_id, nonce, ciphertext FROM faces WHERE collection_id = $1 ORDER BY seq",
            )
            .bind(collection_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok(((revision, rows(found, template_row)?), tx))
        })
        .await
    }

    fn searches_in_store(&self) -> bool {
        true
    }

    async fn search_faces(
        &self,
        tenant_id: &str,
        collection_id: &str,
        query: &[f32],
        limit: usize,
    ) -> StoreResult<Vec<FaceHit>> {
        let query_vector = &Vector::from(query.to_vec());
        let dim = query.len();
        let exact_max = self.config.exact_scan_max_faces;
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            // Is the collection larger than the exact-scan limit? Probing one row past the limit reads
            // at most that many index entries, where COUNT(*) would read them all.
            let offset = i64::try_from(exact_max).unwrap_or(i64::MAX);
            let large: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM faces WHERE collection_id = $1 AND dim = $2 OFFSET $3 LIMIT 1")
                    .bind(collection_id)
                    .bind(dim as i32)
                    .bind(offset)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
            let sql = if large.is_none() {
                // Exact: the plain expression does not match the HNSW index, so this is a scan of the
                // collection's rows through faces_by_collection.
                "SELECT id, subject_id, (search_vector <=> $2)::real AS distance FROM faces \
                 WHERE collection_id = $1 ORDER BY search_vector <=> $2 LIMIT $3"
                    .to_string()
            } else {
                sqlx::query(AssertSqlSafe(format!("SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}"))).execute(&mut *tx).await.map_err(map_error)?;
                sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await.map_err(map_error)?;
                format!(
                    "SELECT id, subject_id, (search_vector::vector({dim}) <=> $2::vector({dim}))::real AS distance FROM faces \
                     WHERE collection_id = $1 AND dim = {dim} \
                     ORDER BY search_vector::vector({dim}) <=> $2::vector({dim}) LIMIT $3"
                )
            };
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(query_vector)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            let mut hits = found
                .iter()
                .map(|r| {
                    Ok(FaceHit {
                        face_id: r.try_get("id")?,
                        subject_id: r.try_get("subject_id")?,
                        score: 1.0 - r.try_get::<f32, _>("distance")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(map_error)?;
            // HNSW with relaxed ordering may return near-ties out of order: re-rank by the exact score.
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok((hits, tx))
        })
        .await
    }

    async fn append_events(&self, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
        self.transaction(|mut tx| async move {
            insert_events(&mut tx, tenant_id, events).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn events(
        &self,
        tenant_id: &str,
        collection_id: &str,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let found = sqlx::query(
                "SELECT seq, collection_id, at_ms, key_id, request_id, action, result, subject_id, score, face_index \
                 FROM events WHERE collection_id = $1 AND at_ms > $2 AND seq > $3 ORDER BY seq LIMIT $4",
            )
            .bind(collection_id)
            .bind(since_ms.unwrap_or(i64::MIN))
            .bind(after_seq.unwrap_or(i64::MIN))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            let events = found
                .iter()
                .map(|r| {
                    Ok(AuditEvent {
                        seq: r.try_get("seq")?,
                        event: NewEvent {
                            collection_id: r.try_get("collection_id")?,
                            at_ms: r.try_get("at_ms")?,
                            key_id: r.try_get("key_id")?,
                            request_id: r.try_get("request_id")?,
                            action: r.try_get("action")?,
                            result: r.try_get("result")?,
                            subject_id: r.try_get("subject_id")?,
                            score: r.try_get("score")?,
                            face_index: r.try_get::<Option<i32>, _>("face_index")?.map(|i| i as u32),
                        },
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(map_error)?;
            Ok((events, tx))
        })
        .await
    }
}
