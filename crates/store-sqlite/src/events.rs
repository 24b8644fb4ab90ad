//! The audit trail.

use super::*;

pub(crate) async fn append_events(store: &SqliteStore, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    let (t, events) = (tenant_id.clone(), events.to_vec());
    store.transaction(move |tx| insert_events(tx, &t, &events)).await
}

pub(crate) async fn events(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    since_ms: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<AuditEvent>> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
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

pub(crate) async fn changes(
    store: &SqliteStore,
    tenant_id: &TenantId,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<Change>> {
    let t = tenant_id.clone();
    store
        .transaction(move |tx| {
            let sql =
                format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let rows =
                statement.query_map(params![t, after_seq.unwrap_or(i64::MIN), limit], change_row).map_err(map_error)?;
            collect(rows)
        })
        .await
}
