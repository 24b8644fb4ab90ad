//! Moving a collection to another pack: the migration record, kept frames to re-embed, target
//! templates, and the switch.

use super::*;
use facegate_store::WireName;

#[async_trait]
impl MigrationStore for SqliteStore {
    async fn start_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewMigration,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        let (t, c, new, audit) = (tenant_id.clone(), collection_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            if read_migration(tx, &c)?.is_some_and(|m| m.state == MigrationState::Running) {
                return Err(StoreError::Conflict("a migration of this collection is running".into()));
            }
            tx.execute(
                "DELETE FROM face_templates WHERE collection_id = ?1 AND pack = ?2 AND pack_version <> ?3",
                params![c, new.target.pack, new.target.version],
            )
            .map_err(map_error)?;
            tx.execute(
                "INSERT OR REPLACE INTO migrations (collection_id, from_pack, target_pack, target_version, target_dim, \
                     state, started_at_ms, finished_at_ms) \
                     SELECT id, pack, ?2, ?3, ?4, ?5, ?6, NULL FROM collections WHERE id = ?1",
                params![
                    c,
                    new.target.pack,
                    new.target.version,
                    new.target_dim,
                    MigrationState::Running.as_str(),
                    new.started_at_ms
                ],
            )
            .map_err(map_error)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            read_migration(tx, &c)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn migration(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Option<Migration>> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            read_migration(tx, &c)
        })
        .await
    }

    async fn running_migrations(&self) -> StoreResult<Vec<(TenantId, CollectionId)>> {
        self.transaction(move |tx| {
            let mut statement = tx
                .prepare(
                    "SELECT c.tenant_id, c.id FROM migrations m JOIN collections c ON c.id = m.collection_id \
                         WHERE m.state = ?1 ORDER BY m.started_at_ms",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![MigrationState::Running.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn crops_to_migrate(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        limit: u32,
    ) -> StoreResult<Vec<StoredCrop>> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            pending_crops(tx, &c, limit)
        })
        .await
    }

    async fn add_migrated_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        templates: &[MigratedTemplate],
    ) -> StoreResult<usize> {
        let (t, c, templates) = (tenant_id.clone(), collection_id.clone(), templates.to_vec());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let mut stored = 0;
            for migrated in &templates {
                let exists = tx
                    .query_row(
                        "SELECT 1 FROM faces WHERE id = ?1 AND collection_id = ?2",
                        params![migrated.face_id, c],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(map_error)?;
                if exists.is_some() {
                    insert_other_template(tx, &c, &migrated.face_id, &migrated.template)?;
                    stored += 1;
                }
            }
            Ok(stored)
        })
        .await
    }

    async fn finish_migration(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewEvent,
    ) -> StoreResult<Migration> {
        let (t, c, audit) = (tenant_id.clone(), collection_id.clone(), audit.clone());
        self
            .transaction(move |tx| {
                ensure_collection(tx, &t, &c)?;
                let migration = read_migration(tx, &c)?
                    .filter(|m| m.state == MigrationState::Running)
                    .ok_or(StoreError::NotFound)?;
                if !pending_crops(tx, &c, 1)?.is_empty() {
                    return Err(StoreError::Conflict("kept frames are left to migrate".into()));
                }
                let (pack, version) = (&migration.target.pack, &migration.target.version);
                let has_target = "EXISTS (SELECT 1 FROM face_templates t WHERE t.face_id = faces.id AND t.pack = ?2 \
                                  AND t.pack_version = ?3)";
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO face_templates (face_id, collection_id, pack, pack_version, nonce, ciphertext) \
                         SELECT id, collection_id, pack, pack_version, nonce, ciphertext FROM faces \
                         WHERE collection_id = ?1 AND {has_target}"
                    ),
                    params![c, pack, version],
                )
                .map_err(map_error)?;
                tx.execute(
                    &format!(
                        "UPDATE faces SET (pack, pack_version, nonce, ciphertext) = (SELECT t.pack, t.pack_version, \
                         t.nonce, t.ciphertext FROM face_templates t WHERE t.face_id = faces.id AND t.pack = ?2 \
                         AND t.pack_version = ?3) WHERE collection_id = ?1 AND {has_target}"
                    ),
                    params![c, pack, version],
                )
                .map_err(map_error)?;
                tx.execute(
                    "DELETE FROM face_templates WHERE collection_id = ?1 AND pack = ?2 AND pack_version = ?3",
                    params![c, pack, version],
                )
                .map_err(map_error)?;
                tx.execute(
                    "UPDATE collections SET pack = ?2, embedding_size = ?3 WHERE id = ?1",
                    params![c, pack, migration.target_dim],
                )
                .map_err(map_error)?;
                tx.execute(
                    "UPDATE migrations SET state = ?2, finished_at_ms = ?3 WHERE collection_id = ?1",
                    params![c, MigrationState::Finished.as_str(), audit.at_ms],
                )
                .map_err(map_error)?;
                bump_revision(tx, &c)?;
                insert_events(tx, &t, std::slice::from_ref(&audit))?;
                read_migration(tx, &c)?.ok_or(StoreError::NotFound)
            })
            .await
    }
}

