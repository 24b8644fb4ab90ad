//! The audit trail.

use super::*;

pub(crate) async fn append_events(store: &PgStore, tenant_id: &str, events: &[NewEvent]) -> StoreResult<()> {
    store
        .transaction(|mut tx| async move {
            insert_events(&mut tx, tenant_id, events).await?;
            Ok(((), tx))
        })
        .await
}

pub(crate) async fn events(
    store: &PgStore,
    tenant_id: &str,
    collection_id: &str,
    since_ms: Option<i64>,
    after_seq: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<AuditEvent>> {
    store
        .transaction(|mut tx| async move {
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
