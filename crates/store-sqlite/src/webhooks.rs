//! Webhooks and the transactional outbox (its rows are the delivery log).

use super::*;
use facegate_store::WireName;

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn create_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook> {
        self.write_webhook(tenant_id, new, audit, false).await
    }

    async fn replace_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook> {
        self.write_webhook(tenant_id, new, audit, true).await
    }

    async fn webhook_secret(&self, tenant_id: &TenantId, webhook_id: &WebhookId) -> StoreResult<EncryptedTemplate> {
        let (t, w) = (tenant_id.clone(), webhook_id.clone());
        self.transaction(move |tx| {
            tx.query_row(
                "SELECT secret_nonce, secret_ciphertext FROM webhooks WHERE id = ?1 AND tenant_id = ?2",
                params![w, t],
                |row| Ok(EncryptedTemplate { nonce: row.get(0)?, ciphertext: row.get(1)? }),
            )
            .optional()
            .map_err(map_error)?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn list_webhooks(&self, tenant_id: &TenantId) -> StoreResult<Vec<Webhook>> {
        let t = tenant_id.clone();
        self
            .transaction(move |tx| {
                let mut statement = tx
                    .prepare("SELECT id, url, event_types, created_at_ms FROM webhooks WHERE tenant_id = ?1 ORDER BY created_at_ms, id")
                    .map_err(map_error)?;
                collect(statement.query_map(params![t], webhook_row).map_err(map_error)?)
            })
            .await
    }

    async fn delete_webhook(&self, tenant_id: &TenantId, webhook_id: &WebhookId, audit: &NewChange) -> StoreResult<()> {
        let (t, w, audit) = (tenant_id.clone(), webhook_id.clone(), audit.clone());
        self.erasing(move |tx| {
            let deleted = tx
                .execute("DELETE FROM webhooks WHERE id = ?1 AND tenant_id = ?2", params![w, t])
                .map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            insert_change(tx, &t, &audit)
        })
        .await
        .map(|((), _)| ())
    }

    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let (t, w) = (tenant_id.clone(), webhook_id.clone());
        self.transaction(move |tx| {
            tx.query_row("SELECT 1 FROM webhooks WHERE id = ?1 AND tenant_id = ?2", params![w, t], |_| Ok(()))
                .optional()
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbox o WHERE o.webhook_id = ?1 AND o.seq > ?2 ORDER BY o.seq LIMIT ?3"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let after = after_seq.unwrap_or(i64::MIN);
            collect(statement.query_map(params![w, after, limit], delivery_row).map_err(map_error)?)
        })
        .await
    }

    async fn due_deliveries(&self, query: &DueQuery) -> StoreResult<Vec<DueDelivery>> {
        let query = query.clone();
        let skip = serde_json::Value::from(query.skip.iter().map(|w| w.as_str()).collect::<Vec<_>>()).to_string();
        self.transaction(move |tx| {
            // The oldest due rows of each webhook, at most `per_webhook` of each, then the oldest of those.
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS}, o.tenant_id, w.url, w.secret_nonce, w.secret_ciphertext, o.payload \
                     FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY seq) AS rank FROM outbox \
                           WHERE state = ?1 AND next_attempt_at_ms <= ?2 \
                           AND webhook_id NOT IN (SELECT value FROM json_each(?5))) due \
                     JOIN outbox o ON o.seq = due.seq JOIN webhooks w ON w.id = o.webhook_id \
                     WHERE due.rank <= ?4 ORDER BY o.seq LIMIT ?3"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let state = DeliveryState::Pending.as_str();
            let rows = statement
                .query_map(params![state, query.now_ms, query.limit, query.per_webhook, skip], |row| {
                    Ok(DueDelivery {
                        delivery: delivery_row(row)?,
                        tenant_id: row.get(11)?,
                        url: row.get(12)?,
                        secret: EncryptedTemplate { nonce: row.get(13)?, ciphertext: row.get(14)? },
                        payload: row.get(15)?,
                    })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn record_deliveries(&self, attempts: &[DeliveryAttempt]) -> StoreResult<()> {
        let attempts = attempts.to_vec();
        self.transaction(move |tx| {
            let mut update = tx
                .prepare(
                    "UPDATE outbox SET state = ?2, attempts = attempts + 1, next_attempt_at_ms = ?3, last_status = ?4, \
                         last_error = ?5, delivered_at_ms = ?6 WHERE seq = ?1",
                )
                .map_err(map_error)?;
            for attempt in attempts {
                let delivered = (attempt.state == DeliveryState::Delivered).then_some(attempt.at_ms);
                update
                    .execute(params![
                        attempt.seq,
                        attempt.state.as_str(),
                        attempt.next_attempt_at_ms,
                        attempt.status,
                        attempt.error,
                        delivered
                    ])
                    .map_err(map_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn publish(&self, tenant_id: &TenantId, events: &[OutboundEvent]) -> StoreResult<()> {
        let (t, events) = (tenant_id.clone(), events.to_vec());
        self.transaction(move |tx| {
            for event in &events {
                ensure_collection(tx, &t, &event.collection_id)?;
            }
            queue_outbound(tx, &t, &events)
        })
        .await
    }
}

impl SqliteStore {
    /// Inserts a webhook, or (`replace`) replaces one of the tenant's, recording `audit`; it as stored.
    async fn write_webhook(
        &self,
        tenant_id: &TenantId,
        new: &NewWebhook,
        audit: &NewChange,
        replace: bool,
    ) -> StoreResult<Webhook> {
        let (t, new, audit) = (tenant_id.clone(), new.clone(), audit.clone());
        let types = serde_json::to_string(&new.event_types).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.transaction(move |tx| {
            if replace {
                let replaced = tx
                    .execute(
                        "UPDATE webhooks SET url = ?3, event_types = ?4, secret_nonce = ?5, secret_ciphertext = ?6 \
                         WHERE id = ?1 AND tenant_id = ?2",
                        params![new.id, t, new.url, types, new.secret.nonce, new.secret.ciphertext],
                    )
                    .map_err(map_error)?;
                if replaced == 0 {
                    return Err(StoreError::NotFound);
                }
            } else {
                tx.execute(
                    "INSERT INTO webhooks (id, tenant_id, url, event_types, secret_nonce, secret_ciphertext, created_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![new.id, t, new.url, types, new.secret.nonce, new.secret.ciphertext, new.created_at_ms],
                )
                .map_err(map_error)?;
            }
            insert_change(tx, &t, &audit)?;
            tx.query_row(
                "SELECT id, url, event_types, created_at_ms FROM webhooks WHERE id = ?1",
                params![new.id],
                webhook_row,
            )
            .map_err(map_error)
        })
        .await
    }
}

/// Queues each audit event for the tenant's webhooks subscribed to its type, inside the caller's
/// transaction.
pub(crate) fn queue_events(tx: &Transaction<'_>, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    queue_outbound(tx, tenant_id, &OutboundEvent::of_audit(tenant_id, events))
}

/// Queues each event for the tenant's webhooks subscribed to its type, inside the caller's transaction.
pub(crate) fn queue_outbound(tx: &Transaction<'_>, tenant_id: &TenantId, events: &[OutboundEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut statement =
        tx.prepare_cached("SELECT id, event_types FROM webhooks WHERE tenant_id = ?1").map_err(map_error)?;
    let hooks: Vec<(WebhookId, Vec<EventType>)> = collect(
        statement.query_map(params![tenant_id], |row| Ok((row.get(0)?, json_column(row, 1)?))).map_err(map_error)?,
    )?;
    for event in events {
        for (hook, _) in hooks.iter().filter(|(_, types)| types.contains(&event.event_type)) {
            tx.execute(
                "INSERT INTO outbox (message_id, tenant_id, webhook_id, event_type, payload, created_at_ms, state, \
                 next_attempt_at_ms, collection_id, subject_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8, ?9)",
                params![
                    format!("msg_{}", new_id()),
                    tenant_id,
                    hook,
                    event.event_type.as_str(),
                    event.payload,
                    event.at_ms,
                    DeliveryState::Pending.as_str(),
                    event.collection_id,
                    event.subject_id
                ],
            )
            .map_err(map_error)?;
        }
    }
    Ok(())
}

fn webhook_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook { id: row.get(0)?, url: row.get(1)?, event_types: json_column(row, 2)?, created_at_ms: row.get(3)? })
}

const DELIVERY_COLUMNS: &str = "o.seq, o.message_id, o.webhook_id, o.event_type, o.created_at_ms, o.state, o.attempts, \
     o.next_attempt_at_ms, o.last_status, o.last_error, o.delivered_at_ms";

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let text = |index: usize, value: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, value.into())
    };
    let event_type: String = row.get(3)?;
    let state: String = row.get(5)?;
    Ok(Delivery {
        seq: row.get(0)?,
        message_id: row.get(1)?,
        webhook_id: row.get(2)?,
        event_type: serde_json::from_value(serde_json::Value::String(event_type.clone()))
            .map_err(|_| text(3, event_type))?,
        created_at_ms: row.get(4)?,
        state: DeliveryState::parse(&state).ok_or_else(|| text(5, state))?,
        attempts: row.get(6)?,
        next_attempt_at_ms: row.get(7)?,
        last_status: row.get(8)?,
        last_error: row.get(9)?,
        delivered_at_ms: row.get(10)?,
    })
}
