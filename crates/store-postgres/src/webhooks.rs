//! Webhooks and the transactional outbox (its rows are the delivery log).

use super::*;
use facegate_store::WireName;

#[async_trait]
impl OutboxStore for PgStore {
    async fn create_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook> {
        self.write_webhook(tenant_id, new, audit, false).await
    }

    async fn replace_webhook(&self, tenant_id: &TenantId, new: &NewWebhook, audit: &NewChange) -> StoreResult<Webhook> {
        self.write_webhook(tenant_id, new, audit, true).await
    }

    async fn webhook_secret(&self, tenant_id: &TenantId, webhook_id: &WebhookId) -> StoreResult<EncryptedTemplate> {
        self.transaction(|mut tx| async move {
            let row =
                sqlx::query("SELECT secret_nonce, secret_ciphertext FROM webhooks WHERE id = $1 AND tenant_id = $2")
                    .bind(webhook_id)
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?
                    .ok_or(StoreError::NotFound)?;
            let secret = EncryptedTemplate {
                nonce: row.try_get(0).map_err(map_error)?,
                ciphertext: row.try_get(1).map_err(map_error)?,
            };
            Ok((secret, tx))
        })
        .await
    }

    async fn list_webhooks(&self, tenant_id: &TenantId) -> StoreResult<Vec<Webhook>> {
        self
            .transaction(|mut tx| async move {
                let found = sqlx::query(
                    "SELECT id, url, event_types, created_at_ms FROM webhooks WHERE tenant_id = $1 ORDER BY created_at_ms, id",
                )
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
                Ok((rows(found, webhook_row)?, tx))
            })
            .await
    }

    async fn delete_webhook(&self, tenant_id: &TenantId, webhook_id: &WebhookId, audit: &NewChange) -> StoreResult<()> {
        self.erasing(|mut tx| async move {
            let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
                .bind(webhook_id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.transaction(|mut tx| async move {
            sqlx::query("SELECT 1 FROM webhooks WHERE id = $1 AND tenant_id = $2")
                .bind(webhook_id)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbox o WHERE o.webhook_id = $1 AND o.seq > $2 ORDER BY o.seq LIMIT $3"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(webhook_id)
                .bind(after_seq.unwrap_or(i64::MIN))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, delivery_row)?, tx))
        })
        .await
    }

    async fn due_deliveries(&self, query: &DueQuery) -> StoreResult<Vec<DueDelivery>> {
        self.transaction(|mut tx| async move {
            // The oldest due rows of each webhook, at most `per_webhook` of each, then the oldest of those.
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS}, o.tenant_id, w.url, w.secret_nonce, w.secret_ciphertext, o.payload \
                     FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY seq) AS rank FROM outbox \
                           WHERE state = $1 AND next_attempt_at_ms <= $2 AND NOT (webhook_id = ANY($5))) due \
                     JOIN outbox o ON o.seq = due.seq JOIN webhooks w ON w.id = o.webhook_id \
                     WHERE due.rank <= $4 ORDER BY o.seq LIMIT $3"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(DeliveryState::Pending.as_str())
                .bind(query.now_ms)
                .bind(i64::from(query.limit))
                .bind(i64::from(query.per_webhook))
                .bind(&query.skip)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            let read = |row: &PgRow| {
                Ok(DueDelivery {
                    delivery: delivery_row(row)?,
                    tenant_id: row.try_get("tenant_id")?,
                    url: row.try_get("url")?,
                    secret: EncryptedTemplate {
                        nonce: row.try_get("secret_nonce")?,
                        ciphertext: row.try_get("secret_ciphertext")?,
                    },
                    payload: row.try_get("payload")?,
                })
            };
            Ok((rows(found, read)?, tx))
        })
        .await
    }

    async fn record_deliveries(&self, attempts: &[DeliveryAttempt]) -> StoreResult<()> {
        self.transaction(|mut tx| async move {
            for attempt in attempts {
                let delivered = (attempt.state == DeliveryState::Delivered).then_some(attempt.at_ms);
                sqlx::query(
                    "UPDATE outbox SET state = $2, attempts = attempts + 1, next_attempt_at_ms = $3, last_status = $4, \
                         last_error = $5, delivered_at_ms = $6 WHERE seq = $1",
                )
                .bind(attempt.seq)
                .bind(attempt.state.as_str())
                .bind(attempt.next_attempt_at_ms)
                .bind(attempt.status.map(i32::from))
                .bind(&attempt.error)
                .bind(delivered)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            }
            Ok(((), tx))
        })
        .await
    }

    async fn publish(&self, tenant_id: &TenantId, events: &[OutboundEvent]) -> StoreResult<()> {
        self.transaction(|mut tx| async move {
            for event in events {
                ensure_collection(&mut tx, tenant_id, &event.collection_id).await?;
            }
            queue_outbound(&mut tx, tenant_id, events).await?;
            Ok(((), tx))
        })
        .await
    }
}

