//! Steps shared by the queries inside a transaction: ownership checks, revisions, reads, audit inserts.

use super::*;
use facegate_store::WireName;

pub(crate) async fn ensure_collection(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<()> {
    find_collection(tx, tenant_id, collection_id, "SELECT 1 FROM collections WHERE id = $1 AND tenant_id = $2").await
}

/// [`ensure_collection`], locking the collection's row until the transaction ends, so migrations of it
/// and enrolments into it (which lock it too, see `GalleryStore::add_faces`) take turns.
pub(crate) async fn lock_collection(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<()> {
    let sql = "SELECT 1 FROM collections WHERE id = $1 AND tenant_id = $2 FOR UPDATE";
    find_collection(tx, tenant_id, collection_id, sql).await
}

async fn find_collection(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    sql: &'static str,
) -> StoreResult<()> {
    let found =
        sqlx::query(sql).bind(collection_id).bind(tenant_id).fetch_optional(&mut **tx).await.map_err(map_error)?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

pub(crate) async fn ensure_subject(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<()> {
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

pub(crate) async fn bump_revision(tx: &mut Tx, collection_id: &CollectionId) -> StoreResult<()> {
    sqlx::query("UPDATE collections SET revision = revision + 1 WHERE id = $1")
        .bind(collection_id)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    Ok(())
}

/// Creates the HNSW index of one template length unless it exists (pgvector indexes need a fixed
/// dimension), under an advisory lock so concurrent creators do not collide.
pub(crate) async fn ensure_dim_index(tx: &mut Tx, dim: u32) -> StoreResult<()> {
    if dim == 0 || dim > 2000 {
        return Ok(());
    }
    let sql = format!(
        "CREATE INDEX IF NOT EXISTS faces_hnsw_{dim} ON faces USING hnsw \
         ((search_vector::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
    );
    sqlx::query("SELECT pg_advisory_xact_lock(7420520)").execute(&mut **tx).await.map_err(map_error)?;
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **tx).await.map_err(map_error)?;
    Ok(())
}

pub(crate) async fn read_collection(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Collection> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = $1 AND c.tenant_id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(collection_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    collection_row(&row.ok_or(StoreError::NotFound)?).map_err(map_error)
}

/// Appends audit events inside a transaction, their collections checked to be the tenant's.
pub(crate) async fn insert_events(tx: &mut Tx, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    // Each collection once: a batch (the faces of one image) usually names one.
    let collections: std::collections::BTreeSet<&CollectionId> = events.iter().map(|e| &e.collection_id).collect();
    for collection_id in collections {
        ensure_collection(tx, tenant_id, collection_id).await?;
    }
    for event in events {
        sqlx::query(
            "INSERT INTO events (collection_id, at_ms, key_id, request_id, action, result, subject_id, score, \
                     face_index, door_id, reason, liveness, correlation_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&event.collection_id)
        .bind(event.at_ms)
        .bind(&event.key_id)
        .bind(&event.request_id)
        .bind(event.action.as_str())
        .bind(event.result.as_str())
        .bind(&event.subject_id)
        .bind(event.score)
        .bind(event.face_index.map(|i| i as i32))
        .bind(&event.door_id)
        .bind(event.reason.map(AuditReason::as_str))
        .bind(event.liveness)
        .bind(&event.correlation_id)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    }
    webhooks::queue_events(tx, tenant_id, events).await
}

/// Records a configuration change of `tenant_id` inside a transaction.
pub(crate) async fn insert_change(tx: &mut Tx, tenant_id: &TenantId, change: &NewChange) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO changes (tenant_id, at_ms, key_id, request_id, correlation_id, action, object_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant_id)
    .bind(change.at_ms)
    .bind(&change.key_id)
    .bind(&change.request_id)
    .bind(&change.correlation_id)
    .bind(change.action.as_str())
    .bind(&change.object_id)
    .bind(change.details.to_string())
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(crate) async fn read_subject(
    tx: &mut Tx,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Subject> {
    ensure_subject(tx, tenant_id, collection_id, subject_id).await?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id = $1");
    let row = sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_one(&mut **tx).await.map_err(map_error)?;
    subject_row(&row).map_err(map_error)
}

pub(crate) async fn read_data_key(tx: &mut Tx, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>> {
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

pub(crate) async fn ids<T>(tx: &mut Tx, sql: &'static str, parent: &str) -> StoreResult<Vec<T>>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql).bind(parent).fetch_all(&mut **tx).await.map_err(map_error)
}

/// The collection's revision (it changes with every write to its faces or subjects).
pub(crate) async fn read_revision(tx: &mut Tx, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<i64> {
    let revision: Option<i64> = sqlx::query_scalar("SELECT revision FROM collections WHERE id = $1 AND tenant_id = $2")
        .bind(collection_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    revision.ok_or(StoreError::NotFound)
}

/// Sealed items (templates, kept frames, ignore-list templates) of the subjects `filter` picks (an SQL
/// condition on a subject's `subject_id` or `collection_id`, with one parameter) that were sealed under
/// the tenant's key rather than their subject's: those are the ones with a bare 12-byte nonce.
pub(crate) async fn tenant_sealed(tx: &mut Tx, filter: &str, parameter: &str) -> StoreResult<u64> {
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM faces f WHERE f.{filter} AND octet_length(f.nonce) = 12) \
         + (SELECT COUNT(*) FROM face_templates t JOIN faces f ON f.id = t.face_id WHERE f.{filter} AND octet_length(t.nonce) = 12) \
         + (SELECT COUNT(*) FROM face_crops k JOIN faces f ON f.id = k.face_id WHERE f.{filter} AND octet_length(k.nonce) = 12) \
         + (SELECT COUNT(*) FROM negatives n WHERE n.{filter} AND octet_length(n.nonce) = 12) \
         + (SELECT COUNT(*) FROM sightings s WHERE s.{filter} AND octet_length(s.template_nonce) = 12)"
    );
    let count: i64 =
        sqlx::query_scalar(AssertSqlSafe(sql)).bind(parameter).fetch_one(&mut **tx).await.map_err(map_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Sightings of the subjects (or collection) `filter` picks (an SQL condition on `subject_id` or
/// `collection_id`, with one parameter): what their erasure takes with them.
pub(crate) async fn sightings_of(tx: &mut Tx, filter: &str, parameter: &str) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM sightings WHERE {filter}");
    let count: i64 =
        sqlx::query_scalar(AssertSqlSafe(sql)).bind(parameter).fetch_one(&mut **tx).await.map_err(map_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}
