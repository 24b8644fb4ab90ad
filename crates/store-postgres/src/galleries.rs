//! Galleries: collections and their settings, subjects and their data keys, faces and their sealed
//! templates, revisions and search.

use super::*;

#[async_trait]
impl GalleryStore for PgStore {
    async fn create_collection(
        &self,
        tenant_id: &TenantId,
        new: &NewCollection,
        audit: &NewChange,
    ) -> StoreResult<Collection> {
        let id = &CollectionId::random();
        let audit = &NewChange { object_id: id.to_string(), ..audit.clone() };
        self.transaction(|mut tx| async move {
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

    async fn list_collections(&self, tenant_id: &TenantId) -> StoreResult<Vec<Collection>> {
        self.transaction(|mut tx| async move {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = $1 ORDER BY c.created_at_ms, c.id"
            );
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, collection_row)?, tx))
        })
        .await
    }

    async fn collection(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Collection> {
        self.transaction(|mut tx| async move {
            let collection = read_collection(&mut tx, tenant_id, collection_id).await?;
            Ok((collection, tx))
        })
        .await
    }

    async fn delete_collection(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewChange,
    ) -> StoreResult<Erasure> {
        self.erase(|mut tx| async move {
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
            let sightings = sightings_of(&mut tx, "collection_id = $1", collection_id).await?;
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
                sightings,
            };
            Ok((erasure, tx))
        })
        .await
    }

    async fn set_collection_policy(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        policy: &CollectionPolicy,
        audit: &NewChange,
    ) -> StoreResult<Collection> {
        let days = policy.retention_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            sqlx::query("UPDATE collections SET retention_days = $2, liveness_required = $3 WHERE id = $1")
                .bind(collection_id)
                .bind(days)
                .bind(policy.liveness_required)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let collection = read_collection(&mut tx, tenant_id, collection_id).await?;
            Ok((collection, tx))
        })
        .await
    }

    async fn create_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewSubject,
    ) -> StoreResult<Subject> {
        let id = &SubjectId::random();
        let metadata = &new.metadata.to_string();
        let groups = &groups_json(new.groups.as_deref().unwrap_or_default());
        self.transaction(|mut tx| async move {
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

    async fn list_subjects(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<Subject>> {
        self.transaction(|mut tx| async move {
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

    async fn subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Subject> {
        self.transaction(|mut tx| async move {
            let subject = read_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            Ok((subject, tx))
        })
        .await
    }

    async fn update_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        update: &NewSubject,
    ) -> StoreResult<Subject> {
        let metadata = &update.metadata.to_string();
        let groups = &update.groups.as_deref().map(groups_json);
        self.transaction(|mut tx| async move {
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

    async fn subjects_by_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
    ) -> StoreResult<Vec<Subject>> {
        self.transaction(|mut tx| async move {
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

    async fn delete_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        self.erase(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let face_ids =
                ids(&mut tx, "SELECT id FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq", subject_id)
                    .await?;
            let tenant_sealed = tenant_sealed(&mut tx, "subject_id = $1", subject_id).await?;
            let sightings = sightings_of(&mut tx, "subject_id = $1", subject_id).await?;
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
                sightings,
                ..Erasure::of_subject(collection_id, subject_id, face_ids, audit.at_ms)
            };
            Ok((erasure, tx))
        })
        .await
    }

    async fn subject_key(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Option<EncryptedTemplate>> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let key = read_subject_key(&mut tx, subject_id).await?;
            Ok((key, tx))
        })
        .await
    }

    async fn insert_subject_key_if_absent(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        key: &EncryptedTemplate,
    ) -> StoreResult<EncryptedTemplate> {
        self.transaction(|mut tx| async move {
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

    async fn subject_keys(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>> {
        self.transaction(|mut tx| async move {
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

    async fn add_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        faces: &[NewFace],
        audit: &NewEvent,
    ) -> StoreResult<Vec<FaceRecord>> {
        self.transaction(|mut tx| async move {
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

    async fn list_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<FaceRecord>> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let sql = format!("SELECT {FACE_COLUMNS} FROM faces WHERE subject_id = $1 ORDER BY created_at_ms, seq");
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, face_row)?, tx))
        })
        .await
    }

    async fn delete_face(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_id: &FaceId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        self.erase(|mut tx| async move {
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

    async fn subject_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<StoredTemplate>> {
        self
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

    async fn collection_revision(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<i64> {
        self.transaction(|mut tx| async move {
            let revision = read_revision(&mut tx, tenant_id, collection_id).await?;
            Ok((revision, tx))
        })
        .await
    }

    async fn collection_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)> {
        self.transaction(|mut tx| async move {
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

    fn searches_in_store(&self) -> bool {
        true
    }

    async fn search_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        query: &[f32],
        limit: usize,
    ) -> StoreResult<Vec<FaceHit>> {
        let query_vector = &Vector::from(query.to_vec());
        let dim = query.len();
        let exact_max = self.config.exact_scan_max_faces;
        self.transaction(|mut tx| async move {
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

/// Groups as stored (a JSON array).
fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups.to_vec()).to_string()
}

/// A subject's consent record as stored (JSON), if it has one.
fn consent_json(subject: &NewSubject) -> Option<String> {
    subject.consent.as_ref().and_then(|c| serde_json::to_string(c).ok())
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