impl PgStore {
    /// Inserts a webhook, or (`replace`) replaces one of the tenant's, recording `audit`; it as stored.
    async fn write_webhook(
        &self,
        tenant_id: &TenantId,
        new: &NewWebhook,
        audit: &NewChange,
        replace: bool,
    ) -> StoreResult<Webhook> {
        let types = &serde_json::to_string(&new.event_types).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.transaction(|mut tx| async move {
            let sql = if replace {
                "UPDATE webhooks SET url = $3, event_types = $4, secret_nonce = $5, secret_ciphertext = $6 \
                 WHERE id = $1 AND tenant_id = $2"
            } else {
                "INSERT INTO webhooks (id, tenant_id, url, event_types, secret_nonce, secret_ciphertext, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            };
            let mut query = sqlx::query(sql)
                .bind(&new.id)
                .bind(tenant_id)
                .bind(&new.url)
                .bind(types)
                .bind(&new.secret.nonce)
                .bind(&new.secret.ciphertext);
            if !replace {
                query = query.bind(new.created_at_ms);
            }
            let done = query.execute(&mut *tx).await.map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            let row = sqlx::query("SELECT id, url, event_types, created_at_ms FROM webhooks WHERE id = $1")
                .bind(&new.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_error)?;
            let hook = webhook_row(&row).map_err(map_error)?;
            Ok((hook, tx))
        })
        .await
    }
}

/// Queues each audit event for the tenant's webhooks subscribed to its type, inside the caller's
/// transaction.
pub(crate) async fn queue_events(tx: &mut Tx, tenant_id: &TenantId, events: &[NewEvent]) -> StoreResult<()> {
    queue_outbound(tx, tenant_id, &OutboundEvent::of_audit(tenant_id, events)).await
}

/// Queues each event for the tenant's webhooks subscribed to its type, inside the caller's transaction.
pub(crate) async fn queue_outbound(tx: &mut Tx, tenant_id: &TenantId, events: &[OutboundEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let found = sqlx::query("SELECT id, event_types FROM webhooks WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)?;
    let read =
        |row: &PgRow| Ok((row.try_get::<WebhookId, _>("id")?, json_column::<Vec<EventType>>(row, "event_types")?));
    let hooks = rows(found, read)?;
    for event in events {
        for (hook, _) in hooks.iter().filter(|(_, types)| types.contains(&event.event_type)) {
            sqlx::query(
                "INSERT INTO outbox (message_id, tenant_id, webhook_id, event_type, payload, created_at_ms, state, \
                 next_attempt_at_ms, collection_id, subject_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9)",
            )
            .bind(format!("msg_{}", new_id()))
            .bind(tenant_id)
            .bind(hook)
            .bind(event.event_type.as_str())
            .bind(&event.payload)
            .bind(event.at_ms)
            .bind(DeliveryState::Pending.as_str())
            .bind(&event.collection_id)
            .bind(&event.subject_id)
            .execute(&mut **tx)
            .await
            .map_err(map_error)?;
        }
    }
    Ok(())
}

fn webhook_row(row: &PgRow) -> Result<Webhook, sqlx::Error> {
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        event_types: json_column(row, "event_types")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

const DELIVERY_COLUMNS: &str = "o.seq, o.message_id, o.webhook_id, o.event_type, o.created_at_ms, o.state, o.attempts, \
     o.next_attempt_at_ms, o.last_status, o.last_error, o.delivered_at_ms";

fn delivery_row(row: &PgRow) -> Result<Delivery, sqlx::Error> {
    let bad = |column: &str, value: String| sqlx::Error::ColumnDecode { index: column.into(), source: value.into() };
    let event_type: String = row.try_get("event_type")?;
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        seq: row.try_get("seq")?,
        message_id: row.try_get("message_id")?,
        webhook_id: row.try_get("webhook_id")?,
        event_type: serde_json::from_value(serde_json::Value::String(event_type.clone()))
            .map_err(|_| bad("event_type", event_type))?,
        created_at_ms: row.try_get("created_at_ms")?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad("state", state))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        last_status: row.try_get::<Option<i32>, _>("last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get("last_error")?,
        delivered_at_ms: row.try_get("delivered_at_ms")?,
    })
}
