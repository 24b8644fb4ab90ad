//! A collection's policy (retention, liveness); expiring audit events, consent expiry, kept receipts.

use super::*;

const DAY_MS: i64 = 86_400_000;

/// What a collection's retention erases: each table with the time column its rows age by.
const RETAINED: [(&str, &str); 2] = [("events", "at_ms"), ("outbox", "created_at_ms")];

pub(crate) async fn set_collection_policy(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    policy: &CollectionPolicy,
    audit: &NewChange,
) -> StoreResult<Collection> {
    let (t, c, policy, audit) = (tenant_id.clone(), collection_id.clone(), *policy, audit.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            tx.execute(
                "UPDATE collections SET retention_days = ?2, liveness_required = ?3 WHERE id = ?1",
                params![c, policy.retention_days, policy.liveness_required],
            )
            .map_err(map_error)?;
            insert_change(tx, &t, &audit)?;
            read_collection(tx, &t, &c)
        })
        .await
}

pub(crate) async fn expire_events(store: &SqliteStore, now_ms: i64) -> StoreResult<u64> {
    let (deleted, _) = store
        .erasing(move |tx| {
            let mut deleted = 0;
            for (table, time) in RETAINED {
                let sql = format!(
                    "DELETE FROM {table} WHERE seq IN (SELECT r.seq FROM {table} r JOIN collections c \
                     ON c.id = r.collection_id WHERE c.retention_days IS NOT NULL AND r.{time} < ?1 - c.retention_days * ?2)"
                );
                deleted += tx.execute(&sql, params![now_ms, DAY_MS]).map_err(map_error)? as u64;
            }
            Ok(deleted)
        })
        .await?;
    Ok(deleted)
}

pub(crate) async fn expired_consents(store: &SqliteStore, now_ms: i64, limit: u32) -> StoreResult<Vec<ExpiredConsent>> {
    store
        .transaction(move |tx| {
            let mut statement = tx
                .prepare(
                    "SELECT c.tenant_id, s.collection_id, s.id FROM subjects s JOIN collections c ON c.id = s.collection_id \
                     WHERE s.consent_expires_at_ms IS NOT NULL AND s.consent_expires_at_ms <= ?1 \
                     ORDER BY s.consent_expires_at_ms LIMIT ?2",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![now_ms, limit], |row| {
                    Ok(ExpiredConsent { tenant_id: row.get(0)?, collection_id: row.get(1)?, subject_id: row.get(2)? })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
}

pub(crate) async fn save_receipt(
    store: &SqliteStore,
    tenant_id: &TenantId,
    receipt: &StoredReceipt,
) -> StoreResult<()> {
    let (t, r) = (tenant_id.clone(), receipt.clone());
    store
        .transaction(move |tx| {
            tx.execute(
                "INSERT INTO receipts (tenant_id, collection_id, subject_id, reason, erased_at_ms, receipt, receipt_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t, r.collection_id, r.subject_id, r.reason, r.erased_at_ms, r.receipt, r.receipt_sha256],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
}

pub(crate) async fn receipts(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Vec<StoredReceipt>> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
            let mut statement = tx
                .prepare(
                    "SELECT collection_id, subject_id, reason, erased_at_ms, receipt, receipt_sha256 FROM receipts \
                     WHERE tenant_id = ?1 AND collection_id = ?2 ORDER BY seq",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![t, c], |row| {
                    Ok(StoredReceipt {
                        collection_id: row.get(0)?,
                        subject_id: row.get(1)?,
                        reason: row.get(2)?,
                        erased_at_ms: row.get(3)?,
                        receipt: row.get(4)?,
                        receipt_sha256: row.get(5)?,
                    })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
}
