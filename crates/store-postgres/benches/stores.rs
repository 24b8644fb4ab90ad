//! Gallery stores side by side: enrolment throughput, and 1:N search latency (p50/p99) with recall@1
//! against exact search, for PostgreSQL + pgvector (exact scan and HNSW) and the embedded store
//! (SQLite + in-memory exact index). Synthetic clustered 128-d templates (5 faces per subject).
//! Run: `scripts/bench-stores.sh [sizes] [stores]` (starts a throwaway PostgreSQL cluster; stores
//! `postgres,embedded` by default, `embedded` alone for sizes PostgreSQL would take an hour to load).

use std::sync::Arc;
use std::time::Instant;

use facegate_gallery::TemplateIndex;
use facegate_store::{CollectionId, FaceId, FaceStore, GalleryStore, NewFace, NewSubject, SubjectId, TenantId, new_id};
use facegate_store_conformance::synthetic::{around, percentiles, random};
use facegate_store_postgres::{PgConfig, PgStore};
use facegate_store_sqlite::SqliteStore;
use rand::SeedableRng;

const DIM: usize = 128;
const FACES_PER_SUBJECT: usize = 5;
const QUERIES: usize = 200;
const SPREAD: f32 = 0.2;

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
        let centre = random(DIM, rng);
        let faces: Vec<NewFace> = (0..FACES_PER_SUBJECT)
            .map(|_| facegate_store_conformance::face_searched_by(around(&centre, SPREAD, rng)))
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
    let stores = std::env::var("FACEGATE_BENCH_STORES").unwrap_or_else(|_| "postgres,embedded".into());
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
        if stores.contains("postgres") {
            postgres(&url, size, &mut rng).await;
        }
        if stores.contains("embedded") {
            embedded(size, &mut rng).await;
        }
    }
}

/// Genuine probes: new faces near `QUERIES` of the loaded ones.
fn probes(rows: &[(FaceId, SubjectId, Vec<f32>)], rng: &mut rand::rngs::StdRng) -> Vec<Vec<f32>> {
    (0..QUERIES).map(|i| around(&rows[(i * 7919) % rows.len()].2, SPREAD, rng)).collect()
}

/// PostgreSQL + pgvector: exact scan and HNSW with its re-rank, recall@1 against an exact scan.
async fn postgres(url: &str, size: usize, rng: &mut rand::rngs::StdRng) {
    let exact =
        PgStore::connect(url, PgConfig { exact_scan_max_faces: u64::MAX, ..PgConfig::default() }).await.expect("pg");
    let hnsw = PgStore::connect(url, PgConfig { exact_scan_max_faces: 0, ..PgConfig::default() }).await.expect("pg");
    let loaded = load(&exact, size, rng).await;
    let queries = probes(&loaded.rows, rng);
    let index = TemplateIndex::build(0, DIM, loaded.rows.clone()).expect("index");
    let truth: Vec<FaceId> =
        queries.iter().map(|q| index.search_exact(q, 1).expect("search")[0].face_id.clone()).collect();
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
}

/// The embedded store: SQLite for enrolment, the in-memory index for search (exact, or the 8-bit scan
/// with an exact re-rank from its size on), and the time to read every template back, which a rebuild
/// of the index after a change pays (the gallery also opens each sealed template).
async fn embedded(size: usize, rng: &mut rand::rngs::StdRng) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("sqlite"));
    let embedded = load(sqlite.as_ref(), size, rng).await;
    let queries = probes(&embedded.rows, rng);
    let read = Instant::now();
    let (_, stored) = sqlite.collection_templates(&embedded.tenant, &embedded.collection).await.expect("templates");
    let read_ms = read.elapsed().as_secs_f64() * 1e3;
    assert_eq!(stored.len(), embedded.rows.len());
    drop(stored);
    let exact = TemplateIndex::build_with(0, DIM, embedded.rows.clone(), false).expect("index");
    let built = Instant::now();
    let index = TemplateIndex::build(0, DIM, embedded.rows.clone()).expect("index");
    let build_ms = built.elapsed().as_secs_f64() * 1e3;
    let mut hits = 0;
    let times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            let found = index.search(q, 5).expect("search");
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            hits += usize::from(
                found.first().map(|c| &c.face_id)
                    == exact.search_exact(q, 1).expect("exact").first().map(|c| &c.face_id),
            );
            elapsed
        })
        .collect();
    let (p50, p99) = percentiles(times);
    let label = if index.is_quantised() { "embedded / 8-bit + re-rank" } else { "embedded / in-memory exact" };
    println!(
        "{size:>9} {label:<28} {:>12.0} {p50:>9.2} {p99:>9.2} {:>9.3}",
        embedded.faces_per_second,
        hits as f64 / QUERIES as f64
    );
    println!(
        "{size:>9} embedded rebuild: templates read in {read_ms:.0} ms, index built in {build_ms:.0} ms ({:.0} MiB)",
        index.memory_bytes() as f64 / (1024.0 * 1024.0)
    );
}
