//! pgvector HNSW search against exact search on real LFW embeddings: recall@1 ≥ 0.99.

use facegate_store::{GalleryStore, NewSubject, TenantStore};
use facegate_store_postgres::{PgConfig, PgStore};
use facegate_testing::{default_pipeline, fresh_postgres_database, lfw_dir, load_image};

const GALLERY: usize = 700;
const QUERIES: usize = 150;

/// Embeddings of the largest face of LFW images, in a fixed order (people sorted by name).
fn lfw_embeddings(count: usize) -> Vec<(String, Vec<f32>)> {
    let root = lfw_dir().join("lfw-deepfunneled");
    let mut people: Vec<_> = std::fs::read_dir(&root).expect("LFW").filter_map(|e| e.ok().map(|e| e.path())).collect();
    people.sort();
    let mut out = Vec::new();
    for person in people {
        let mut images: Vec<_> =
            std::fs::read_dir(&person).expect("person").filter_map(|e| e.ok().map(|e| e.path())).collect();
        images.sort();
        for image in images {
            let faces = default_pipeline().analyze(&load_image(&image)).expect("analyze");
            if let Some(face) = faces.into_iter().max_by(|a, b| a.face.bbox.area().total_cmp(&b.face.bbox.area())) {
                let name = person.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.push((name, face.embedding.as_slice().to_vec()));
            }
            if out.len() == count {
                return out;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hnsw_recall_on_lfw_embeddings() {
    let embeddings = lfw_embeddings(GALLERY + QUERIES);
    let (gallery, queries) = embeddings.split_at(GALLERY);
    let url = fresh_postgres_database("facegate_recall");
    let exact = PgStore::connect(&url, PgConfig::default()).await.expect("store");
    let hnsw =
        PgStore::connect(&url, PgConfig { exact_scan_max_faces: 0, ..PgConfig::default() }).await.expect("store");
    let tenant = exact.create_tenant("lfw", 0).await.expect("tenant");
    let collection = facegate_store_conformance::create_collection(&exact, &tenant.id, "lfw", 128).await;
    let mut subjects = std::collections::HashMap::new();
    for (person, embedding) in gallery {
        if !subjects.contains_key(person) {
            let new = NewSubject {
                name: person.clone(),
                metadata: serde_json::json!({}),
                groups: None,
                consent: None,
                created_at_ms: 0,
            };
            let subject = exact.create_subject(&tenant.id, &collection.id, &new).await.expect("subject");
            subjects.insert(person.clone(), subject.id);
        }
        let face = facegate_store_conformance::face_searched_by(embedding.clone());
        exact
            .add_faces(
                &tenant.id,
                &collection.id,
                &subjects[person],
                &[face],
                &facegate_store_conformance::audit(&collection.id, 0),
            )
            .await
            .expect("face");
    }
    let mut agree = 0usize;
    for (_, query) in queries {
        let a = exact.search_faces(&tenant.id, &collection.id, query, 1).await.expect("exact");
        let b = hnsw.search_faces(&tenant.id, &collection.id, query, 1).await.expect("hnsw");
        assert!((a[0].score - b[0].score).abs() < 1e-6 || a[0].face_id != b[0].face_id);
        agree += usize::from(a[0].face_id == b[0].face_id);
    }
    let recall = agree as f64 / queries.len() as f64;
    eprintln!("HNSW recall@1 against exact search on {GALLERY} LFW templates, {} queries: {recall:.4}", queries.len());
    assert!(recall >= 0.99, "recall@1 {recall}");
}
