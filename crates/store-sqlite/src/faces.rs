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
            let pack: String = tx
                .query_row("SELECT pack FROM collections WHERE id = ?1", params![c], |r| r.get(0))
                .map_err(map_error)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO faces (id, subject_id, collection_id, nonce, ciphertext, detection_score, sharpness, \
                     face_size, created_at_ms, pack, pack_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(map_error)?;
            let mut records = Vec::with_capacity(faces.len());
            for face in faces {
                let (searched, others) = face.templates_for(&pack);
                insert
                    .execute(params![
                        face.id,
                        s,
                        c,
                        searched.template.nonce,
                        searched.template.ciphertext,
                        face.detection_score,
                        face.sharpness,
                        face.face_size,
                        face.created_at_ms,
                        searched.pack.pack,
                        searched.pack.version
                    ])
                    .map_err(map_error)?;
                for other in others {
                    insert_other_template(tx, &c, &face.id, other)?;
                }
                if let Some(crop) = &face.crop {
                    tx.execute(
                        "INSERT INTO face_crops (face_id, nonce, ciphertext) VALUES (?1, ?2, ?3)",
                        params![face.id, crop.nonce, crop.ciphertext],
                    )
                    .map_err(map_error)?;
                }
                records.push(FaceRecord {
                    subject_id: s.clone(),
                    detection_score: face.detection_score,
                    sharpness: face.sharpness,
                    face_size: face.face_size,
                    created_at_ms: face.created_at_ms,
                    pack: searched.pack.clone(),
                    crop_kept: face.crop.is_some(),
                    id: face.id,
                });
            }
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(records)
        })
        .await
}

/// Stores a template of another pack than the one the face is searched by (replacing one of the same
/// pack and version).
pub(crate) fn insert_other_template(
    tx: &Transaction<'_>,
    collection_id: &CollectionId,
    face_id: &FaceId,
    template: &NewTemplate,
) -> StoreResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO face_templates (face_id, collection_id, pack, pack_version, nonce, ciphertext) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            face_id,
            collection_id,
            template.pack.pack,
            template.pack.version,
            template.template.nonce,
            template.template.ciphertext
        ],
    )
    .map_err(map_error)?;
    Ok(())
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
                    "SELECT f.id, f.subject_id, f.detection_score, f.sharpness, f.face_size, f.created_at_ms, f.pack, \
                 f.pack_version, EXISTS (SELECT 1 FROM face_crops k WHERE k.face_id = f.id) FROM faces f \
                 WHERE f.subject_id = ?1 ORDER BY f.created_at_ms, f.rowid",
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
            .prepare(
                "SELECT f.id, f.subject_id, f.nonce, f.ciphertext FROM faces f JOIN collections c ON c.id = f.collection_id \
                 WHERE f.subject_id = ?1 AND f.pack = c.pack ORDER BY f.created_at_ms, f.rowid",
            )
            .map_err(map_error)?;
        collect(statement.query_map(params![s], template_row).map_err(map_error)?)
    })
    .await
}
