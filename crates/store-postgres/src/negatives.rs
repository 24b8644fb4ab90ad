//! Ignore lists: strangers' templates kept as negatives of a subject.

use super::*;

#[async_trait]
impl NegativeStore for PgStore {
    async fn add_negative(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        negative: &NewNegative,
        audit: &NewEvent,
    ) -> StoreResult<NegativeRecord> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, &negative.subject_id).await?;
            sqlx::query(
                "INSERT INTO negatives (id, collection_id, subject_id, pack, pack_version, nonce, ciphertext, \
                     created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&negative.id)
            .bind(collection_id)
            .bind(&negative.subject_id)
            .bind(&negative.pack.pack)
            .bind(&negative.pack.version)
            .bind(&negative.template.nonce)
            .bind(&negative.template.ciphertext)
            .bind(negative.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            let sql = format!("SELECT {NEGATIVE_COLUMNS} FROM negatives WHERE id = $1");
            let row =
                sqlx::query(AssertSqlSafe(sql)).bind(&negative.id).fetch_one(&mut *tx).await.map_err(map_error)?;
            let record = negative_row(&row).map_err(map_error)?;
            Ok((record, tx))
        })
        .await
    }

    async fn list_negatives(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> StoreResult<Vec<NegativeRecord>> {
        self.transaction(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let sql =
                format!("SELECT {NEGATIVE_COLUMNS} FROM negatives WHERE subject_id = $1 ORDER BY created_at_ms, id");
            let found =
                sqlx::query(AssertSqlSafe(sql)).bind(subject_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, negative_row)?, tx))
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
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, collection_id).await?;
            let found = sqlx::query(
                "SELECT id, subject_id, nonce, ciphertext FROM negatives WHERE collection_id = $1 AND pack = $2 \
                     AND subject_id = ANY($3)",
            )
            .bind(collection_id)
            .bind(pack)
            .bind(subject_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            let read = |row: &PgRow| {
                Ok(StoredNegative {
                    id: row.try_get("id")?,
                    subject_id: row.try_get("subject_id")?,
                    template: EncryptedTemplate {
                        nonce: row.try_get("nonce")?,
                        ciphertext: row.try_get("ciphertext")?,
                    },
                })
            };
            Ok((rows(found, read)?, tx))
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
        self.erasing(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            let done = sqlx::query("DELETE FROM negatives WHERE id = $1 AND subject_id = $2")
                .bind(negative_id)
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_events(&mut tx, tenant_id, std::slice::from_ref(audit)).await?;
            Ok(((), tx))
        })
        .await
    }
}

const NEGATIVE_COLUMNS: &str = "id, subject_id, pack, pack_version, created_at_ms";

fn negative_row(row: &PgRow) -> Result<NegativeRecord, sqlx::Error> {
    Ok(NegativeRecord {
        id: row.try_get("id")?,
        subject_id: row.try_get("subject_id")?,
        pack: PackVersion { pack: row.try_get("pack")?, version: row.try_get("pack_version")? },
        created_at_ms: row.try_get("created_at_ms")?,
    })
}
