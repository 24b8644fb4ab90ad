//! Door readers and card credentials.

use super::*;
use facegate_store::{CardCredential, ReaderSettings, ReaderStore, StoredReader};

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn reader_row(row: &PgRow) -> StoreResult<StoredReader> {
    let settings: String = row.try_get(0).map_err(map_error)?;
    Ok(StoredReader {
        settings: serde_json::from_str::<ReaderSettings>(&settings).map_err(|e| StoreError::Backend(e.to_string()))?,
        key: EncryptedTemplate {
            nonce: row.try_get(1).map_err(map_error)?,
            ciphertext: row.try_get(2).map_err(map_error)?,
        },
        updated_at_ms: row.try_get(3).map_err(map_error)?,
    })
}

async fn ensure_door(tx: &mut Tx, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM doors WHERE id = $1 AND tenant_id = $2 FOR SHARE")
        .bind(door_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

#[async_trait]
impl ReaderStore for PgStore {
    async fn set_reader(
        &self,
        tenant_id: &TenantId,
        door_id: &DoorId,
        reader: Option<&StoredReader>,
        audit: &NewChange,
    ) -> StoreResult<()> {
        let settings = &reader.map(|r| to_json(&r.settings)).transpose()?;
        self.erasing(|mut tx| async move {
            ensure_door(&mut tx, tenant_id, door_id).await?;
            sqlx::query("DELETE FROM door_readers WHERE door_id = $1")
                .bind(door_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if let (Some(reader), Some(settings)) = (reader, settings) {
                sqlx::query(
                    "INSERT INTO door_readers (door_id, tenant_id, settings, key_nonce, key_ciphertext, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(door_id)
                .bind(tenant_id)
                .bind(settings)
                .bind(&reader.key.nonce)
                .bind(&reader.key.ciphertext)
                .bind(reader.updated_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn reader(&self, tenant_id: &TenantId, door_id: &DoorId) -> StoreResult<Option<StoredReader>> {
        self.transaction(|mut tx| async move {
            ensure_door(&mut tx, tenant_id, door_id).await?;
            let found = sqlx::query(
                "SELECT settings, key_nonce, key_ciphertext, updated_at_ms FROM door_readers WHERE door_id = $1",
            )
            .bind(door_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?;
            let reader = found.as_ref().map(reader_row).transpose()?;
            Ok((reader, tx))
        })
        .await
    }

    async fn all_readers(&self) -> StoreResult<Vec<(TenantId, DoorId, StoredReader)>> {
        self.transaction(|mut tx| async move {
            let found = sqlx::query(
                "SELECT settings, key_nonce, key_ciphertext, updated_at_ms, tenant_id, door_id FROM door_readers \
                 ORDER BY door_id",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(map_error)?;
            let mut readers = Vec::with_capacity(found.len());
            for row in &found {
                let tenant: String = row.try_get(4).map_err(map_error)?;
                let door: String = row.try_get(5).map_err(map_error)?;
                readers.push((TenantId::from(tenant), DoorId::from(door), reader_row(row)?));
            }
            Ok((readers, tx))
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
        let cards = &to_json(&credentials)?;
        let empty = credentials.is_empty();
        self.erasing(|mut tx| async move {
            ensure_subject(&mut tx, tenant_id, collection_id, subject_id).await?;
            sqlx::query("DELETE FROM subject_credentials WHERE subject_id = $1")
                .bind(subject_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if !empty {
                sqlx::query("INSERT INTO subject_credentials (subject_id, tenant_id, credentials) VALUES ($1, $2, $3)")
                    .bind(subject_id)
                    .bind(tenant_id)
                    .bind(cards)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn credentials(&self, tenant_id: &TenantId, subject_id: &SubjectId) -> StoreResult<Vec<CardCredential>> {
        self.transaction(|mut tx| async move {
            let found =
                sqlx::query("SELECT credentials FROM subject_credentials WHERE subject_id = $1 AND tenant_id = $2")
                    .bind(subject_id)
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_error)?;
            let cards = match found {
                Some(row) => {
                    let text: String = row.try_get(0).map_err(map_error)?;
                    serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))?
                }
                None => Vec::new(),
            };
            Ok((cards, tx))
        })
        .await
    }
}
