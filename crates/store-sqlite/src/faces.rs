//! Faces of a subject: enrolment, listing, erasure, templates and search.

use super::*;

pub(crate) async fn add_faces(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    faces: &[NewFace],
    audit: &NewEvent,
) -> StoreResult<Vec<FaceRecord>> {
    let (t, c, s, faces, audit) =
        (tenant_id.clone(), collection_id.clone(), subject_id.clone(), faces.to_vec(), audit.clone());
    store
        .transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO faces (id, subject_id, collection_id, nonce, ciphertext, detection_score, sharpness, \
                 face_size, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(map_error)?;
            let mut records = Vec::with_capacity(faces.len());
            for face in faces {
                insert
                    .execute(params![
                        face.id,
                        s,
                        c,
                        face.template.nonce,
                        face.template.ciphertext,
                        face.detection_score,
                        face.sharpness,
                        face.face_size,
                        face.created_at_ms
                    ])
                    .map_err(map_error)?;
                records.push(FaceRecord {
                    id: face.id,
                    subject_id: s.clone(),
                    detection_score: face.detection_score,
                    sharpness: face.sharpness,
                    face_size: face.face_size,
                    created_at_ms: face.created_at_ms,
                });
            }
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(records)
        })
        .await
}

pub(crate) async fn list_faces(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Vec<FaceRecord>> {
    let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
    store
        .transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let mut statement = tx
                .prepare(
                    "SELECT id, subject_id, detection_score, sharpness, face_size, created_at_ms FROM faces \
                 WHERE subject_id = ?1 ORDER BY created_at_ms, rowid",
                )
                .map_err(map_error)?;
            collect(statement.query_map(params![s], face_row).map_err(map_error)?)
        })
        .await
}

pub(crate) async fn delete_face(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    face_id: &FaceId,
    audit: &NewEvent,
) -> StoreResult<Erasure> {
    let (t, c, s, f, audit) =
        (tenant_id.clone(), collection_id.clone(), subject_id.clone(), face_id.clone(), audit.clone());
    store
        .erase(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let deleted =
                tx.execute("DELETE FROM faces WHERE id = ?1 AND subject_id = ?2", params![f, s]).map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(Erasure::of_subject(&c, &s, vec![f], audit.at_ms))
        })
        .await
}

pub(crate) async fn subject_templates(
    store: &SqliteStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Vec<StoredTemplate>> {
    let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
    store.transaction(move |tx| {
        ensure_subject(tx, &t, &c, &s)?;
        let mut statement = tx
            .prepare("SELECT id, subject_id, nonce, ciphertext FROM faces WHERE subject_id = ?1 ORDER BY created_at_ms, rowid")
            .map_err(map_error)?;
        collect(statement.query_map(params![s], template_row).map_err(map_error)?)
    })
    .await
}
