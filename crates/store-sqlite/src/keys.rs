//! Tenants, API keys and wrapped data keys.

use super::*;
use facegate_store::WireName;

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, name: &str, at_ms: i64) -> StoreResult<Tenant> {
        let tenant = Tenant { id: TenantId::random(), name: name.to_string(), created_at_ms: at_ms };
        let stored = tenant.clone();
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at_ms) VALUES (?1, ?2, ?3)",
                params![stored.id, stored.name, stored.created_at_ms],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await?;
        Ok(tenant)
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let name = name.to_string();
        self.transaction(move |tx| {
            tx.query_row("SELECT id, name, created_at_ms FROM tenants WHERE name = ?1", params![name], |r| {
                Ok(Tenant { id: r.get(0)?, name: r.get(1)?, created_at_ms: r.get(2)? })
            })
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &NewChange) -> StoreResult<()> {
        let (key, audit) = (key.clone(), audit.clone());
        self.transaction(move |tx| {
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            tx.execute(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.id,
                    key.tenant_id,
                    key.name,
                    key.key_hash,
                    scopes.join(","),
                    key.created_at_ms,
                    key.revoked_at_ms
                ],
            )
            .map_err(map_error)?;
            insert_change(tx, &key.tenant_id, &audit)
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let key_hash = key_hash.to_string();
        self.transaction(move |tx| {
            tx.query_row(
                "SELECT id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms FROM api_keys WHERE key_hash = ?1",
                params![key_hash],
                key_row,
            )
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.transaction(|tx| {
            let mut statement = tx
                .prepare(
                    "SELECT id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms FROM api_keys \
                     ORDER BY created_at_ms DESC, id",
                )
                .map_err(map_error)?;
            collect(statement.query_map([], key_row).map_err(map_error)?)
        })
        .await
    }

    async fn revoke_api_key(&self, key_id: &KeyId, at_ms: i64, audit: &NewChange) -> StoreResult<bool> {
        let (key_id, audit) = (key_id.clone(), audit.clone());
        self
            .transaction(move |tx| {
                let tenant: Option<TenantId> = tx
                    .query_row(
                        "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL RETURNING tenant_id",
                        params![key_id, at_ms],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(map_error)?;
                match tenant {
                    Some(tenant) => insert_change(tx, &tenant, &audit).map(|()| true),
                    None => Ok(false),
                }
            })
            .await
    }

    async fn data_key(&self, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>> {
        let tenant_id = tenant_id.clone();
        self.transaction(move |tx| read_data_key(tx, &tenant_id)).await
    }

    async fn insert_data_key_if_absent(&self, tenant_id: &TenantId, key: &WrappedKey) -> StoreResult<WrappedKey> {
        let (tenant_id, key) = (tenant_id.clone(), key.clone());
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO data_keys (tenant_id, provider, master_key_id, ciphertext) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant_id) DO NOTHING",
                params![tenant_id, key.provider, key.master_key_id, key.ciphertext],
            )
            .map_err(map_error)?;
            read_data_key(tx, &tenant_id)?.ok_or(StoreError::NotFound)
        })
        .await
    }
}
