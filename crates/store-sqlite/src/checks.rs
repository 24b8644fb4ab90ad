//! Steps shared by the queries inside a transaction: ownership checks, revisions, reads, audit inserts.

use super::*;
use facegate_store::WireName;

pub(crate) fn ensure_collection(
    tx: &Transaction<'_>,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<()> {
    tx.query_row(
        "SELECT 1 FROM collections WHERE id = ?1 AND tenant_id = ?2",
        params![collection_id, tenant_id],
        |_| Ok(()),
    )
    .optional()
    .map_err(map_error)?
    .ok_or(StoreError::NotFound)
}

pub(crate) fn ensure_subject(
    tx: &Transaction<'_>,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<()> {
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

pub(crate) fn bump_revision(tx: &Transaction<'_>, collection_id: &CollectionId) -> StoreResult<()> {
    tx.execute("UPDATE collections SET revision = revision + 1 WHERE id = ?1", params![collection_id])
        .map_err(map_error)?;
    Ok(())
}

/// Appends audit events inside a transaction, their collections checked to be the tenant's.
pub(crate) fn insert_events(tx: &Transaction<'_>, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    let mut insert = tx
        .prepare(
            "INSERT INTO events (collection_id, at_ms, key_id, request_id, action, result, subject_id, score, \
             face_index, door_id, reason, liveness, correlation_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(map_error)?;
    // Each collection once: a batch (the faces of one image) usually names one.
    let collections: std::collections::BTreeSet<&CollectionId> = events.iter().map(|e| &e.collection_id).collect();
    for collection_id in collections {
        ensure_collection(tx, tenant_id, collection_id)?;
    }
    for event in events {
        insert
            .execute(params![
                event.collection_id,
                event.at_ms,
                event.key_id,
                event.request_id,
                event.action.as_str(),
                event.result.as_str(),
                event.subject_id,
                event.score,
                event.face_index,
                event.door_id,
                event.reason.map(AuditReason::as_str),
                event.liveness,
                event.correlation_id
            ])
            .map_err(map_error)?;
    }
    webhooks::queue_events(tx, tenant_id, events)
}

/// Records a configuration change of `tenant_id` inside a transaction.
pub(crate) fn insert_change(tx: &Transaction<'_>, tenant_id: &TenantId, change: &NewChange) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO changes (tenant_id, at_ms, key_id, request_id, correlation_id, action, object_id, details) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            tenant_id,
            change.at_ms,
            change.key_id,
            change.request_id,
            change.correlation_id,
            change.action.as_str(),
            change.object_id,
            change.details.to_string()
        ],
    )
    .map_err(map_error)?;
    Ok(())
}

pub(crate) fn read_data_key(tx: &Transaction<'_>, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>> {
    tx.query_row(
        "SELECT provider, master_key_id, ciphertext FROM data_keys WHERE tenant_id = ?1",
        params![tenant_id],
        |r| Ok(WrappedKey { provider: r.get(0)?, master_key_id: r.get(1)?, ciphertext: r.get(2)? }),
    )
    .optional()
    .map_err(map_error)
}

pub(crate) fn read_collection(
    tx: &Transaction<'_>,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Collection> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = ?1 AND c.tenant_id = ?2");
    tx.query_row(&sql, params![collection_id, tenant_id], collection_row)
        .optional()
        .map_err(map_error)?
        .ok_or(StoreError::NotFound)
}

pub(crate) fn read_subject(
    tx: &Transaction<'_>,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Subject> {
    ensure_subject(tx, tenant_id, collection_id, subject_id)?;
    let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.id = ?1");
    tx.query_row(&sql, params![subject_id], subject_row).map_err(map_error)
}

pub(crate) fn ids<T: rusqlite::types::FromSql>(tx: &Transaction<'_>, sql: &str, parent: &str) -> StoreResult<Vec<T>> {
    let mut statement = tx.prepare(sql).map_err(map_error)?;
    collect(statement.query_map(params![parent], |r| r.get(0)).map_err(map_error)?)
}

/// The collection's revision (it changes with every write to its faces or subjects).
pub(crate) fn read_revision(
    tx: &Transaction<'_>,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<i64> {
    tx.query_row(
        "SELECT revision FROM collections WHERE id = ?1 AND tenant_id = ?2",
        params![collection_id, tenant_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(map_error)?
    .ok_or(StoreError::NotFound)
}

/// Sealed items (templates, kept frames, ignore-list templates) of the subjects `filter` picks (an SQL
/// condition on a subject's `subject_id` or `collection_id`, with one parameter) that were sealed under
/// the tenant's key rather than their subject's: those are the ones with a bare 12-byte nonce.
pub(crate) fn tenant_sealed(tx: &Transaction<'_>, filter: &str, parameter: &str) -> StoreResult<u64> {
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM faces f WHERE f.{filter} AND length(f.nonce) = 12) \
         + (SELECT COUNT(*) FROM face_templates t JOIN faces f ON f.id = t.face_id WHERE f.{filter} AND length(t.nonce) = 12) \
         + (SELECT COUNT(*) FROM face_crops k JOIN faces f ON f.id = k.face_id WHERE f.{filter} AND length(k.nonce) = 12) \
         + (SELECT COUNT(*) FROM negatives n WHERE n.{filter} AND length(n.nonce) = 12) \
         + (SELECT COUNT(*) FROM sightings s WHERE s.{filter} AND length(s.template_nonce) = 12)"
    );
    let count: i64 = tx.query_row(&sql, params![parameter], |row| row.get(0)).map_err(map_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Sightings of the subjects (or collection) `filter` picks (an SQL condition on `subject_id` or
/// `collection_id`, with one parameter): what their erasure takes with them.
pub(crate) fn sightings_of(tx: &Transaction<'_>, filter: &str, parameter: &str) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM sightings WHERE {filter}");
    let count: i64 = tx.query_row(&sql, params![parameter], |row| row.get(0)).map_err(map_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}
