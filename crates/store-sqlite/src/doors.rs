//! Doors and the door decisions of the audit trail (anti-passback, attendance).

use super::*;
use facegate_store::WireName;

#[async_trait]
impl DoorStore for SqliteStore {
    async fn create_door(&self, tenant_id: &TenantId, new: &NewDoor, audit: &NewChange) -> StoreResult<Door> {
        let (t, new, mut audit) = (tenant_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &new.collection_id)?;
            let id = DoorId::random();
            tx.execute(
                "INSERT INTO doors (id, tenant_id, collection_id, name, policy, created_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, t, new.collection_id, new.name, policy_json(&new)?, new.created_at_ms],
            )
            .map_err(map_error)?;
            audit.object_id = id.to_string();
            insert_change(tx, &t, &audit)?;
            read_door(tx, &t, &id)
        })
        .await
    }

    async fn list_doors(&self, tenant_id: &TenantId) -> StoreResult<Vec<Door>> {
        let t = tenant_id.clone();
        self.transaction(move |tx| {
            let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE tenant_id = ?1 ORDER BY created_at_ms, id");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![t], door_row).map_err(map_error)?)
        })
        .await
    }

    async fn door(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
        let (t, d) = (tenant_id.clone(), door_id.clone());
        self.transaction(move |tx| read_door(tx, &t, &d)).await
    }

    async fn replace_door(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        new: &NewDoor,
        audit: &NewChange,
    ) -> StoreResult<Door> {
        let (t, d, new, audit) = (tenant_id.clone(), door_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
            read_door(tx, &t, &d)?;
            ensure_collection(tx, &t, &new.collection_id)?;
            tx.execute(
                "UPDATE doors SET collection_id = ?2, name = ?3, policy = ?4 WHERE id = ?1",
                params![d, new.collection_id, new.name, policy_json(&new)?],
            )
            .map_err(map_error)?;
            insert_change(tx, &t, &audit)?;
            read_door(tx, &t, &d)
        })
        .await
    }

    async fn delete_door(&self, tenant_id: &TenantId, door_id: &DoorId, audit: &NewChange) -> StoreResult<()> {
        let (t, d, audit) = (tenant_id.clone(), door_id.clone(), audit.clone());
        self.erasing(move |tx| {
            let deleted =
                tx.execute("DELETE FROM doors WHERE id = ?1 AND tenant_id = ?2", params![d, t]).map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            // Doors paired with it lose their pairing rather than deny everyone inside forever.
            tx.execute(
                "UPDATE doors SET policy = json_remove(policy, '$.anti_passback') \
                     WHERE tenant_id = ?1 AND json_extract(policy, '$.anti_passback.paired_door') = ?2",
                params![t, d],
            )
            .map_err(map_error)?;
            insert_change(tx, &t, &audit)
        })
        .await
        .map(|((), _)| ())
    }

    async fn is_present(&self, tenant_id: &TenantId, door_id: &DoorId, subject_id: &SubjectId) -> StoreResult<bool> {
        let (t, d, s) = (tenant_id.clone(), door_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
            tx.query_row(
                "SELECT 1 FROM presence p JOIN doors d ON d.id = p.door_id \
                     WHERE d.tenant_id = ?1 AND p.door_id = ?2 AND p.subject_id = ?3",
                params![t, d, s],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(map_error)
        })
        .await
    }

    async fn record_passage(
        &self,
        tenant_id: &TenantId,
        granted: &NewEvent,
        check: Option<AntiPassbackCheck<'_>>,
    ) -> StoreResult<bool> {
        let (door, subject) = granted.passage().map(|(d, s)| (d.clone(), s.clone()))?;
        let (t, granted) = (tenant_id.clone(), granted.clone());
        let check = check.map(|c| (c.paired_door.clone(), c.denied.clone()));
        self.transaction(move |tx| {
            read_door(tx, &t, &door)?;
            if let Some((_, denied)) = &check {
                let present = tx
                    .query_row(
                        "SELECT 1 FROM presence WHERE subject_id = ?1 AND door_id = ?2",
                        params![subject, door],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(map_error)?
                    .is_some();
                if present {
                    insert_events(tx, &t, std::slice::from_ref(denied))?;
                    return Ok(false);
                }
            }
            let paired = check.as_ref().map(|(paired, _)| paired);
            tx.execute(
                "DELETE FROM presence WHERE subject_id = ?1 AND door_id IN (SELECT id FROM doors WHERE tenant_id = ?2 \
                     AND (id = ?3 OR json_extract(policy, '$.anti_passback.paired_door') = ?4))",
                params![subject, t, paired, door],
            )
            .map_err(map_error)?;
            if check.is_some() {
                tx.execute(
                    "INSERT INTO presence (subject_id, door_id, at_ms) VALUES (?1, ?2, ?3)",
                    params![subject, door, granted.at_ms],
                )
                .map_err(map_error)?;
            }
            insert_events(tx, &t, std::slice::from_ref(&granted))?;
            Ok(true)
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
        let (t, s, audit) = (tenant_id.clone(), subject_id.cloned(), audit.clone());
        let doors = serde_json::Value::from(doors.iter().map(|d| d.as_str()).collect::<Vec<_>>()).to_string();
        self.transaction(move |tx| {
            let reset = tx
                .execute(
                    "DELETE FROM presence WHERE door_id IN (SELECT d.id FROM doors d WHERE d.tenant_id = ?1 \
                         AND d.id IN (SELECT value FROM json_each(?2))) AND (?3 IS NULL OR subject_id = ?3)",
                    params![t, doors, s],
                )
                .map_err(map_error)?;
            insert_change(tx, &t, &audit)?;
            Ok(reset as u64)
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
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = ?1 AND action = ?2 AND result = ?3 \
                     AND at_ms >= ?4 AND at_ms < ?5 ORDER BY seq"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(
                statement
                    .query_map(
                        params![c, AuditAction::Door.as_str(), AuditResult::Granted.as_str(), from_ms, to_ms],
                        event_row,
                    )
                    .map_err(map_error)?,
            )
        })
        .await
    }
}

fn read_door(tx: &Transaction<'_>, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
    let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE id = ?1 AND tenant_id = ?2");
    tx.query_row(&sql, params![door_id, tenant_id], door_row).optional().map_err(map_error)?.ok_or(StoreError::NotFound)
}

fn policy_json(new: &NewDoor) -> StoreResult<String> {
    serde_json::to_string(&new.policy).map_err(|e| StoreError::Backend(format!("door policy: {e}")))
}
