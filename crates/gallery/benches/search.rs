//! Exact search latency over 1k, 10k and 100k templates (128-d, one thread), p50/p99 over 200 queries.
//! Run: `cargo bench -p facegate-gallery --bench search`.

use std::time::Instant;

use facegate_gallery::TemplateIndex;
use facegate_store::{FaceId, SubjectId};
use rand::{Rng, SeedableRng};

const DIM: usize = 128;
const QUERIES: usize = 200;
const FACES_PER_SUBJECT: usize = 5;

fn unit(rng: &mut rand::rngs::StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    println!("exact top-5 search, {DIM}-d templates, {FACES_PER_SUBJECT} per subject, one thread");
    println!("{:>10} {:>10} {:>10} {:>12}", "templates", "p50 ms", "p99 ms", "build ms");
    for size in [1_000usize, 10_000, 100_000] {
        let rows: Vec<(FaceId, SubjectId, Vec<f32>)> = (0..size)
            .map(|i| (format!("f{i}").into(), format!("s{}", i / FACES_PER_SUBJECT).into(), unit(&mut rng)))
            .collect();
        let built = Instant::now();
        let index = TemplateIndex::build(1, DIM, rows).expect("index");
        let build_ms = built.elapsed().as_secs_f64() * 1e3;
        let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| unit(&mut rng)).collect();
        let mut samples: Vec<f64> = queries
            .iter()
            .map(|q| {
                let started = Instant::now();
                let hits = index.search(q, 5).expect("search");
                std::hint::black_box(hits);
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
        println!("{size:>10} {:>10.3} {:>10.3} {build_ms:>12.1}", at(0.5), at(0.99));
    }
}
