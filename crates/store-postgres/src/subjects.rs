//! Subjects of a collection.

use super::*;

pub(crate) async fn create_subject(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    new: &NewSubject,
) -> StoreResult<Subject> {
    let id = &SubjectId::random();
    let metadata = &new.metadata.to_string();
    let groups = &groups_json(new.groups.as_deref().unwrap_or_default());
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            sqlx::query(
                "INSERT INTO subjects (id, collection_id, name, metadata, created_at_ms, groups, consent, \
                 consent_expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(collection_id)
            .bind(&new.name)
            .bind(metadata)
            .bind(new.created_at_ms)
            .bind(groups)
            .bind(consent_json(new))
            .bind(new.consent.as_ref().and_then(|c| c.expires_at_ms))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let subject = read_subject(&mut tx, tenant_id, collection_id, id).await?;
            Ok((subject, tx))
        })
        .await
}

pub(crate) async fn list_subjects(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Vec<Subject>> {
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = $1 ORDER BY s.created_at_ms, s.id"
            );
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(collection_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, subject_row)?, tx))
        })
        .await
}

pub(crate) async fn subject(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Subject> {
    store
        .transaction(|mut tx| async move {
            let subject = read_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            Ok((subject, tx))
        })
        .await
}

pub(crate) async fn subjects_by_id(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_ids: &[SubjectId],
) -> StoreResult<Vec<Subject>> {
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = $1 AND s.id = ANY($2)");
            let found = sqlx::query(AssertSqlSafe(sql))
                .bind(collection_id)
                .bind(subject_ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok((rows(found, subject_row)?, tx))
        })
        .await
}

pub(crate) async fn update_subject(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    update: &NewSubject,
) -> StoreResult<Subject> {
    let metadata = &update.metadata.to_string();
    let groups = &update.groups.as_deref().map(groups_json);
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            sqlx::query(
                "UPDATE subjects SET name = $2, metadata = $3, groups = COALESCE($4, groups), \
                 consent = COALESCE($5, consent), \
                 consent_expires_at_ms = CASE WHEN $5::TEXT IS NULL THEN consent_expires_at_ms ELSE $6 END \
                 WHERE id = $1",
            )
            .bind(subject_id)
            .bind(&update.name)
            .bind(metadata)
            .bind(groups)
            .bind(consent_json(update))
            .bind(update.consent.as_ref().and_then(|c| c.expires_at_ms))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let subject = read_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            Ok((subject, tx))
        })
        .await
}

pub(crate) async fn delete_subject(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    audit: &NewEvent,
) -> StoreResult<Erasure> {
    store
        .erase(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let face_ids =
                ids(&mut tx, "SELECT id FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq", subject_id)
                    .await?;
            let tenant_sealed = tenant_sealed(&mut tx, "subject_id = $1", subject_id).await?;
            sqlx::query("DELETE FROM faces WHERE subject_id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            // Queued webhook events naming the subject go with it (the erasure's own event is queued below).
            sqlx::query("DELETE FROM outbox WHERE subject_id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            sqlx::query("DELETE FROM subjects WHERE id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            let erasure = Erasure {
                subject_keys_deleted: true,
                tenant_sealed,
                ..Erasure::of_subject(collection_id, subject_id, face_ids, audit.at_ms)
            };
            Ok((erasure, tx))
        })
        .await
}

pub(crate) async fn subject_key(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Option<EncryptedTemplate>> {
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let key = read_subject_key(&mut tx, subject_id).await?;
            Ok((key, tx))
        })
        .await
}

async fn read_subject_key(tx: &mut Tx, subject_id: &SubjectId) -> StoreResult<Option<EncryptedTemplate>> {
    let row = sqlx::query("SELECT nonce, ciphertext FROM subject_keys WHERE subject_id = $1")
        .bind(subject_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    row.map(|r| Ok(EncryptedTemplate { nonce: r.try_get("nonce")?, ciphertext: r.try_get("ciphertext")? }))
        .transpose()
        .map_err(map_error)
}

pub(crate) async fn insert_subject_key_if_absent(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    key: &EncryptedTemplate,
) -> StoreResult<EncryptedTemplate> {
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            sqlx::query(
                "INSERT INTO subject_keys (subject_id, nonce, ciphertext) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject_id) DO NOTHING",
            )
            .bind(subject_id)
            .bind(&key.nonce)
            .bind(&key.ciphertext)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let stored = read_subject_key(&mut tx, subject_id).await?.ok_or(StoreError::NotFound)?;
            Ok((stored, tx))
        })
        .await
}

pub(crate) async fn subject_keys(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>> {
    store
        .transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let found = sqlx::query(
                "SELECT k.subject_id, k.nonce, k.ciphertext FROM subject_keys k JOIN subjects s ON s.id = k.subject_id \
                 WHERE s.collection_id = $1",
            )
            .bind(collection_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            let read = |row: &PgRow| {
                Ok((
                    row.try_get("subject_id")?,
                    EncryptedTemplate { nonce: row.try_get("nonce")?, ciphertext: row.try_get("ciphertext")? },
                ))
            };
            Ok((rows(found, read)?, tx))
        })
        .await
}

/// Groups as stored (a JSON array).
fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups.to_vec()).to_string()
}

/// A subject's consent record as stored (JSON), if it has one.
fn consent_json(subject: &NewSubject) -> Option<String> {
    subject.consent.as_ref().and_then(|c| serde_json::to_string(c).ok())
}
