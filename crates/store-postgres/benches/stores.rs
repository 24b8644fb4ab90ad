//! Gallery stores side by side: enrolment throughput, and 1:N search latency (p50/p99) with recall@1
//! against exact search, for PostgreSQL + pgvector (exact scan and HNSW) and the embedded store
//! (SQLite + in-memory exact index). Synthetic clustered 128-d templates (5 faces per subject).
//! Run: `scripts/bench-stores.sh [sizes]` (starts a throwaway PostgreSQL cluster).

use std::sync::Arc;
use std::time::Instant;

use facegate_gallery::TemplateIndex;
use facegate_store::{CollectionId, FaceId, FaceStore, GalleryStore, NewFace, NewSubject, SubjectId, TenantId, new_id};
use facegate_store_postgres::{PgConfig, PgStore};
use facegate_store_sqlite::SqliteStore;
use rand::{Rng, SeedableRng};

const DIM: usize = 128;
const FACES_PER_SUBJECT: usize = 5;
const QUERIES: usize = 200;
const SPREAD: f32 = 0.2;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn around(centre: &[f32], rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    unit(centre.iter().map(|c| c + SPREAD * (rng.random::<f32>() - 0.5)).collect())
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.5), at(0.99))
}

struct Loaded {
    tenant: TenantId,
    collection: CollectionId,
    rows: Vec<(FaceId, SubjectId, Vec<f32>)>,
    faces_per_second: f64,
}

async fn load(store: &dyn FaceStore, size: usize, rng: &mut rand::rngs::StdRng) -> Loaded {
    let tenant = store.create_tenant(&format!("bench-{}", new_id()), 0).await.expect("tenant").id;
    let collection = facegate_store_conformance::create_collection(store, &tenant, "bench", DIM as u32).await.id;
    let mut rows = Vec::with_capacity(size);
    let started = Instant::now();
    for s in 0..size / FACES_PER_SUBJECT {
        let subject = NewSubject {
            name: format!("s{s}"),
            metadata: serde_json::json!({}),
            groups: None,
            consent: None,
            created_at_ms: 0,
        };
        let subject = store.create_subject(&tenant, &collection, &subject).await.expect("subject").id;
        let centre = unit((0..DIM).map(|_| rng.random::<f32>() - 0.5).collect());
        let faces: Vec<NewFace> = (0..FACES_PER_SUBJECT)
            .map(|_| facegate_store_conformance::face_searched_by(around(&centre, rng)))
            .collect();
        store
            .add_faces(&tenant, &collection, &subject, &faces, &facegate_store_conformance::audit(&collection, 0))
            .await
            .expect("faces");
        rows.extend(faces.into_iter().map(|f| (f.id, subject.clone(), f.template.search_vector)));
    }
    let faces_per_second = rows.len() as f64 / started.elapsed().as_secs_f64();
    Loaded { tenant, collection, rows, faces_per_second }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("FACEGATE_BENCH_POSTGRES_URL")
        .expect("FACEGATE_BENCH_POSTGRES_URL (scripts/bench-stores.sh sets it)");
    let sizes: Vec<usize> = std::env::var("FACEGATE_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    println!(
        "{:>9} {:<28} {:>12} {:>9} {:>9} {:>9}",
        "templates", "store / search", "enrol face/s", "p50 ms", "p99 ms", "recall@1"
    );
    for size in sizes {
        let exact = PgStore::connect(&url, PgConfig { exact_scan_max_faces: u64::MAX, ..PgConfig::default() })
            .await
            .expect("pg");
        let hnsw =
            PgStore::connect(&url, PgConfig { exact_scan_max_faces: 0, ..PgConfig::default() }).await.expect("pg");
        let loaded = load(&exact, size, &mut rng).await;
        let queries: Vec<Vec<f32>> =
            (0..QUERIES).map(|i| around(&loaded.rows[(i * 7919) % loaded.rows.len()].2, &mut rng)).collect();
        let index = TemplateIndex::build(0, DIM, loaded.rows.clone()).expect("index");
        let truth: Vec<FaceId> =
            queries.iter().map(|q| index.search(q, 1).expect("search")[0].face_id.clone()).collect();
        for (label, store) in [("postgres / exact scan", &exact), ("postgres / hnsw + re-rank", &hnsw)] {
            let mut times = Vec::new();
            let mut hits = 0;
            for (query, truth) in queries.iter().zip(&truth) {
                let started = Instant::now();
                let found = store.search_faces(&loaded.tenant, &loaded.collection, query, 40).await.expect("search");
                times.push(started.elapsed().as_secs_f64() * 1e3);
                hits += usize::from(found.first().is_some_and(|f| &f.face_id == truth));
            }
            let (p50, p99) = percentiles(times);
            println!(
                "{size:>9} {label:<28} {:>12.0} {p50:>9.2} {p99:>9.2} {:>9.3}",
                loaded.faces_per_second,
                hits as f64 / QUERIES as f64
            );
        }
        // The embedded store: SQLite for enrolment, the in-memory exact index for search.
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("sqlite"));
        let embedded = load(sqlite.as_ref(), size, &mut rng).await;
        let index = TemplateIndex::build(0, DIM, embedded.rows.clone()).expect("index");
        let times: Vec<f64> = queries
            .iter()
            .map(|q| {
                let started = Instant::now();
                std::hint::black_box(index.search(q, 5).expect("search"));
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let (p50, p99) = percentiles(times);
        println!(
            "{size:>9} {:<28} {:>12.0} {p50:>9.2} {p99:>9.2} {:>9.3}",
            "embedded / in-memory exact", embedded.faces_per_second, 1.0
        );
    }
}
