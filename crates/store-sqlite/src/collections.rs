//! Collections: creation, reading, deletion (an erasure), revisions and their templates.

use super::*;

pub(crate) async fn create_collection(
    store: &SqliteStore,
    tenant_id: &TenantId,
    new: &NewCollection,
    audit: &NewChange,
) -> StoreResult<Collection> {
    let (tenant_id, new, mut audit) = (tenant_id.clone(), new.clone(), audit.clone());
    store
        .transaction(move |tx| {
            let id = CollectionId::random();
            tx.execute(
                "INSERT INTO collections (id, tenant_id, name, pack, embedding_size, target_fmr, keep_crops, \
                 created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    tenant_id,
                    new.name,
                    new.pack,
                    new.embedding_size,
                    new.target_fmr,
                    new.keep_crops,
                    new.created_at_ms
                ],
            )
            .map_err(map_error)?;
            audit.object_id = id.to_string();
            insert_change(tx, &tenant_id, &audit)?;
            read_collection(tx, &tenant_id, &id)
        })
        .await
}

pub(crate) async fn list_collections(store: &SqliteStore, tenant_id: &TenantId) -> StoreResult<Vec<Collection>> {
    let tenant_id = tenant_id.clone();
    store
        .transaction(move |tx| {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = ?1 ORDER BY c.created_at_ms, c.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![tenant_id], collection_row).map_err(map_error)?)
        })
        .await
}

pub(crate) async fn collection(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Collection> {
    let (tenant_id, collection_id) = (tenant_id.clone(), collection_id.clone());
    store.transaction(move |tx| read_collection(tx, &tenant_id, &collection_id)).await
}

pub(crate) async fn delete_collection(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    audit: &NewChange,
) -> StoreResult<Erasure> {
    let (tenant_id, collection_id, audit) = (tenant_id.clone(), collection_id.clone(), audit.clone());
    store
        .erase(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let subject_ids =
                ids(tx, "SELECT id FROM subjects WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            let face_ids =
                ids(tx, "SELECT id FROM faces WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            let tenant_sealed = tenant_sealed(tx, "collection_id = ?1", &collection_id)?;
            tx.execute("DELETE FROM collections WHERE id = ?1", params![collection_id]).map_err(map_error)?;
            insert_change(tx, &tenant_id, &audit)?;
            let erased_at_ms = audit.at_ms;
            Ok(Erasure {
                collection_id,
                subject_ids,
                face_ids,
                erased_at_ms,
                physically_erased: false,
                subject_keys_deleted: true,
                tenant_sealed,
            })
        })
        .await
}

pub(crate) async fn collection_revision(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<i64> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store.transaction(move |tx| read_revision(tx, &t, &c)).await
}

pub(crate) async fn collection_templates(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<(i64, Vec<StoredTemplate>)> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
            let revision = read_revision(tx, &t, &c)?;
            let mut statement = tx
                .prepare(
                    "SELECT f.id, f.subject_id, f.nonce, f.ciphertext FROM faces f JOIN collections c \
                     ON c.id = f.collection_id WHERE f.collection_id = ?1 AND f.pack = c.pack ORDER BY f.rowid",
                )
                .map_err(map_error)?;
            let templates = collect(statement.query_map(params![c], template_row).map_err(map_error)?)?;
            Ok((revision, templates))
        })
        .await
}
