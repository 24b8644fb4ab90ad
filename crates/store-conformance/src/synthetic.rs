//! Synthetic templates and latency summaries shared by the search and store benches.

use rand::Rng;

/// `v` scaled to unit length.
pub fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// A random unit template of `dim` values.
pub fn random(dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    unit((0..dim).map(|_| rng.random::<f32>() - 0.5).collect())
}

/// Another face of the subject whose direction is `centre`: each value moved by up to ±`spread`/2.
pub fn around(centre: &[f32], spread: f32, rng: &mut impl Rng) -> Vec<f32> {
    unit(centre.iter().map(|c| c + spread * (rng.random::<f32>() - 0.5)).collect())
}

/// The p50 and p99 of `ms`.
pub fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.5), at(0.99))
}
