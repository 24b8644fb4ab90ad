//! The audit trail and the configuration trail, retention and consent expiry, kept receipts.

use super::*;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_events(&self, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
        self.transaction(|mut tx| async move {
            insert_events(&mut tx, tenant_id, events).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn events(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = $1 AND at_ms > $2 AND seq > $3 \
                     ORDER BY seq LIMIT $4"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(since_ms.unwrap_or(i64::MIN))
                .bind(after_seq.unwrap_or(i64::MIN))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            let events = rows(found, event_row)?;
            Ok((events, tx))
        })
        .await
    }

    async fn changes(&self, tenant_id: &TenantId, after_seq: Option<i64>, limit: u32) -> StoreResult<Vec<Change>> {
        self.transaction(|mut tx| async move {
            let sql =
                format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(after_seq.unwrap_or(i64::MIN))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, change_row)?, tx))
        })
        .await
    }

    async fn expire_events(&self, now_ms: i64) -> StoreResult<u64> {
        self.erasing(|mut tx| async move {
            let collections = RETAINED.iter().map(|(table, time)| {
                format!(
                    "DELETE FROM {table} r USING collections c WHERE c.id = r.collection_id \
                     AND c.retention_days IS NOT NULL AND r.{time} < $1 - c.retention_days::BIGINT * $2"
                )
            });
            // A camera's own retention of its sightings.
            let cameras = "DELETE FROM sightings s USING cameras k WHERE k.collection_id = s.collection_id \
                AND k.name = s.camera AND (k.settings::jsonb ->> 'retention_days') IS NOT NULL \
                AND s.last_seen_ms < $1 - (k.settings::jsonb ->> 'retention_days')::BIGINT * $2";
            let mut deleted = 0;
            for sql in collections.chain(std::iter::once(cameras.to_string())) {
                let done = sqlx::query(AssertSqlSafe(sql))
                    .bind(now_ms)
                    .bind(DAY_MS)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                deleted += done.rows_affected();
            }
            Ok((deleted, tx))
        })
        .await
    }

    async fn expired_consents(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<ExpiredConsent>> {
        self
            .transaction(|mut tx| async move {
                let found = sqlx::query(
                    "SELECT c.tenant_id, s.collection_id, s.id FROM subjects s JOIN collections c ON c.id = s.collection_id \
                     WHERE s.consent_expires_at_ms IS NOT NULL AND s.consent_expires_at_ms <= $1 \
                     ORDER BY s.consent_expires_at_ms LIMIT $2",
                )
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
                let read = |row: &PgRow| {
                    Ok(ExpiredConsent {
                        tenant_id: row.try_get("tenant_id")?,
                        collection_id: row.try_get("collection_id")?,
                        subject_id: row.try_get("id")?,
                    })
                };
                Ok((rows(found, read)?, tx))
            })
            .await
    }

    async fn save_receipt(&self, tenant_id: &TenantId, receipt: &StoredReceipt) -> StoreResult<()> {
        self
            .transaction(|mut tx| async move {
                sqlx::query(
                    "INSERT INTO receipts (tenant_id, collection_id, subject_id, reason, erased_at_ms, receipt, receipt_sha256) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(tenant_id)
                .bind(&receipt.collection_id)
                .bind(&receipt.subject_id)
                .bind(&receipt.reason)
                .bind(receipt.erased_at_ms)
                .bind(&receipt.receipt)
                .bind(&receipt.receipt_sha256)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                Ok(((), tx))
            })
            .await
    }

    async fn receipts(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<StoredReceipt>> {
        self.transaction(|mut tx| async move {
            let found = sqlx::query(
                "SELECT collection_id, subject_id, reason, erased_at_ms, receipt, receipt_sha256 FROM receipts \
                     WHERE tenant_id = $1 AND collection_id = $2 ORDER BY seq",
            )
            .bind(tenant_id)
            .bind(collection_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            let read = |row: &PgRow| {
                Ok(StoredReceipt {
                    collection_id: row.try_get("collection_id")?,
                    subject_id: row.try_get("subject_id")?,
                    reason: row.try_get("reason")?,
                    erased_at_ms: row.try_get("erased_at_ms")?,
                    receipt: row.try_get("receipt")?,
                    receipt_sha256: row.try_get("receipt_sha256")?,
                })
            };
            Ok((rows(found, read)?, tx))
        })
        .await
    }
}

const DAY_MS: i64 = 86_400_000;

/// What a collection's retention erases: each table with the time column its rows age by.
const RETAINED: [(&str, &str); 3] = [("events", "at_ms"), ("outbox", "created_at_ms"), ("sightings", "last_seen_ms")];
