//! API keys, their one home: made (256-bit random secrets with a recognisable prefix, only their SHA-256
//! stored), listed, revoked (an audited change), looked up by secret, and the tenant lookup-or-create
//! that the command line and a host's bootstrap key need. The API, the CLI and the hosts all use it.

use facegate_store::{ApiKeyRecord, ChangeAction, FaceStore, KeyId, NewChange, Scope, StoreError, Tenant, TenantId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::GalleryError;
use crate::collections::{Actor, Missing};

/// Prefix of every facegate key, so leaked keys are recognisable by secret scanners.
const KEY_PREFIX: &str = "fgk_";

/// A new random API key secret (256 bits, hex) with the facegate prefix.
pub fn new_key_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a key: lowercase hex SHA-256. A fast hash is enough for 256-bit random secrets.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key that cannot be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// No scope.
    #[error("`scopes` must name at least one scope")]
    NoScope,
    /// A key revoking itself would lock its holder out mid-request.
    #[error("a key cannot revoke itself: revoke it with another admin key")]
    SelfRevocation,
    /// A given secret (a bootstrap key) too short to be one.
    #[error("a key secret must be at least 32 characters")]
    ShortSecret,
}

/// The API keys of a store.
pub struct Keys<'a> {
    store: &'a dyn FaceStore,
}

impl<'a> Keys<'a> {
    /// The keys kept in `store`.
    pub fn new(store: &'a dyn FaceStore) -> Self {
        Self { store }
    }

    /// The tenant named `name`, created (at `at_ms`) if new.
    ///
    /// # Errors
    /// Store failures.
    pub async fn tenant(&self, name: &str, at_ms: i64) -> Result<Tenant, GalleryError> {
        if let Some(tenant) = self.store.tenant_by_name(name).await? {
            return Ok(tenant);
        }
        match self.store.create_tenant(name, at_ms).await {
            Ok(tenant) => Ok(tenant),
            // Made meanwhile by another process.
            Err(StoreError::Conflict(_)) => self.store.tenant_by_name(name).await?.ok_or(StoreError::NotFound.into()),
            Err(other) => Err(other.into()),
        }
    }

    /// Makes a key of `actor`'s tenant named `name` with `scopes` (secret given, or generated), recorded as
    /// a change by `actor`; the record and the secret, which only the caller ever sees.
    ///
    /// # Errors
    /// [`GalleryError::Key`] for no scope or a short secret; store failures.
    pub async fn create(
        &self,
        actor: &Actor,
        name: &str,
        scopes: &[Scope],
        secret: Option<String>,
        at_ms: i64,
    ) -> Result<(ApiKeyRecord, String), GalleryError> {
        let mut scopes = scopes.to_vec();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(KeyProblem::NoScope.into());
        }
        if secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(KeyProblem::ShortSecret.into());
        }
        let secret = secret.unwrap_or_else(new_key_secret);
        let record = ApiKeyRecord {
            id: KeyId::random(),
            tenant_id: actor.tenant_id.clone(),
            name: name.to_string(),
            key_hash: hash_key(&secret),
            scopes,
            created_at_ms: at_ms,
            revoked_at_ms: None,
        };
        let details = serde_json::json!({ "name": record.name, "scopes": record.scopes });
        let audit = actor.change(at_ms, ChangeAction::KeyCreated, &record.id, details);
        self.store.insert_api_key(&record, &audit).await?;
        Ok((record, secret))
    }

    /// The keys of `tenant_id` (all tenants' with `None`), revoked ones included, oldest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, tenant_id: Option<&TenantId>) -> Result<Vec<ApiKeyRecord>, GalleryError> {
        let mut keys = self.store.list_api_keys().await?;
        keys.retain(|k| tenant_id.is_none_or(|t| k.tenant_id == *t));
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(keys)
    }

    /// Revokes a key of `actor`'s tenant, as a change by `actor`: it fails every later request.
    ///
    /// # Errors
    /// [`GalleryError::Key`] for the actor's own key; [`GalleryError::NotFound`] for a key of another
    /// tenant, unknown or already revoked.
    pub async fn revoke(&self, actor: &Actor, key_id: &KeyId, at_ms: i64) -> Result<(), GalleryError> {
        if *key_id == actor.key_id {
            return Err(KeyProblem::SelfRevocation.into());
        }
        let owned = self.list(Some(&actor.tenant_id)).await?.into_iter().any(|k| k.id == *key_id);
        let audit = actor.change(at_ms, ChangeAction::KeyRevoked, key_id, serde_json::json!({}));
        if !owned || !self.store.revoke_api_key(key_id, at_ms, &audit).await? {
            return Err(GalleryError::NotFound(Missing::Key));
        }
        Ok(())
    }

    /// Revokes a key of any tenant (the command line, which acts for the operator), as a change by the
    /// actor named `by` recorded in the key's tenant; false if no active key has that id.
    ///
    /// # Errors
    /// Store failures.
    pub async fn revoke_any(&self, key_id: &KeyId, by: &str, at_ms: i64) -> Result<bool, GalleryError> {
        let audit = NewChange::local(by, ChangeAction::KeyRevoked, key_id, serde_json::json!({}), at_ms);
        Ok(self.store.revoke_api_key(key_id, at_ms, &audit).await?)
    }

    /// The key whose secret is `secret`, revoked or not, if any.
    ///
    /// # Errors
    /// Store failures.
    pub async fn by_secret(&self, secret: &str) -> Result<Option<ApiKeyRecord>, GalleryError> {
        self.by_hash(&hash_key(secret)).await
    }

    /// The key whose secret hashes to `key_hash`, revoked or not, if any.
    ///
    /// # Errors
    /// Store failures.
    pub async fn by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, GalleryError> {
        Ok(self.store.api_key_by_hash(key_hash).await?)
    }

    /// The hashes of every active key of every tenant (to tell a valid key from a guess without a
    /// lookup per guess).
    ///
    /// # Errors
    /// Store failures.
    pub async fn active_hashes(&self) -> Result<Vec<String>, GalleryError> {
        let keys = self.store.list_api_keys().await?;
        Ok(keys.into_iter().filter(|k| k.revoked_at_ms.is_none()).map(|k| k.key_hash).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_stored_only_as_hashes() {
        let (a, b) = (new_key_secret(), new_key_secret());
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), a);
    }
}
