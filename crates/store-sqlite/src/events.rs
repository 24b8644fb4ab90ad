//! The audit trail.

use super::*;

pub(crate) async fn append_events(store: &SqliteStore, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
    let (t, events) = (tenant_id.to_string(), events.to_vec());
    store.transaction(move |tx| insert_events(tx, &t, &events)).await
}

pub(crate) async fn events(
    store: &SqliteStore,
    tenant_id: &str,
    collection_id: &str,
    since_ms: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<AuditEvent>> {
    let (t, c) = (tenant_id.to_string(), collection_id.to_string());
    store
        .transaction(move |tx| {
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
