//! Moving a collection to another pack: the migration record, kept frames to re-embed, target
//! templates, and the switch.

use facegate_store::Migration;

use super::*;
use facegate_store::WireName;

#[async_trait]
impl MigrationStore for PgStore {
    async fn start_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewMigration,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        self
            .transaction(|mut tx| async move {
                lock_collection(&mut tx, tenant_id, collection_id).await?;
                if read_migration(&mut tx, collection_id).await?.is_some_and(|m| m.state == MigrationState::Running) {
                    return Err(StoreError::Conflict("a migration of this collection is running".into()));
                }
                sqlx::query("DELETE FROM face_templates WHERE collection_id = $1 AND pack = $2 AND pack_version <> $3")
                    .bind(collection_id)
                    .bind(&new.target.pack)
                    .bind(&new.target.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                sqlx::query(
                    "INSERT INTO migrations (collection_id, from_pack, target_pack, target_version, target_dim, state, \
                     started_at_ms, finished_at_ms) SELECT id, pack, $2, $3, $4, $5, $6, NULL FROM collections WHERE id = $1 \
                     ON CONFLICT (collection_id) DO UPDATE SET from_pack = EXCLUDED.from_pack, \
                     target_pack = EXCLUDED.target_pack, target_version = EXCLUDED.target_version, \
                     target_dim = EXCLUDED.target_dim, state = EXCLUDED.state, started_at_ms = EXCLUDED.started_at_ms, \
                     finished_at_ms = NULL",
                )
                .bind(collection_id)
                .bind(&new.target.pack)
                .bind(&new.target.version)
                .bind(new.target_dim as i32)
                .bind(MigrationState::Running.as_str())
                .bind(new.started_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                ensure_dim_index(&mut tx, new.target_dim).await?;
                insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
                let migration = read_migration(&mut tx, collection_id).await?.ok_or(StoreError::NotFound)?;
                Ok((migration, tx))
            })
            .await
    }

    async fn migration(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Option<Migration>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let migration = read_migration(&mut tx, collection_id).await?;
            Ok((migration, tx))
        })
        .await
    }

    async fn running_migrations(&self) -> StoreResult<Vec<(TenantId, CollectionId)>> {
        self.transaction(|mut tx| async move {
            let found: Vec<(TenantId, CollectionId)> = sqlx::query_as(
                "SELECT c.tenant_id, c.id FROM migrations m JOIN collections c ON c.id = m.collection_id \
                     WHERE m.state = $1 ORDER BY m.started_at_ms",
            )
            .bind(MigrationState::Running.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok((found, tx))
        })
        .await
    }

    async fn crops_to_migrate(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        limit: u32,
    ) -> StoreResult<Vec<StoredCrop>> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let crops = pending_crops(&mut tx, collection_id, limit).await?;
            Ok((crops, tx))
        })
        .await
    }

    async fn add_migrated_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        templates: &[MigratedTemplate],
    ) -> StoreResult<usize> {
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let mut stored = 0;
            for migrated in templates {
                // The face row is locked so an erasure cannot remove it between the check and the insert.
                let exists = sqlx::query("SELECT 1 FROM faces WHERE id = $1 AND collection_id = $2 FOR SHARE")
                    .bind(&migrated.face_id)
                    .bind(collection_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
                if exists.is_some() {
                    insert_other_template(&mut tx, collection_id, &migrated.face_id, &migrated.template).await?;
                    stored += 1;
                }
            }
            Ok((stored, tx))
        })
        .await
    }

    async fn finish_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        self
            .transaction(|mut tx| async move {
                lock_collection(&mut tx, tenant_id, collection_id).await?;
                let migration = read_migration(&mut tx, collection_id)
                    .await?
                    .filter(|m| m.state == MigrationState::Running)
                    .ok_or(StoreError::NotFound)?;
                if !pending_crops(&mut tx, collection_id, 1).await?.is_empty() {
                    return Err(StoreError::Conflict("kept frames are left to migrate".into()));
                }
                let (pack, version) = (&migration.target.pack, &migration.target.version);
                let statements = [
                    "INSERT INTO face_templates (face_id, collection_id, pack, pack_version, nonce, ciphertext, dim, \
                     search_vector) SELECT f.id, f.collection_id, f.pack, f.pack_version, f.nonce, f.ciphertext, f.dim, \
                     f.search_vector FROM faces f JOIN face_templates t ON t.face_id = f.id AND t.pack = $2 \
                     AND t.pack_version = $3 WHERE f.collection_id = $1 ON CONFLICT (face_id, pack, pack_version) \
                     DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, dim = EXCLUDED.dim, \
                     search_vector = EXCLUDED.search_vector",
                    "UPDATE faces f SET pack = t.pack, pack_version = t.pack_version, nonce = t.nonce, \
                     ciphertext = t.ciphertext, dim = t.dim, search_vector = t.search_vector FROM face_templates t \
                     WHERE t.face_id = f.id AND t.pack = $2 AND t.pack_version = $3 AND f.collection_id = $1",
                    "DELETE FROM face_templates WHERE collection_id = $1 AND pack = $2 AND pack_version = $3",
                ];
                for sql in statements {
                    sqlx::query(sql)
                        .bind(collection_id)
                        .bind(pack)
                        .bind(version)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_error)?;
                }
                sqlx::query("UPDATE collections SET pack = $2, embedding_size = $3 WHERE id = $1")
                    .bind(collection_id)
                    .bind(pack)
                    .bind(migration.target_dim as i32)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                sqlx::query("UPDATE migrations SET state = $2, finished_at_ms = $3 WHERE collection_id = $1")
                    .bind(collection_id)
                    .bind(MigrationState::Finished.as_str())
                    .bind(audit.at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
                bump_revision(&mut tx, collection_id).await?;
                insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
                let migration = read_migration(&mut tx, collection_id).await?.ok_or(StoreError::NotFound)?;
                Ok((migration, tx))
            })
            .await
    }
}

