//! The audit trail and the configuration trail, retention and consent expiry, kept receipts.

use super::*;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_events(&self, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
        let (t, events) = (tenant_id.clone(), events.to_vec());
        self.transaction(move |tx| insert_events(tx, &t, &events)).await
    }

    async fn events(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = ?1 AND at_ms > ?2 AND seq > ?3 \
                     ORDER BY seq LIMIT ?4"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let (since, after) = (since_ms.unwrap_or(i64::MIN), after_seq.unwrap_or(i64::MIN));
            let rows = statement.query_map(params![c, since, after, limit], event_row).map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn changes(&self, tenant_id: &TenantId, after_seq: Option<i64>, limit: u32) -> StoreResult<Vec<Change>> {
        let t = tenant_id.clone();
        self.transaction(move |tx| {
            let sql =
                format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let rows =
                statement.query_map(params![t, after_seq.unwrap_or(i64::MIN), limit], change_row).map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn expire_events(&self, now_ms: i64) -> StoreResult<u64> {
        let (deleted, _) = self
            .erasing(move |tx| {
                let collections = RETAINED.iter().map(|(table, time)| {
                    format!(
                        "DELETE FROM {table} WHERE seq IN (SELECT r.seq FROM {table} r JOIN collections c \
                         ON c.id = r.collection_id WHERE c.retention_days IS NOT NULL AND r.{time} < ?1 - c.retention_days * ?2)"
                    )
                });
                // A camera's own retention of its sightings.
                let cameras = "DELETE FROM sightings WHERE seq IN (SELECT s.seq FROM sightings s JOIN cameras k \
                    ON k.collection_id = s.collection_id AND k.name = s.camera \
                    WHERE json_extract(k.settings, '$.retention_days') IS NOT NULL \
                    AND s.last_seen_ms < ?1 - json_extract(k.settings, '$.retention_days') * ?2)";
                let mut deleted = 0;
                for sql in collections.chain(std::iter::once(cameras.to_string())) {
                    deleted += tx.execute(&sql, params![now_ms, DAY_MS]).map_err(map_error)? as u64;
                }
                Ok(deleted)
            })
            .await?;
        Ok(deleted)
    }

    async fn expired_consents(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<ExpiredConsent>> {
        self
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

    async fn save_receipt(&self, tenant_id: &TenantId, receipt: &StoredReceipt) -> StoreResult<()> {
        let (t, r) = (tenant_id.clone(), receipt.clone());
        self
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

    async fn receipts(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<StoredReceipt>> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
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
}

const DAY_MS: i64 = 86_400_000;

/// What a collection's retention erases: each table with the time column its rows age by.
const RETAINED: [(&str, &str); 3] = [("events", "at_ms"), ("outbox", "created_at_ms"), ("sightings", "last_seen_ms")];
