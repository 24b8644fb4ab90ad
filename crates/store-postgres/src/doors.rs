//! Doors and the door decisions of the audit trail (anti-passback, attendance).

use super::*;

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

pub(crate) async fn create_door(store: &PgStore, tenant_id: &TenantId, new: &NewDoor) -> StoreResult<Door> {
    let (id, policy) = (&DoorId::random(), &policy_json(new)?);
    store
        .transaction(|mut tx| async move {
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
            let door = read_door(&mut tx, tenant_id, id).await?;
            Ok((door, tx))
        })
        .await
}

pub(crate) async fn list_doors(store: &PgStore, tenant_id: &TenantId) -> StoreResult<Vec<Door>> {
    store
        .transaction(|mut tx| async move {
            let sql = format!("SELECT {DOOR_COLUMNS} FROM doors WHERE tenant_id = $1 ORDER BY created_at_ms, id");
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, door_row)?, tx))
        })
        .await
}

pub(crate) async fn door(store: &PgStore, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Door> {
    store
        .transaction(|mut tx| async move {
            let door = read_door(&mut tx, tenant_id, door_id).await?;
            Ok((door, tx))
        })
        .await
}

pub(crate) async fn replace_door(
    store: &PgStore,
    tenant_id: &TenantId,
    door_id: &DoorId,
    new: &NewDoor,
) -> StoreResult<Door> {
    let policy = &policy_json(new)?;
    store
        .transaction(|mut tx| async move {
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
            let door = read_door(&mut tx, tenant_id, door_id).await?;
            Ok((door, tx))
        })
        .await
}

pub(crate) async fn delete_door(store: &PgStore, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<()> {
    store
        .transaction(|mut tx| async move {
            let done = sqlx::query("DELETE FROM doors WHERE id = $1 AND tenant_id = $2")
                .bind(door_id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(((), tx))
        })
        .await
}

pub(crate) async fn last_passage(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    doors: &[DoorId],
) -> StoreResult<Option<AuditEvent>> {
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = $1 AND subject_id = $2 AND action = $3 \
                 AND result = $4 AND door_id = ANY($5) ORDER BY seq DESC LIMIT 1"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(subject_id)
                .bind(DOOR_ACTION)
                .bind(GRANTED)
                .bind(doors)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
            let event = found.as_ref().map(event_row).transpose().map_err(map_error)?;
            Ok((event, tx))
        })
        .await
}

pub(crate) async fn passages(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<AuditEvent>> {
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE collection_id = $1 AND action = $2 AND result = $3 \
                 AND at_ms >= $4 AND at_ms < $5 ORDER BY seq"
            );
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(DOOR_ACTION)
                .bind(GRANTED)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, event_row)?, tx))
        })
        .await
}
