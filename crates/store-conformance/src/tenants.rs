//! Tenants, API keys, wrapped data keys.

use super::*;

pub(super) async fn tenants_and_keys(store: &dyn FaceStore) {
    let tenant = store.create_tenant("conformance-keys", 0).await.expect("tenant created");
    assert!(
        matches!(store.create_tenant("conformance-keys", 0).await, Err(StoreError::Conflict(_))),
        "tenant names are unique"
    );
    let found = store.tenant_by_name("conformance-keys").await.expect("lookup").expect("tenant found by name");
    assert_eq!(found, tenant);
    assert!(store.tenant_by_name("nobody").await.expect("lookup").is_none());

    let key = ApiKeyRecord {
        id: KeyId::random(),
        tenant_id: tenant.id.clone(),
        name: "door".into(),
        key_hash: "ab".repeat(32),
        scopes: vec![Scope::Search, Scope::Enroll],
        created_at_ms: 5,
        revoked_at_ms: None,
    };
    store.insert_api_key(&key, &change(ChangeAction::KeyCreated)).await.expect("key stored");
    assert_eq!(store.api_key_by_hash(&key.key_hash).await.expect("lookup"), Some(key.clone()));
    assert!(store.api_key_by_hash(&"cd".repeat(32)).await.expect("lookup").is_none());
    assert!(store.list_api_keys().await.expect("list").iter().any(|k| k.id == key.id));
    assert!(store.revoke_api_key(&key.id, 9, &change(ChangeAction::KeyRevoked)).await.expect("revoke"));
    assert!(
        !store.revoke_api_key(&key.id, 10, &change(ChangeAction::KeyRevoked)).await.expect("revoke again"),
        "revoking twice reports false"
    );
    let revoked = store.api_key_by_hash(&key.key_hash).await.expect("lookup").expect("still there");
    assert_eq!(revoked.revoked_at_ms, Some(9));

    // Each change is in the key's tenant's configuration trail, in order, once; another tenant sees none.
    let trail = store.changes(&tenant.id, None, 100).await.expect("changes");
    let actions: Vec<ChangeAction> = trail.iter().map(|c| c.change.action).collect();
    assert_eq!(
        actions,
        vec![ChangeAction::KeyCreated, ChangeAction::KeyRevoked],
        "a second revocation records nothing"
    );
    assert_eq!(trail[0].change.details, serde_json::json!({ "field": "value" }));
    assert_eq!(trail[0].change.key_id.as_str(), "k");
    assert!(trail[0].seq < trail[1].seq);
    let page = store.changes(&tenant.id, Some(trail[0].seq), 100).await.expect("changes");
    assert_eq!(page.len(), 1, "after the cursor");
    let other = store.create_tenant("conformance-keys-other", 0).await.expect("tenant");
    assert!(store.changes(&other.id, None, 100).await.expect("changes").is_empty());
}

pub(super) async fn data_keys(store: &dyn FaceStore) {
    let tenant = store.create_tenant("conformance-data-keys", 0).await.expect("tenant");
    assert!(store.data_key(&tenant.id).await.expect("lookup").is_none());
    let first = WrappedKey { provider: "local".into(), master_key_id: "m1".into(), ciphertext: vec![1; 60] };
    let second = WrappedKey { ciphertext: vec![2; 60], ..first.clone() };
    assert_eq!(store.insert_data_key_if_absent(&tenant.id, &first).await.expect("insert"), first);
    assert_eq!(
        store.insert_data_key_if_absent(&tenant.id, &second).await.expect("insert"),
        first,
        "the first key wins"
    );
    assert_eq!(store.data_key(&tenant.id).await.expect("lookup"), Some(first));
}
