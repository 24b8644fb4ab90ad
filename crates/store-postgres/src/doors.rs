//! Doors and the door decisions of the audit trail (anti-passback, attendance).

use super::*;
use facegate_store::WireName;

#[async_trait]
impl DoorStore for PgStore {
    async fn create_door(&self, tenant_id: &TenantId, new: &NewDoor, audit: &NewChange) -> StoreResult<Door> {
        let (id, policy) = (&DoorId::random(), &policy_json(new)?);
        let audit = &NewChange { object_id: id.to_string(), ..audit.clone() };
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, &new.collection_id).await?;
            sqlx::query(
                "INSERT INTO doors (id, tenant_id, collection_id, name, policy, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(&new.collection_id)
            .bind(&new.name)
            .bind(policy)
            .bind(new.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let door = read_door(&mut tx, tenant_id, id).await?;
            Ok((door, tx))
        })
        .await
    }

    async fn list_doors(&self, tenant_id: &TenantId) -> StoreResult<Vec<Door>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE tenant_id = $1 ORDER BY created_at_ms, id");
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, door_row)?, tx))
        })
        .await
    }

    async fn door(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
        self.transaction(|mut tx| async move {
            let door = read_door(&mut tx, tenant_id, door_id).await?;
            Ok((door, tx))
        })
        .await
    }

    async fn replace_door(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        new: &NewDoor,
        audit: &NewChange,
    ) -> StoreResult<Door> {
        let policy = &policy_json(new)?;
        self.transaction(|mut tx| async move {
            read_door(&mut tx, tenant_id, door_id).await?;
            ensure_collection(&mut tx, tenant_id, &new.collection_id).await?;
            sqlx::query("UPDATE doors SET collection_id = $2, name = $3, policy = $4 WHERE id = $1")
                .bind(door_id)
                .bind(&new.collection_id)
                .bind(&new.name)
                .bind(policy)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let door = read_door(&mut tx, tenant_id, door_id).await?;
            Ok((door, tx))
        })
        .await
    }

    async fn delete_door(&self, tenant_id: &TenantId, door_id: &DoorId, audit: &NewChange) -> StoreResult<()> {
        self.erasing(|mut tx| async move {
            let done = sqlx::query("DELETE FROM doors WHERE id = $1 AND tenant_id = $2")
                .bind(door_id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            // Doors paired with it lose their pairing rather than deny everyone inside forever.
            sqlx::query(
                "UPDATE doors SET policy = ((policy::jsonb) - 'anti_passback')::text \
                     WHERE tenant_id = $1 AND (policy::jsonb) -> 'anti_passback' ->> 'paired_door' = $2",
            )
            .bind(tenant_id)
            .bind(door_id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn is_present(&self, tenant_id: &TenantId, door_id: &DoorId, subject_id: &SubjectId) -> StoreResult<bool> {
        let found = sqlx::query(
            "SELECT 1 FROM presence p JOIN doors d ON d.id = p.door_id \
                 WHERE d.tenant_id = $1 AND p.door_id = $2 AND p.subject_id = $3",
        )
        .bind(tenant_id)
        .bind(door_id)
        .bind(subject_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(found.is_some())
    }

    async fn record_passage(
        &self,
        tenant_id: &TenantId,
        granted: &NewEvent,
        check: Option<AntiPassbackCheck<'_>>,
    ) -> StoreResult<bool> {
        let (door, subject) = granted.passage()?;
        self.transaction(|mut tx| async move {
            read_door(&mut tx, tenant_id, door).await?;
            // Passages of one person take turns: the second of two concurrent ones sees the first's presence.
            sqlx::query("SELECT 1 FROM subjects WHERE id = $1 FOR UPDATE")
                .bind(subject)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
            if let Some(check) = check {
                let present = sqlx::query("SELECT 1 FROM presence WHERE subject_id = $1 AND door_id = $2")
                    .bind(subject)
                    .bind(door)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?
                    .is_some();
                if present {
                    insert_events(&mut tx, tenant_id, std::slice::from_ref(check.denied)).await?;
                    return Ok((false, tx));
                }
            }
            sqlx::query(
                "DELETE FROM presence WHERE subject_id = $1 AND door_id IN (SELECT id FROM doors WHERE tenant_id = $2 \
                     AND (id = $3 OR (policy::jsonb) -> 'anti_passback' ->> 'paired_door' = $4))",
            )
            .bind(subject)
            .bind(tenant_id)
            .bind(check.map(|c| c.paired_door))
            .bind(door)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            if check.is_some() {
                sqlx::query("INSERT INTO presence (subject_id, door_id, at_ms) VALUES ($1, $2, $3)")
                    .bind(subject)
                    .bind(door)
                    .bind(granted.at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
            }
            insert_events(&mut tx, tenant_id, std::slice::from_ref(granted)).await?;
            Ok((true, tx))
        })
        .await
    }

    async fn reset_presence(
        &self,
        tenant_id: &TenantId,
        doors: &[DoorId],
        subject_id: Option<&SubjectId>,
        audit: &NewChange,
    ) -> StoreResult<u64> {
        self.transaction(|mut tx| async move {
            let done = sqlx::query(
                "DELETE FROM presence WHERE door_id IN (SELECT d.id FROM doors d WHERE d.tenant_id = $1 \
                     AND d.id = ANY($2)) AND ($3::TEXT IS NULL OR subject_id = $3)",
            )
            .bind(tenant_id)
            .bind(doors)
            .bind(subject_id)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok((done.rows_affected(), tx))
        })
        .await
    }

    async fn passages(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<AuditEvent>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = $1 AND action = $2 AND result = $3 \
                     AND at_ms >= $4 AND at_ms < $5 ORDER BY seq"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(AuditAction::Door.as_str())
                .bind(AuditResult::Granted.as_str())
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, event_row)?, tx))
        })
        .await
    }
}

async fn read_door(tx: &mut Tx, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
    let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE id = $1 AND tenant_id = $2");
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(door_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?
        .ok_or(StoreError::NotFound)?;
    door_row(&found).map_err(map_error)
}

fn policy_json(new: &NewDoor) -> StoreResult<String> {
    serde_json::to_string(&new.policy).map_err(|e| StoreError::Backend(format!("door policy: {e}")))
}
