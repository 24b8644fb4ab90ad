//! Collections: creation, reading, deletion (an erasure), revisions and their templates.

use super::*;

pub(crate) async fn create_collection(
    store: &PgStore,
    tenant_id: &TenantId,
    new: &NewCollection,
    audit: &NewChange,
) -> StoreResult<Collection> {
    let id = &CollectionId::random();
    let audit = &NewChange { object_id: id.to_string(), ..audit.clone() };
    store
        .transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO collections (id, tenant_id, name, pack, embedding_size, target_fmr, keep_crops, \
                 created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(&new.name)
            .bind(&new.pack)
            .bind(new.embedding_size as i32)
            .bind(new.target_fmr)
            .bind(new.keep_crops)
            .bind(new.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            ensure_dim_index(&mut tx, new.embedding_size).await?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let collection = read_collection(&mut tx, tenant_id, id).await?;
            Ok((collection, tx))
        })
        .await
}

pub(crate) async fn list_collections(store: &PgStore, tenant_id: &TenantId) -> StoreResult<Vec<Collection>> {
    store
        .transaction(|mut tx| async move {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = $1 ORDER BY c.created_at_ms, c.id"
            );
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, collection_row)?, tx))
        })
        .await
}

pub(crate) async fn collection(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Collection> {
    store
        .transaction(|mut tx| async move {
            let collection = read_collection(&mut tx, tenant_id, collection_id).await?;
            Ok((collection, tx))
        })
        .await
}

pub(crate) async fn delete_collection(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    audit: &NewChange,
) -> StoreResult<Erasure> {
    store
        .erase(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let subject_ids = ids(
                &mut tx,
                "SELECT id FROM subjects WHERE collection_id = $1 ORDER BY created_at_ms, id",
                collection_id,
            )
            .await?;
            let face_ids = ids(
                &mut tx,
                "SELECT id FROM faces WHERE collection_id = $1 ORDER BY created_at_ms, seq",
                collection_id,
            )
            .await?;
            let tenant_sealed = tenant_sealed(&mut tx, "collection_id = $1", collection_id).await?;
            sqlx::query("DELETE FROM collections WHERE id = $1")
                .bind(collection_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let erasure = Erasure {
                collection_id: collection_id.clone(),
                subject_ids,
                face_ids,
                erased_at_ms: audit.at_ms,
                physically_erased: false,
                subject_keys_deleted: true,
                tenant_sealed,
            };
            Ok((erasure, tx))
        })
        .await
}

pub(crate) async fn collection_revision(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<i64> {
    store
        .transaction(|mut tx| async move {
            let revision = read_revision(&mut tx, tenant_id, collection_id).await?;
            Ok((revision, tx))
        })
        .await
}

pub(crate) async fn collection_templates(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<(i64, Vec<StoredTemplate>)> {
    store
        .transaction(|mut tx| async move {
            let revision = read_revision(&mut tx, tenant_id, collection_id).await?;
            let found = sqlx::query(
                "SELECT id, subject_id, nonce, ciphertext FROM faces WHERE collection_id = $1 \
                 AND pack = (SELECT pack FROM collections WHERE id = $1) ORDER BY seq",
            )
            .bind(collection_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok(((revision, rows(found, template_row)?), tx))
        })
        .await
}
