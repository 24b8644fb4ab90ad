//! Cameras a server watches.

use facegate_store::{Camera, CameraId, CameraStore, NewCamera, RunningCamera};

use super::*;

const CAMERA_COLUMNS: &str = "id, collection_id, name, source, settings, created_at_ms, updated_at_ms";

fn camera_row(row: &Row<'_>) -> rusqlite::Result<Camera> {
    Ok(Camera {
        id: row.get(0)?,
        collection_id: row.get(1)?,
        name: row.get(2)?,
        source: row.get(3)?,
        settings: json_column(row, 4)?,
        created_at_ms: row.get(5)?,
        updated_at_ms: row.get(6)?,
    })
}

fn read_camera(tx: &Transaction<'_>, tenant_id: &TenantId, camera_id: &CameraId) -> StoreResult<Camera> {
    let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE id = ?1 AND tenant_id = ?2");
    tx.query_row(&sql, params![camera_id, tenant_id], camera_row)
        .optional()
        .map_err(map_error)?
        .ok_or(StoreError::NotFound)
}

fn settings_json(new: &NewCamera) -> StoreResult<String> {
    serde_json::to_string(&new.settings).map_err(|e| StoreError::Backend(e.to_string()))
}

#[async_trait]
impl CameraStore for SqliteStore {
    async fn create_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera> {
        let (t, new, audit) = (tenant_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
            ensure_collection(tx, &t, &new.collection_id)?;
            let source =
                new.source.as_ref().ok_or_else(|| StoreError::Backend("a new camera needs a source".into()))?;
            tx.execute(
                "INSERT INTO cameras (id, tenant_id, collection_id, name, source, url_nonce, url_ciphertext, settings, \
                     created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    new.id,
                    t,
                    new.collection_id,
                    new.name,
                    source.display,
                    source.sealed.nonce,
                    source.sealed.ciphertext,
                    settings_json(&new)?,
                    new.at_ms
                ],
            )
            .map_err(map_error)?;
            insert_change(tx, &t, &audit)?;
            read_camera(tx, &t, &new.id)
        })
        .await
    }

    async fn list_cameras(&self, tenant_id: &TenantId) -> StoreResult<Vec<Camera>> {
        let t = tenant_id.clone();
        self.transaction(move |tx| {
            let sql = format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE tenant_id = ?1 ORDER BY created_at_ms, id");
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            collect(statement.query_map(params![t], camera_row).map_err(map_error)?)
        })
        .await
    }

    async fn camera(&self, tenant_id: &TenantId, camera_id: &CameraId) -> StoreResult<Camera> {
        let (t, c) = (tenant_id.clone(), camera_id.clone());
        self.transaction(move |tx| read_camera(tx, &t, &c)).await
    }

    async fn replace_camera(&self, tenant_id: &TenantId, new: &NewCamera, audit: &NewChange) -> StoreResult<Camera> {
        let (t, new, audit) = (tenant_id.clone(), new.clone(), audit.clone());
        self.transaction(move |tx| {
            read_camera(tx, &t, &new.id)?;
            ensure_collection(tx, &t, &new.collection_id)?;
            tx.execute(
                "UPDATE cameras SET collection_id = ?2, name = ?3, settings = ?4, updated_at_ms = ?5 WHERE id = ?1",
                params![new.id, new.collection_id, new.name, settings_json(&new)?, new.at_ms],
            )
            .map_err(map_error)?;
            if let Some(source) = &new.source {
                tx.execute(
                    "UPDATE cameras SET source = ?2, url_nonce = ?3, url_ciphertext = ?4 WHERE id = ?1",
                    params![new.id, source.display, source.sealed.nonce, source.sealed.ciphertext],
                )
                .map_err(map_error)?;
            }
            insert_change(tx, &t, &audit)?;
            read_camera(tx, &t, &new.id)
        })
        .await
    }

    async fn delete_camera(&self, tenant_id: &TenantId, camera_id: &CameraId, audit: &NewChange) -> StoreResult<()> {
        let (t, c, audit) = (tenant_id.clone(), camera_id.clone(), audit.clone());
        self.erasing(move |tx| {
            let deleted =
                tx.execute("DELETE FROM cameras WHERE id = ?1 AND tenant_id = ?2", params![c, t]).map_err(map_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            insert_change(tx, &t, &audit)
        })
        .await
        .map(|((), _)| ())
    }

    async fn running_cameras(&self) -> StoreResult<Vec<RunningCamera>> {
        self.transaction(move |tx| {
            let sql = format!(
                "SELECT {CAMERA_COLUMNS}, tenant_id, url_nonce, url_ciphertext FROM cameras \
                 WHERE json_extract(settings, '$.enabled') ORDER BY created_at_ms, id"
            );
            let mut statement = tx.prepare(&sql).map_err(map_error)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(RunningCamera {
                        camera: camera_row(row)?,
                        tenant_id: row.get(7)?,
                        sealed_url: EncryptedTemplate { nonce: row.get(8)?, ciphertext: row.get(9)? },
                    })
                })
                .map_err(map_error)?;
            collect(rows)
        })
        .await
    }
}
