//! 1:N search latency of the in-memory index (256-d templates, the default pack's length; one thread):
//! the exact scan against the 8-bit scan with its exact re-rank, p50/p99 over 200 queries, recall@1
//! of the 8-bit scan against the exact one, build time, the index's heap memory (templates, 8-bit copy,
//! ids), and the time to follow a change in place (one face added, one removed: beside the base) and
//! to fold the changes into a new base (as many faces added as make it due; a server folds on a blocking
//! thread beside the requests), and search p50 with the most changes kept beside the base (as many as
//! make a fold overdue: changes that came faster than folds landed).
//! Run: `cargo bench -p facegate-gallery --bench search` (sizes: `FACEGATE_BENCH_SIZES=1000,1000000`).
//!
//! Templates are clustered like a gallery's: 5 faces per subject around the subject's own direction;
//! queries are new faces of enrolled subjects, about as close to them as a genuine probe (cosine ~0.5).

use std::time::Instant;

use facegate_gallery::{FOLD_AFTER, FOLD_AT_LEAST, FOLD_OVERDUE, FoldState, TemplateIndex};
use facegate_store::{FaceId, SubjectId};
use facegate_store_conformance::synthetic::{around, percentiles, random};
use rand::SeedableRng;

const DIM: usize = 256;
const QUERIES: usize = 200;
const FACES_PER_SUBJECT: usize = 5;
/// Spread of a subject's faces around its direction, per value (as the store bench's).
const SPREAD: f32 = 0.2;

fn main() {
    let sizes: Vec<usize> = std::env::var("FACEGATE_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    println!("top-5 search, {DIM}-d templates, {FACES_PER_SUBJECT} per subject, genuine probes, one thread");
    println!(
        "{:>9} {:<22} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>14}",
        "templates",
        "scan",
        "p50 ms",
        "p99 ms",
        "recall@1",
        "build ms",
        "index MiB",
        "+face ms",
        "-face ms",
        "fold ms",
        "p50 overdue ms"
    );
    for size in sizes {
        let mut centres = Vec::with_capacity(size / FACES_PER_SUBJECT);
        let rows: Vec<(FaceId, SubjectId, Vec<f32>)> = (0..size)
            .map(|i| {
                if i % FACES_PER_SUBJECT == 0 {
                    centres.push(random(DIM, &mut rng));
                }
                let face = around(&centres[i / FACES_PER_SUBJECT], SPREAD, &mut rng);
                (format!("f{i}").into(), format!("s{}", i / FACES_PER_SUBJECT).into(), face)
            })
            .collect();
        let queries: Vec<Vec<f32>> =
            (0..QUERIES).map(|i| around(&centres[(i * 7919) % centres.len()], SPREAD, &mut rng)).collect();
        let mut truth = Vec::new();
        for quantised in [false, true] {
            let built = Instant::now();
            let index = TemplateIndex::build_with(1, DIM, rows.clone(), quantised).expect("index");
            let build_ms = built.elapsed().as_secs_f64() * 1e3;
            let index_mib = index.memory_bytes() as f64 / (1024.0 * 1024.0);
            let mut hits = 0;
            let mut times = Vec::with_capacity(QUERIES);
            for (n, query) in queries.iter().enumerate() {
                let started = Instant::now();
                let found = index.search(query, 5).expect("search");
                times.push(started.elapsed().as_secs_f64() * 1e3);
                let top = found.first().map(|c| c.subject_id.clone());
                if quantised {
                    hits += usize::from(top == truth[n]);
                } else {
                    truth.push(top);
                }
            }
            let (p50, p99) = percentiles(times);
            let (label, recall) = if quantised {
                ("8-bit scan + re-rank", format!("{:.3}", hits as f64 / QUERIES as f64))
            } else {
                ("exact", "1.000".into())
            };
            // Changes followed in place: one face added, one of the base's removed (beside the base),
            // then as many faces added as make a fold due, folded into a new base (a copy of the rows).
            let started = Instant::now();
            let added = index.with_faces(2, &"s0".into(), vec![("new".into(), queries[0].clone())]).expect("added");
            let add_ms = started.elapsed().as_secs_f64() * 1e3;
            let started = Instant::now();
            let removed = added.without_faces(3, |face, _| face.as_str() == "f1");
            let remove_ms = started.elapsed().as_secs_f64() * 1e3;
            assert_eq!(removed.len(), index.len());
            let fold = (size / FOLD_AFTER).max(FOLD_AT_LEAST) + 1;
            let overdue = (fold - 1) * FOLD_OVERDUE;
            let faces: Vec<(FaceId, Vec<f32>)> =
                (0..overdue).map(|i| (format!("n{i}").into(), queries[0].clone())).collect();
            // Searches with the most faces beside the base the exact scan of the changes covers.
            let beside = index.with_faces(4, &"s0".into(), faces.clone()).expect("beside");
            assert_eq!(beside.fold_state(), FoldState::Due);
            let times = queries.iter().map(|query| {
                let started = Instant::now();
                beside.search(query, 5).expect("search");
                started.elapsed().as_secs_f64() * 1e3
            });
            let (beside_p50, _) = percentiles(times.collect());
            drop(beside);
            let due = index.with_faces(4, &"s0".into(), faces[..fold].to_vec()).expect("due");
            assert_eq!(due.fold_state(), FoldState::Due);
            let started = Instant::now();
            let folded = due.folded();
            let fold_ms = started.elapsed().as_secs_f64() * 1e3;
            assert_eq!(folded.len(), index.len() + fold);
            println!(
                "{size:>9} {label:<22} {p50:>9.3} {p99:>9.3} {recall:>9} {build_ms:>10.1} {index_mib:>9.0} {add_ms:>9.2} {remove_ms:>9.2} {fold_ms:>9.1} {beside_p50:>14.3}"
            );
        }
    }
}