/// Faces of the collection that have a template of the target pack (or are searched by it already).
const MIGRATED: &str = "(EXISTS (SELECT 1 FROM face_templates t WHERE t.face_id = f.id AND t.pack = m.target_pack \
     AND t.pack_version = m.target_version) OR (f.pack = m.target_pack AND f.pack_version = m.target_version))";

fn pending_crops(tx: &Transaction<'_>, collection_id: &CollectionId, limit: u32) -> StoreResult<Vec<StoredCrop>> {
    let sql = format!(
        "SELECT f.id, f.subject_id, k.nonce, k.ciphertext FROM faces f \
         JOIN face_crops k ON k.face_id = f.id JOIN migrations m ON m.collection_id = f.collection_id \
         WHERE f.collection_id = ?1 AND m.state = ?2 AND NOT {MIGRATED} ORDER BY f.rowid LIMIT ?3"
    );
    let mut statement = tx.prepare(&sql).map_err(map_error)?;
    let rows = statement
        .query_map(params![collection_id, MigrationState::Running.as_str(), limit], |r| {
            Ok(StoredCrop {
                face_id: r.get(0)?,
                subject_id: r.get(1)?,
                crop: EncryptedTemplate { nonce: r.get(2)?, ciphertext: r.get(3)? },
            })
        })
        .map_err(map_error)?;
    collect(rows)
}

/// The collection's latest migration with its progress counted now.
fn read_migration(tx: &Transaction<'_>, collection_id: &CollectionId) -> StoreResult<Option<Migration>> {
    let found = tx
        .query_row(
            "SELECT from_pack, target_pack, target_version, target_dim, state, started_at_ms, finished_at_ms \
             FROM migrations WHERE collection_id = ?1",
            params![collection_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    PackVersion { pack: r.get(1)?, version: r.get(2)? },
                    r.get::<_, u32>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            },
        )
        .optional()
        .map_err(map_error)?;
    let Some((from_pack, target, target_dim, state, started_at_ms, finished_at_ms)) = found else {
        return Ok(None);
    };
    let state = MigrationState::parse(&state).ok_or_else(|| StoreError::Backend(format!("migration state {state}")))?;
    let (faces_total, faces_migrated): (i64, i64) = tx
        .query_row(
            &format!(
                "SELECT COUNT(*), COALESCE(SUM({MIGRATED}), 0) FROM faces f JOIN migrations m \
                 ON m.collection_id = f.collection_id WHERE f.collection_id = ?1"
            ),
            params![collection_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(map_error)?;
    let sql = format!(
        "SELECT f.subject_id, f.id FROM faces f JOIN migrations m ON m.collection_id = f.collection_id \
         WHERE f.collection_id = ?1 AND NOT {MIGRATED} \
         AND NOT EXISTS (SELECT 1 FROM face_crops k WHERE k.face_id = f.id) ORDER BY f.rowid"
    );
    let mut statement = tx.prepare(&sql).map_err(map_error)?;
    let faces_without_crop = collect(
        statement
            .query_map(params![collection_id], |r| Ok(FaceRef { subject_id: r.get(0)?, face_id: r.get(1)? }))
            .map_err(map_error)?,
    )?;
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
        faces_without_crop,
    }))
}
