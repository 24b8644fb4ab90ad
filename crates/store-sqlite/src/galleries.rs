//! Galleries: collections and their settings, subjects and their data keys, faces and their sealed
//! templates, revisions and search.

use super::*;

#[async_trait]
impl GalleryStore for SqliteStore {
    async fn create_collection(
        &self,
        tenant_id: &TenantId,
        new: &NewCollection,
        audit: &NewChange,
    ) -> StoreResult<Collection> {
        let (tenant_id, new, mut audit) = (tenant_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
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

    async fn list_collections(&self, tenant_id: &TenantId) -> StoreResult<Vec<Collection>> {
        let tenant_id = tenant_id.clone();
        self.transaction(move |tx| {
            let sql = format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.tenant_id = ?1 ORDER BY c.created_at_ms, c.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![tenant_id], collection_row).map_err(map_error)?)
        })
        .await
    }

    async fn collection(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Collection> {
        let (tenant_id, collection_id) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| read_collection(tx, &tenant_id, &collection_id)).await
    }

    async fn delete_collection(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        audit: &NewChange,
    ) -> StoreResult<Erasure> {
        let (tenant_id, collection_id, audit) = (tenant_id.clone(), collection_id.clone(), audit.clone());
        self.erase(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let subject_ids =
                ids(tx, "SELECT id FROM subjects WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            let face_ids =
                ids(tx, "SELECT id FROM faces WHERE collection_id = ?1 ORDER BY created_at_ms, id", &collection_id)?;
            let tenant_sealed = tenant_sealed(tx, "collection_id = ?1", &collection_id)?;
            let sightings = sightings_of(tx, "collection_id = ?1", &collection_id)?;
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
                sightings,
            })
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
        let (t, c, policy, audit) = (tenant_id.clone(), collection_id.clone(), *policy, audit.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            tx.execute(
                "UPDATE collections SET retention_days = ?2, liveness_required = ?3 WHERE id = ?1",
                params![c, policy.retention_days, policy.liveness_required],
            )
            .map_err(map_error)?;
            insert_change(tx, &t, &audit)?;
            read_collection(tx, &t, &c)
        })
        .await
    }

    async fn create_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        new: &NewSubject,
    ) -> StoreResult<Subject> {
        let (tenant_id, collection_id, new) = (tenant_id.clone(), collection_id.clone(), new.clone());
        self.transaction(move |tx| {
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

    async fn list_subjects(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<Vec<Subject>> {
        let (tenant_id, collection_id) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &tenant_id, &collection_id)?;
            let sql = format!(
                "SELECT {SUBJECT_COLUMNS} FROM subjects s WHERE s.collection_id = ?1 ORDER BY s.created_at_ms, s.id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![collection_id], subject_row).map_err(map_error)?)
        })
        .await
    }

    async fn subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Subject> {
        let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
        self.transaction(move |tx| read_subject(tx, &t, &c, &s)).await
    }

    async fn update_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        update: &NewSubject,
    ) -> StoreResult<Subject> {
        let (t, c, s, update) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), update.clone());
        self.transaction(move |tx| {
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

    async fn subjects_by_id(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
    ) -> StoreResult<Vec<Subject>> {
        let (t, c, wanted) = (tenant_id.clone(), collection_id.clone(), subject_ids.to_vec());
        self.transaction(move |tx| {
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

    async fn delete_subject(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        let (t, c, s, audit) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), audit.clone());
        self.erase(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let face_ids = ids(tx, "SELECT id FROM faces WHERE subject_id = ?1 ORDER BY created_at_ms, id", &s)?;
            let tenant_sealed = tenant_sealed(tx, "subject_id = ?1", &s)?;
            let sightings = sightings_of(tx, "subject_id = ?1", &s)?;
            tx.execute("DELETE FROM faces WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            // Queued webhook events naming the subject go with it (the erasure's own event is queued below).
            tx.execute("DELETE FROM outbox WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            tx.execute("DELETE FROM subjects WHERE id = ?1", params![s]).map_err(map_error)?;
            bump_revision(tx, &c)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            Ok(Erasure {
                subject_keys_deleted: true,
                tenant_sealed,
                sightings,
                ..Erasure::of_subject(&c, &s, face_ids, audit.at_ms)
            })
        })
        .await
    }

    async fn subject_key(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Option<EncryptedTemplate>> {
        let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            read_subject_key(tx, &s)
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
        let (t, c, s, key) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), key.clone());
        self.transaction(move |tx| {
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

    async fn subject_keys(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<Vec<(SubjectId, EncryptedTemplate)>> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
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

    async fn add_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        faces: &[NewFace],
        audit: &NewEvent,
    ) -> StoreResult<Vec<FaceRecord>> {
        let (t, c, s, faces, audit) =
            (tenant_id.clone(), collection_id.clone(), subject_id.clone(), faces.to_vec(), audit.clone());
        self
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

    async fn list_faces(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<FaceRecord>> {
        let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
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

    async fn delete_face(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_id: &FaceId,
        audit: &NewEvent,
    ) -> StoreResult<Erasure> {
        let (t, c, s, f, audit) =
            (tenant_id.clone(), collection_id.clone(), subject_id.clone(), face_id.clone(), audit.clone());
        self.erase(move |tx| {
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

    async fn subject_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<StoredTemplate>> {
        let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
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

    async fn collection_revision(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> StoreResult<i64> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| read_revision(tx, &t, &c)).await
    }

    async fn collection_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> StoreResult<(i64, Vec<StoredTemplate>)> {
        let (t, c) = (tenant_id.clone(), collection_id.clone());
        self.transaction(move |tx| {
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
}

fn read_subject_key(tx: &Transaction<'_>, subject_id: &SubjectId) -> StoreResult<Option<EncryptedTemplate>> {
    tx.query_row("SELECT nonce, ciphertext FROM subject_keys WHERE subject_id = ?1", params![subject_id], |row| {
        Ok(EncryptedTemplate { nonce: row.get(0)?, ciphertext: row.get(1)? })
    })
    .optional()
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