/// Faces of the collection that have a template of the target pack (or are searched by it already).
const MIGRATED: &str = "(EXISTS (SELECT 1 FROM face_templates t WHERE t.face_id = f.id AND t.pack = m.target_pack \
     AND t.pack_version = m.target_version) OR (f.pack = m.target_pack AND f.pack_version = m.target_version))";

async fn pending_crops(tx: &mut Tx, collection_id: &CollectionId, limit: u32) -> StoreResult<Vec<StoredCrop>> {
    let sql = format!(
        "SELECT f.id, f.subject_id, k.nonce, k.ciphertext FROM faces f \
         JOIN face_crops k ON k.face_id = f.id JOIN migrations m ON m.collection_id = f.collection_id \
         WHERE f.collection_id = $1 AND m.state = $2 AND NOT {MIGRATED} ORDER BY f.seq LIMIT $3"
    );
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(collection_id)
        .bind(MigrationState::Running.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await
        .map_err(map_error)?;
    rows(found, |r| {
        Ok(StoredCrop {
            face_id: r.try_get("id")?,
            subject_id: r.try_get("subject_id")?,
            crop: EncryptedTemplate { nonce: r.try_get("nonce")?, ciphertext: r.try_get("ciphertext")? },
        })
    })
}

/// The collection's latest migration with its progress counted now.
async fn read_migration(tx: &mut Tx, collection_id: &CollectionId) -> StoreResult<Option<Migration>> {
    let found = sqlx::query(
        "SELECT from_pack, target_pack, target_version, target_dim, state, started_at_ms, finished_at_ms \
         FROM migrations WHERE collection_id = $1",
    )
    .bind(collection_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_error)?;
    let Some(row) = found else { return Ok(None) };
    let state: String = row.try_get("state").map_err(map_error)?;
    let state = MigrationState::parse(&state).ok_or_else(|| StoreError::Backend(format!("migration state {state}")))?;
    let (faces_total, faces_migrated): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE {MIGRATED}) FROM faces f JOIN migrations m \
         ON m.collection_id = f.collection_id WHERE f.collection_id = $1"
    )))
    .bind(collection_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_error)?;
    let without: Vec<(SubjectId, FaceId)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT f.subject_id, f.id FROM faces f JOIN migrations m ON m.collection_id = f.collection_id \
         WHERE f.collection_id = $1 AND NOT {MIGRATED} \
         AND NOT EXISTS (SELECT 1 FROM face_crops k WHERE k.face_id = f.id) ORDER BY f.seq"
    )))
    .bind(collection_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_error)?;
    let read = |r: &PgRow| -> Result<_, sqlx::Error> {
        Ok((
            r.try_get::<String, _>("from_pack")?,
            PackVersion { pack: r.try_get("target_pack")?, version: r.try_get("target_version")? },
            u32::try_from(r.try_get::<i32, _>("target_dim")?).unwrap_or(0),
            r.try_get::<i64, _>("started_at_ms")?,
            r.try_get::<Option<i64>, _>("finished_at_ms")?,
        ))
    };
    let (from_pack, target, target_dim, started_at_ms, finished_at_ms) = read(&row).map_err(map_error)?;
    Ok(Some(Migration {
        collection_id: collection_id.clone(),
        from_pack,
        target,
        target_dim,
        state,
        started_at_ms,
        finished_at_ms,
        faces_total: u64::try_from(faces_total).unwrap_or(0),
        faces_migrated: u64::try_from(faces_migrated).unwrap_or(0),
        faces_without_crop: without.into_iter().map(|(subject_id, face_id)| FaceRef { subject_id, face_id }).collect(),
    }))
}
