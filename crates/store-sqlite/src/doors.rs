//! Doors and the door decisions of the audit trail (anti-passback, attendance).

use super::*;

fn read_door(tx: &Transaction<'_>, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
    let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE id = ?1 AND tenant_id = ?2");
    tx.query_row(&sql, params![door_id, tenant_id], door_row).optional().map_err(map_error)?.ok_or(StoreError::NotFound)
}

fn policy_json(new: &NewDoor) -> StoreResult<String> {
    serde_json::to_string(&new.policy).map_err(|e| StoreError::Backend(format!("door policy: {e}")))
}

pub(crate) async fn create_door(store: &SqliteStore, tenant_id: &TenantId, new: &NewDoor) -> StoreResult<Door> {
    let (t, new) = (tenant_id.clone(), new.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &new.collection_id)?;
            let id = DoorId::random();
            tx.execute(
                "INSERT INTO doors (id, tenant_id, collection_id, name, policy, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, t, new.collection_id, new.name, policy_json(&new)?, new.created_at_ms],
            )
            .map_err(map_error)?;
            read_door(tx, &t, &id)
        })
        .await
}

pub(crate) async fn list_doors(store: &SqliteStore, tenant_id: &TenantId) -> StoreResult<Vec<Door>> {
    let t = tenant_id.clone();
    store
        .transaction(move |tx| {
            let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE tenant_id = ?1 ORDER BY created_at_ms, id");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![t], door_row).map_err(map_error)?)
        })
        .await
}

pub(crate) async fn door(store: &SqliteStore, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
    let (t, d) = (tenant_id.clone(), door_id.clone());
    store.transaction(move |tx| read_door(tx, &t, &d)).await
}

pub(crate) async fn replace_door(
    store: &SqliteStore,
    tenant_id: &TenantId,
    door_id: &DoorId,
    new: &NewDoor,
) -> StoreResult<Door> {
    let (t, d, new) = (tenant_id.clone(), door_id.clone(), new.clone());
    store
        .transaction(move |tx| {
            read_door(tx, &t, &d)?;
            ensure_collection(tx, &t, &new.collection_id)?;
            tx.execute(
                "UPDATE doors SET collection_id = ?2, name = ?3, policy = ?4 WHERE id = ?1",
                params![d, new.collection_id, new.name, policy_json(&new)?],
            )
            .map_err(map_error)?;
            read_door(tx, &t, &d)
        })
        .await
}

pub(crate) async fn delete_door(store: &SqliteStore, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<()> {
    let (t, d) = (tenant_id.clone(), door_id.clone());
    store
        .transaction(move |tx| {
            let deleted =
                tx.execute("DELETE FROM doors WHERE id = ?1 AND tenant_id = ?2", params![d, t]).map_err(map_error)?;
            if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
}

pub(crate) async fn last_passage(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    doors: &[DoorId],
) -> StoreResult<Option<AuditEvent>> {
    let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
    let doors = serde_json::Value::from(doors.iter().map(|d| d.as_str()).collect::<Vec<_>>()).to_string();
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = ?1 AND subject_id = ?2 AND action = ?3 \
                 AND result = ?4 AND door_id IN (SELECT value FROM json_each(?5)) ORDER BY seq DESC LIMIT 1"
            );
            tx.query_row(&sql, params![c, s, DOOR_ACTION, GRANTED, doors], event_row).optional().map_err(map_error)
        })
        .await
}

pub(crate) async fn passages(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<AuditEvent>> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = ?1 AND action = ?2 AND result = ?3 \
                 AND at_ms >= ?4 AND at_ms < ?5 ORDER BY seq"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(
                statement.query_map(params![c, DOOR_ACTION, GRANTED, from_ms, to_ms], event_row).map_err(map_error)?,
            )
        })
        .await
}
