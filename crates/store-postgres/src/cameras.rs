//! Cameras a server watches.

use facegate_store::{Camera, CameraId, CameraStore, NewCamera, RunningCamera};

use super::*;

const CAMERA_COLUMNS: &str = "id, collection_id, name, source, settings, created_at_ms, updated_at_ms";

fn camera_row(row: &PgRow) -> Result<Camera, sqlx::Error> {
    Ok(Camera {
        id: row.try_get("id")?,
        collection_id: row.try_get("collection_id")?,
        name: row.try_get("name")?,
        source: row.try_get("source")?,
        settings: json_column(row, "settings")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

fn running_row(row: &PgRow) -> Result<RunningCamera, sqlx::Error> {
    Ok(RunningCamera {
        camera: camera_row(row)?,
        tenant_id: row.try_get("tenant_id")?,
        sealed_url: EncryptedTemplate { nonce: row.try_get("url_nonce")?, ciphertext: row.try_get("url_ciphertext")? },
    })
}

async fn read_camera(tx: &mut Tx, tenant_id: &TenantId, camera_id: &CameraId) -> StoreResult<Camera> {
    let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE id = $1 AND tenant_id = $2");
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(camera_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)?
        .ok_or(StoreError::NotFound)?;
    camera_row(&found).map_err(map_error)
}

fn settings_json(new: &NewCamera) -> StoreResult<String> {
    serde_json::to_string(&new.settings).map_err(|e| StoreError::Backend(format!("camera settings: {e}")))
}

#[async_trait]
impl CameraStore for PgStore {
    async fn create_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera> {
        let source = new.source.as_ref().ok_or_else(|| StoreError::Backend("a new camera needs a source".into()))?;
        let settings = &settings_json(new)?;
        self.transaction(|mut tx| async move {
            ensure_collection(&mut tx, tenant_id, &new.collection_id).await?;
            sqlx::query(
                "INSERT INTO cameras (id, tenant_id, collection_id, name, source, url_nonce, url_ciphertext, settings, \
                     created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(&new.id)
            .bind(tenant_id)
            .bind(&new.collection_id)
            .bind(&new.name)
            .bind(&source.display)
            .bind(&source.sealed.nonce)
            .bind(&source.sealed.ciphertext)
            .bind(settings)
            .bind(new.at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_change(&mut tx, tenant_id, audit).await?;
            let camera = read_camera(&mut tx, tenant_id, &new.id).await?;
            Ok((camera, tx))
        })
        .await
    }

    async fn list_cameras(&self, tenant_id: &TenantId) -> StoreResult<Vec<Camera>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE tenant_id = $1 ORDER BY created_at_ms, id");
            let found = sqlx::query(AssertSqlSafe(sql)).bind(tenant_id).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, camera_row)?, tx))
        })
        .await
    }

    async fn camera(&self, tenant_id: &TenantId, camera_id: &CameraId) -> StoreResult<Camera> {
        self.transaction(|mut tx| async move {
            let camera = read_camera(&mut tx, tenant_id, camera_id).await?;
            Ok((camera, tx))
        })
        .await
    }

    async fn replace_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera> {
        let settings = &settings_json(new)?;
        self.transaction(|mut tx| async move {
            read_camera(&mut tx, tenant_id, &new.id).await?;
            ensure_collection(&mut tx, tenant_id, &new.collection_id).await?;
            sqlx::query(
                "UPDATE cameras SET collection_id = $2, name = $3, settings = $4, updated_at_ms = $5 WHERE id = $1",
            )
            .bind(&new.id)
            .bind(&new.collection_id)
            .bind(&new.name)
            .bind(settings)
            .bind(new.at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            if let Some(source) = &new.source {
                sqlx::query("UPDATE cameras SET source = $2, url_nonce = $3, url_ciphertext = $4 WHERE id = $1")
                    .bind(&new.id)
                    .bind(&source.display)
                    .bind(&source.sealed.nonce)
                    .bind(&source.sealed.ciphertext)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_error)?;
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            let camera = read_camera(&mut tx, tenant_id, &new.id).await?;
            Ok((camera, tx))
        })
        .await
    }

    async fn delete_camera(&self, tenant_id: &TenantId, camera_id: &CameraId, audit: &NewChange) -> StoreResult<()> {
        self.erasing(|mut tx| async move {
            let done = sqlx::query("DELETE FROM cameras WHERE id = $1 AND tenant_id = $2")
                .bind(camera_id)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_change(&mut tx, tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn running_cameras(&self) -> StoreResult<Vec<RunningCamera>> {
        self.transaction(|mut tx| async move {
            let sql = format!(
                "SELECT {CAMERA_COLUMNS}, tenant_id, url_nonce, url_ciphertext FROM cameras \
                 WHERE (settings::jsonb ->> 'enabled')::boolean ORDER BY created_at_ms, id"
            );
            let found = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, running_row)?, tx))
        })
        .await
    }
}
