//! Subjects of a collection.

use super::*;

pub(crate) async fn create_subject(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    new: &NewSubject,
) -> StoreResult<Subject> {
    let (tenant_id, collection_id, new) = (tenant_id.clone(), collection_id.clone(), new.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let id = SubjectId::random();
            tx.execute(
                "INSERT INTO subjects (id, collection_id, name, metadata, created_at_ms, groups, consent, \
                 consent_expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    collection_id,
                    new.name,
                    new.metadata.to_string(),
                    new.created_at_ms,
                    groups_json(new.groups.as_deref().unwrap_or_default()),
                    consent_json(&new),
                    new.consent.as_ref().and_then(|c| c.expires_at_ms)
                ],
            )
            .map_err(map_error)?;
            read_subject(tx, &tenant_id, &collection_id, &id)
        })
        .await
}

pub(crate) async fn list_subjects(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Vec<Subject>> {
    let (tenant_id, collection_id) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = ?1 ORDER BY s.created_at_ms, s.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![collection_id], subject_row).map_err(map_error)?)
        })
        .await
}

pub(crate) async fn subject(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Subject> {
    let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
    store.transaction(move |tx| read_subject(tx, &t, &c, &s)).await
}

pub(crate) async fn subjects_by_id(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_ids: &[SubjectId],
) -> StoreResult<Vec<Subject>> {
    let (t, c, wanted) = (tenant_id.clone(), collection_id.clone(), subject_ids.to_vec());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = ?1 AND s.id IN \
             (SELECT value FROM json_each(?2))"
            );
            let ids = serde_json::Value::from(wanted.iter().map(|id| id.as_str()).collect::<Vec<_>>()).to_string();
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![c, ids], subject_row).map_err(map_error)?)
        })
        .await
}

pub(crate) async fn update_subject(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    update: &NewSubject,
) -> StoreResult<Subject> {
    let (t, c, s, update) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), update.clone());
    store
        .transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            tx.execute(
                "UPDATE subjects SET name = ?2, metadata = ?3, groups = COALESCE(?4, groups), \
                 consent = COALESCE(?5, consent), \
                 consent_expires_at_ms = CASE WHEN ?5 IS NULL THEN consent_expires_at_ms ELSE ?6 END WHERE id = ?1",
                params![
                    s,
                    update.name,
                    update.metadata.to_string(),
                    update.groups.as_deref().map(groups_json),
                    consent_json(&update),
                    update.consent.as_ref().and_then(|c| c.expires_at_ms)
                ],
            )
            .map_err(map_error)?;
            read_subject(tx, &t, &c, &s)
        })
        .await
}

pub(crate) async fn delete_subject(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    audit: &NewEvent,
) -> StoreResult<Erasure> {
    let (t, c, s, audit) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), audit.clone());
    store
        .erase(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let face_ids = ids(tx, "SELECT id FROM faces WHERE subject_id = ?1 ORDER BY created_at_ms, id", &s)?;
            let tenant_sealed = tenant_sealed(tx, "subject_id = ?1", &s)?;
            tx.execute("DELETE FROM faces WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            // Queued webhook events naming the subject go with it (the erasure's own event is queued below).
            tx.execute("DELETE FROM outbox WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            tx.execute("DELETE FROM subjects WHERE id = ?1", params![s]).map_err(map_error)?;
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(Erasure {
                subject_keys_deleted: true,
                tenant_sealed,
                ..Erasure::of_subject(&c, &s, face_ids, audit.at_ms)
            })
        })
        .await
}

pub(crate) async fn subject_key(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Option<EncryptedTemplate>> {
    let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
    store
        .transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            read_subject_key(tx, &s)
        })
        .await
}

fn read_subject_key(tx: &Transaction<'_>, subject_id: &SubjectId) -> StoreResult<Option<EncryptedTemplate>> {
    tx.query_row("SELECT nonce, ciphertext FROM subject_keys WHERE subject_id = ?1", params![subject_id], |row| {
        Ok(EncryptedTemplate { nonce: row.get(0)?, ciphertext: row.get(1)? })
    })
    .optional()
    .map_err(map_error)
}

pub(crate) async fn insert_subject_key_if_absent(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    key: &EncryptedTemplate,
) -> StoreResult<EncryptedTemplate> {
    let (t, c, s, key) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), key.clone());
    store
        .transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            tx.execute(
                "INSERT INTO subject_keys (subject_id, nonce, ciphertext) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (subject_id) DO NOTHING",
                params![s, key.nonce, key.ciphertext],
            )
            .map_err(map_error)?;
            read_subject_key(tx, &s)?.ok_or(StoreError::NotFound)
        })
        .await
}

pub(crate) async fn subject_keys(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>> {
    let (t, c) = (tenant_id.clone(), collection_id.clone());
    store
        .transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let mut statement = tx
                .prepare(
                    "SELECT k.subject_id, k.nonce, k.ciphertext FROM subject_keys k JOIN subjects s \
                     ON s.id = k.subject_id WHERE s.collection_id = ?1",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![c], |row| {
                    Ok((row.get(0)?, EncryptedTemplate { nonce: row.get(1)?, ciphertext: row.get(2)? }))
                })
                .map_err(map_error)?;
            collect(rows)
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
