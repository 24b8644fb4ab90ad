//! The audit trail.

use super::*;

pub(crate) async fn append_events(store: &PgStore, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    store
        .transaction(|mut tx| async move {
            insert_events(&mut tx, tenant_id, events).await?;
            Ok(((), tx))
        })
        .await
}

pub(crate) async fn events(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    since_ms: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<AuditEvent>> {
    store
        .transaction(|mut tx| async move {
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

pub(crate) async fn changes(
    store: &PgStore,
    tenant_id: &TenantId,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<Change>> {
    store
        .transaction(|mut tx| async move {
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
