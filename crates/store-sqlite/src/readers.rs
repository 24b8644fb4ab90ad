//! Door readers and card credentials.

use super::*;
use facegate_store::{CardCredential, ReaderSettings, ReaderStore, StoredReader};

fn reader_row(row: &Row<'_>) -> rusqlite::Result<StoredReader> {
    Ok(StoredReader {
        settings: json_column::<ReaderSettings>(row, 0)?,
        key: EncryptedTemplate { nonce: row.get(1)?, ciphertext: row.get(2)? },
        updated_at_ms: row.get(3)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl ReaderStore for SqliteStore {
    async fn set_reader(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        reader: Option<&StoredReader>,
        audit: &NewChange,
    ) -> StoreResult<()> {
        let (t, d, reader, audit) = (tenant_id.clone(), door_id.clone(), reader.cloned(), audit.clone());
        let settings = reader.as_ref().map(|r| to_json(&r.settings)).transpose()?;
        self.erasing(move |tx| {
            tx.query_row("SELECT 1 FROM doors WHERE id = ?1 AND tenant_id = ?2", params![d, t], |_| Ok(()))
                .optional()
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            tx.execute("DELETE FROM door_readers WHERE door_id = ?1", params![d]).map_err(map_error)?;
            if let (Some(reader), Some(settings)) = (reader, settings) {
                tx.execute(
                    "INSERT INTO door_readers (door_id, tenant_id, settings, key_nonce, key_ciphertext, updated_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![d, t, settings, reader.key.nonce, reader.key.ciphertext, reader.updated_at_ms],
                )
                .map_err(map_error)?;
            }
            insert_change(tx, &t, &audit)
        })
        .await
        .map(|((), _)| ())
    }

    async fn reader(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Option<StoredReader>> {
        let (t, d) = (tenant_id.clone(), door_id.clone());
        self.transaction(move |tx| {
            tx.query_row("SELECT 1 FROM doors WHERE id = ?1 AND tenant_id = ?2", params![d, t], |_| Ok(()))
                .optional()
                .map_err(map_error)?
                .ok_or(StoreError::NotFound)?;
            tx.query_row(
                "SELECT settings, key_nonce, key_ciphertext, updated_at_ms FROM door_readers WHERE door_id = ?1",
                params![d],
                reader_row,
            )
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn all_readers(&self) -> StoreResult<Vec<(TenantId, DoorId, StoredReader)>> {
        self.transaction(move |tx| {
            let mut statement = tx
                .prepare(
                    "SELECT settings, key_nonce, key_ciphertext, updated_at_ms, tenant_id, door_id FROM door_readers \
                     ORDER BY door_id",
                )
                .map_err(map_error)?;
            let rows =
                statement.query_map([], |row| Ok((row.get(4)?, row.get(5)?, reader_row(row)?))).map_err(map_error)?;
            collect(rows)
        })
        .await
    }

    async fn set_credentials(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        credentials: &[CardCredential],
        audit: &NewChange,
    ) -> StoreResult<()> {
        let (t, c, s, audit) = (tenant_id.clone(), collection_id.clone(), subject_id.clone(), audit.clone());
        let cards = to_json(&credentials)?;
        let empty = credentials.is_empty();
        self.erasing(move |tx| {
            ensure_subject(tx, &t, &c, &s)?;
            tx.execute("DELETE FROM subject_credentials WHERE subject_id = ?1", params![s]).map_err(map_error)?;
            if !empty {
                tx.execute(
                    "INSERT INTO subject_credentials (subject_id, tenant_id, credentials) VALUES (?1, ?2, ?3)",
                    params![s, t, cards],
                )
                .map_err(map_error)?;
            }
            insert_change(tx, &t, &audit)
        })
        .await
        .map(|((), _)| ())
    }

    async fn credentials(&self, tenant_id: &TenantId, subject_id: &SubjectId) -> StoreResult<Vec<CardCredential>> {
        let (t, s) = (tenant_id.clone(), subject_id.clone());
        self.transaction(move |tx| {
            let found = tx
                .query_row(
                    "SELECT credentials FROM subject_credentials WHERE subject_id = ?1 AND tenant_id = ?2",
                    params![s, t],
                    |row| json_column::<Vec<CardCredential>>(row, 0),
                )
                .optional()
                .map_err(map_error)?;
            Ok(found.unwrap_or_default())
        })
        .await
    }
}
