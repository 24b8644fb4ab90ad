//! The store conformance suite and the search guarantees on a real PostgreSQL + pgvector server.
//! `scripts/test.sh` starts a throwaway cluster and sets FACEGATE_TEST_POSTGRES_URL.

use std::sync::Arc;

use facegate_store::{GalleryStore, NewFace, NewSubject, TenantStore};
use facegate_store_postgres::{PgConfig, PgStore};

async fn fresh_database() -> String {
    facegate_testing::fresh_postgres_database("facegate_store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let store = PgStore::connect(&fresh_database().await, PgConfig::default()).await.expect("store connects");
    facegate_store_conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_two_instances_share_data() {
    let url = fresh_database().await;
    let first = PgStore::connect(&url, PgConfig::default()).await.expect("first");
    let second = PgStore::connect(&url, PgConfig::default()).await.expect("second, schema already there");
    let tenant = first.create_tenant("shared", 0).await.expect("tenant");
    assert_eq!(second.tenant_by_name("shared").await.expect("lookup"), Some(tenant));
}

fn unit(values: impl Iterator<Item = f32>) -> Vec<f32> {
    let v: Vec<f32> = values.collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// HNSW search (forced by a zero exact-scan limit) agrees with the exact scan on the top face.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_search_matches_exact_search() {
    let url = fresh_database().await;
    let exact = PgStore::connect(&url, PgConfig::default()).await.expect("exact store");
    let hnsw =
        PgStore::connect(&url, PgConfig { exact_scan_max_faces: 0, ..PgConfig::default() }).await.expect("hnsw store");
    let tenant = exact.create_tenant("recall", 0).await.expect("tenant");
    let collection = facegate_store_conformance::create_collection(&exact, &tenant.id, "big", 128).await;
    let vector = |i: usize| unit((0..128).map(|d| ((i * 131 + d * 7) as f32 * 0.618).sin()));
    for batch in 0..20 {
        let subject = exact
            .create_subject(
                &tenant.id,
                &collection.id,
                &NewSubject {
                    name: format!("s{batch}"),
                    metadata: serde_json::json!({}),
                    groups: None,
                    consent: None,
                    created_at_ms: 0,
                },
            )
            .await
            .expect("subject");
        let faces: Vec<NewFace> =
            (0..100).map(|j| facegate_store_conformance::face_searched_by(vector(batch * 100 + j))).collect();
        let audit = facegate_store_conformance::audit(&collection.id, 0);
        exact.add_faces(&tenant.id, &collection.id, &subject.id, &faces, &audit).await.expect("faces");
    }
    let mut agree = 0;
    let queries = 100;
    for q in 0..queries {
        let query = unit(vector(q * 19 + 7).into_iter().enumerate().map(|(d, x)| x + 0.02 * ((q + d) as f32).cos()));
        let a = exact.search_faces(&tenant.id, &collection.id, &query, 5).await.expect("exact");
        let b = hnsw.search_faces(&tenant.id, &collection.id, &query, 5).await.expect("hnsw");
        if a[0].face_id == b[0].face_id {
            agree += 1;
        }
    }
    let recall = f64::from(agree) / queries as f64;
    assert!(recall >= 0.99, "recall@1 of HNSW against exact search: {recall}");
}
