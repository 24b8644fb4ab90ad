//! Ignore lists: strangers' templates kept as negatives of a subject.

use super::*;

#[async_trait]
impl NegativeStore for SqliteStore {
    async fn add_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        negative: &NewNegative,
        audit: &NewEvent,
    ) -> StoreResult<NegativeRecord> {
        let (t, c, n, audit) = (tenant_id.clone(), collection_id.clone(), negative.clone(), audit.clone());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &n.subject_id)?;
            tx.execute(
                "INSERT INTO negatives (id, collection_id, subject_id, pack, pack_version, nonce, ciphertext, \
                     created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    n.id,
                    c,
                    n.subject_id,
                    n.pack.pack,
                    n.pack.version,
                    n.template.nonce,
                    n.template.ciphertext,
                    n.created_at_ms
                ],
            )
            .map_err(map_error)?;
            insert_events(tx, &t, std::slice::from_ref(&audit))?;
            let sql = format!("SELECT {NEGATIVE_COLUMNS} FROM negatives WHERE id = ?1");
            tx.query_row(&sql, params![n.id], negative_row).map_err(map_error)
        })
        .await
    }

    async fn list_negatives(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<NegativeRecord>> {
        let (t, c, s) = (tenant_id.clone(), collection_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let sql =
                format!("SELECT {NEGATIVE_COLUMNS} FROM negatives WHERE subject_id = ?1 ORDER BY created_at_ms, id");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![s], negative_row).map_err(map_error)?)
        })
        .await
    }

    async fn negatives_of(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_ids: &[SubjectId],
        pack: &str,
    ) -> StoreResult<Vec<StoredNegative>> {
        let (t, c, pack) = (tenant_id.clone(), collection_id.clone(), pack.to_string());
        let ids = serde_json::Value::from(subject_ids.iter().map(|id| id.as_str()).collect::<Vec<_>>()).to_string();
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &c)?;
            let mut statement = tx
                .prepare(
                    "SELECT id, subject_id, nonce, ciphertext FROM negatives WHERE collection_id = ?1 AND pack = ?2 \
                         AND subject_id IN (SELECT value FROM json_each(?3))",
                )
                .map_err(map_error)?;
            let rows = statement
                .query_map(params![c, pack, ids], |row| {
                    Ok(StoredNegative {
                        id: row.get(0)?,
                        subject_id: row.get(1)?,
                        template: EncryptedTemplate { nonce: row.get(2)?, ciphertext: row.get(3)? },
                    })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn delete_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        negative_id: &NegativeId,
        audit: &NewEvent,
    ) -> StoreResult<()> {
        let (t, c, s, n, audit) =
            (tenant_id.clone(), collection_id.clone(), subject_id.clone(), negative_id.clone(), audit.clone());
        self.erasing(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            let deleted = tx
                .execute("DELETE FROM negatives WHERE id = ?1 AND subject_id = ?2", params![n, s])
                .map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            insert_events(tx, &t, std::slice::from_ref(&audit))
        })
        .await
        .map(|((), _)| ())
    }
}

const NEGATIVE_COLUMNS: &str = "id, subject_id, pack, pack_version, created_at_ms";

fn negative_row(row: &Row<'_>) -> rusqlite::Result<NegativeRecord> {
    Ok(NegativeRecord {
        id: row.get(0)?,
        subject_id: row.get(1)?,
        pack: PackVersion { pack: row.get(2)?, version: row.get(3)? },
        created_at_ms: row.get(4)?,
    })
}
