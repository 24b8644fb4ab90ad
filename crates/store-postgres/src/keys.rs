//! Tenants, API keys and wrapped data keys.

use super::*;
use facegate_store::WireName;

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(&self, name: &str, at_ms: i64) -> StoreResult<Tenant> {
        let tenant = Tenant { id: TenantId::random(), name: name.to_string(), created_at_ms: at_ms };
        let t = &tenant;
        self.transaction(|mut tx| async move {
            sqlx::query("INSERT INTO tenants (id, name, created_at_ms) VALUES ($1, $2, $3)")
                .bind(&t.id)
                .bind(&t.name)
                .bind(t.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            Ok(((), tx))
        })
        .await?;
        Ok(tenant)
    }

    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        self.transaction(|mut tx| async move {
            let row = sqlx::query("SELECT id, name, created_at_ms FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_error)?;
            let tenant = row
                .map(|r| {
                    Ok::<_, sqlx::Error>(Tenant {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        created_at_ms: r.try_get("created_at_ms")?,
                    })
                })
                .transpose()
                .map_err(map_error)?;
            Ok((tenant, tx))
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord, audit: &NewChange) -> StoreResult<()> {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = &scopes.join(",");
        self.transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, scopes, created_at_ms, revoked_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key.id)
            .bind(&key.tenant_id)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(scopes)
            .bind(key.created_at_ms)
            .bind(key.revoked_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            insert_change(&mut tx, &key.tenant_id, audit).await?;
            Ok(((), tx))
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
            let row =
                sqlx::query(AssertSqlSafe(sql)).bind(key_hash).fetch_optional(&mut *tx).await.map_err(map_error)?;
            Ok((row.as_ref().map(key_row).transpose().map_err(map_error)?, tx))
        })
        .await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.transaction(|mut tx| async move {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms DESC, id");
            let found = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await.map_err(map_error)?;
            Ok((rows(found, key_row)?, tx))
        })
        .await
    }

    async fn revoke_api_key(&self, key_id: &KeyId, at_ms: i64, audit: &NewChange) -> StoreResult<bool> {
        self.transaction(|mut tx| async move {
            let tenant: Option<TenantId> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL RETURNING tenant_id",
            )
            .bind(key_id)
            .bind(at_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?;
            let revoked = match tenant {
                Some(tenant) => {
                    insert_change(&mut tx, &tenant, audit).await?;
                    true
                }
                None => false,
            };
            Ok((revoked, tx))
        })
        .await
    }

    async fn data_key(&self, tenant_id: &TenantId) -> StoreResult<Option<WrappedKey>> {
        self.transaction(|mut tx| async move {
            let key = read_data_key(&mut tx, tenant_id).await?;
            Ok((key, tx))
        })
        .await
    }

    async fn insert_data_key_if_absent(&self, tenant_id: &TenantId, key: &WrappedKey) -> StoreResult<WrappedKey> {
        self.transaction(|mut tx| async move {
            sqlx::query(
                "INSERT INTO data_keys (tenant_id, provider, master_key_id, ciphertext) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant_id)
            .bind(&key.provider)
            .bind(&key.master_key_id)
            .bind(&key.ciphertext)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            let stored = read_data_key(&mut tx, tenant_id).await?.ok_or(StoreError::NotFound)?;
            Ok((stored, tx))
        })
        .await
    }
}
