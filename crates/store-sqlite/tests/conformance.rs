//! The store conformance suite on a real SQLite file.

use std::sync::Arc;

use facegate_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("gallery.db")).expect("store opens");
    facegate_store_conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_schema_version() {
    use facegate_store::TenantStore;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gallery.db");
    let tenant = SqliteStore::open(&path).expect("first open").create_tenant("persist", 0).await.expect("tenant");
    let reopened = SqliteStore::open(&path).expect("second open");
    assert_eq!(reopened.tenant_by_name("persist").await.expect("lookup"), Some(tenant));
}
