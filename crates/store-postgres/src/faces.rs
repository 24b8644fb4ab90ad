//! Faces of a subject: enrolment, listing, erasure, templates and search.

use super::*;

pub(crate) async fn add_faces(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    faces: &[NewFace],
    audit: &NewEvent,
) -> StoreResult<Vec<FaceRecord>> {
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            // Locked as the revision update below would lock it (enrolments into one collection take
            // turns there anyway): a migration's switch cannot happen in between.
            let pack: String = sqlx::query_scalar("SELECT pack FROM collections WHERE id = $1 FOR NO KEY UPDATE")
                .bind(collection_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_error)?;
            let mut records = Vec::with_capacity(faces.len());
            for face in faces {
                let (searched, others) = face.templates_for(&pack);
                sqlx::query(
                    "INSERT INTO faces (id, subject_id, collection_id, nonce, ciphertext, dim, search_vector, \
                 detection_score, sharpness, face_size, created_at_ms, pack, pack_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&face.id)
                .bind(subject_id)
                .bind(collection_id)
                .bind(&searched.template.nonce)
                .bind(&searched.template.ciphertext)
                .bind(searched.search_vector.len() as i32)
                .bind(Vector::from(searched.search_vector.clone()))
                .bind(face.detection_score)
                .bind(face.sharpness)
                .bind(face.face_size)
                .bind(face.created_at_ms)
                .bind(&searched.pack.pack)
                .bind(&searched.pack.version)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                for other in others {
                    insert_other_template(&mut tx, collection_id, &face.id, other).await?;
                }
                if let Some(crop) = &face.crop {
                    sqlx::query("INSERT INTO face_crops (face_id, nonce, ciphertext) VALUES ($1, $2, $3)")
                        .bind(&face.id)
                        .bind(&crop.nonce)
                        .bind(&crop.ciphertext)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_error)?;
                }
                records.push(FaceRecord {
                    id: face.id.clone(),
                    subject_id: subject_id.clone(),
                    detection_score: face.detection_score,
                    sharpness: face.sharpness,
                    face_size: face.face_size,
                    created_at_ms: face.created_at_ms,
                    pack: searched.pack.clone(),
                    crop_kept: face.crop.is_some(),
                });
            }
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            Ok((records, tx))
        })
        .await
}

/// Stores a template of another pack than the one the face is searched by (replacing one of the same
/// pack and version).
pub(crate) async fn insert_other_template(
    tx: &mut Tx,
    collection_id: &CollectionId,
    face_id: &FaceId,
    template: &NewTemplate,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO face_templates (face_id, collection_id, pack, pack_version, nonce, ciphertext, dim, search_vector) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (face_id, pack, pack_version) DO UPDATE SET \
         nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, dim = EXCLUDED.dim, search_vector = EXCLUDED.search_vector",
    )
    .bind(face_id)
    .bind(collection_id)
    .bind(&template.pack.pack)
    .bind(&template.pack.version)
    .bind(&template.template.nonce)
    .bind(&template.template.ciphertext)
    .bind(template.search_vector.len() as i32)
    .bind(Vector::from(template.search_vector.clone()))
    .execute(&mut **tx)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(crate) async fn list_faces(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Vec<FaceRecord>> {
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let sql = format!("SELECT {FACE_COLUMNS} FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq");
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, face_row)?, tx))
        })
        .await
}

pub(crate) async fn delete_face(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
    face_id: &FaceId,
    audit: &NewEvent,
) -> StoreResult<Erasure> {
    store
        .erase(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let done = sqlx::query("DELETE FROM faces WHERE id = $1 AND subject_id = $2")
                .bind(face_id)
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            bump_revision(&mut tx, collection_id).await?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            let erasure = Erasure::of_subject(collection_id, subject_id, vec![face_id.clone()], audit.at_ms);
            Ok((erasure, tx))
        })
        .await
}

pub(crate) async fn subject_templates(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    subject_id: &SubjectId,
) -> StoreResult<Vec<StoredTemplate>> {
    store
        .transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let found = sqlx::query(
                "SELECT id, subject_id, nonce, ciphertext FROM faces WHERE subject_id = $1 \
                 AND pack = (SELECT pack FROM collections WHERE id = faces.collection_id) ORDER BY created_at_ms, seq",
            )
            .bind(subject_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            Ok((rows(found, template_row)?, tx))
        })
        .await
}

pub(crate) async fn search_faces(
    store: &PgStore,
    tenant_id: &TenantId,
    collection_id: &CollectionId,
    query: &[f32],
    limit: usize,
) -> StoreResult<Vec<FaceHit>> {
    let query_vector = &Vector::from(query.to_vec());
    let dim = query.len();
    let exact_max = store.config.exact_scan_max_faces;
    store.transaction(|mut tx| async move {
        ensure_collection(&mut tx, tenant_id, collection_id).await?;
        // Is the collection larger than the exact-scan limit? Probing one row past the limit reads
        // at most that many index entries, where COUNT(*) would read them all.
        let offset = i64::try_from(exact_max).unwrap_or(i64::MAX);
        let large: Option<i32> =
            sqlx::query_scalar(
                "SELECT 1 FROM faces WHERE collection_id = $1 AND dim = $2 AND pack = \
                 (SELECT pack FROM collections WHERE id = $1) OFFSET $3 LIMIT 1",
            )
                .bind(collection_id)
                .bind(dim as i32)
                .bind(offset)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
        let sql = if large.is_none() {
            // Exact: the plain expression does not match the HNSW index, so this is a scan of the
            // collection's rows through faces_by_collection.
            "SELECT id, subject_id, (search_vector <=> $2)::real AS distance FROM faces \
             WHERE collection_id = $1 AND pack = (SELECT pack FROM collections WHERE id = $1) \
             ORDER BY search_vector <=> $2 LIMIT $3"
                .to_string()
        } else {
            sqlx::query(AssertSqlSafe(format!("SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}"))).execute(&mut *tx).await.map_err(map_error)?;
            sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await.map_err(map_error)?;
            format!(
                "SELECT id, subject_id, (search_vector::vector({dim}) <=> $2::vector({dim}))::real AS distance FROM faces \
                 WHERE collection_id = $1 AND dim = {dim} AND pack = (SELECT pack FROM collections WHERE id = $1) \
                 ORDER BY search_vector::vector({dim}) <=> $2::vector({dim}) LIMIT $3"
            )
        };
        let found = sqlx::query(AssertSqlSafe(sql))
            .bind(collection_id)
            .bind(query_vector)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
        let mut hits = found
            .iter()
            .map(|r| {
                Ok(FaceHit {
                    face_id: r.try_get("id")?,
                    subject_id: r.try_get("subject_id")?,
                    score: 1.0 - r.try_get::<f32, _>("distance")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(map_error)?;
        // HNSW with relaxed ordering may return near-ties out of order: re-rank by the exact score.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok((hits, tx))
    })
    .await
}
