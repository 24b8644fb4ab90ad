//! The calibration table of a pack: for each FMR of [`CALIBRATION_FMRS`], the lowest cosine threshold
//! at which impostor pairs (different people) score at or above it at most that often, and the TAR
//! there, over every pair of a labelled set. Scores are counted in fine bins, so sets of tens of
//! thousands of images (tens of millions of pairs) take one pass and little memory.

use std::sync::atomic::{AtomicUsize, Ordering};

use facegate_core::{CALIBRATION_FMRS, CalibrationPoint, cosine};

/// Bins over the cosine range [-1, 1]: a threshold resolution of 3e-5.
const BINS: usize = 1 << 16;
/// Impostor pairs needed at or above a threshold for its row to be trusted.
pub const MIN_IMPOSTORS_PER_ROW: f64 = 10.0;

/// Genuine and impostor pair scores, counted per bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreHistogram {
    genuine: Vec<u64>,
    impostor: Vec<u64>,
}

impl Default for ScoreHistogram {
    fn default() -> Self {
        Self { genuine: vec![0; BINS], impostor: vec![0; BINS] }
    }
}

fn bin(score: f32) -> usize {
    (((score + 1.0) / 2.0 * BINS as f32) as usize).min(BINS - 1)
}

impl ScoreHistogram {
    /// Counts one pair.
    pub fn add(&mut self, score: f32, same: bool) {
        let counts = if same { &mut self.genuine } else { &mut self.impostor };
        counts[bin(score)] += 1;
    }

    /// Every pair of `embeddings` (unit length, `people[i]` the person of image `i`), scored on `jobs`
    /// threads.
    pub fn of_all_pairs(embeddings: &[&[f32]], people: &[usize], jobs: usize) -> Self {
        let next = AtomicUsize::new(0);
        let parts: Vec<ScoreHistogram> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..jobs.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut part = ScoreHistogram::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(a) = embeddings.get(i) else { return part };
                            for (j, b) in embeddings.iter().enumerate().skip(i + 1) {
                                part.add(cosine(a, b), people[i] == people[j]);
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut total = ScoreHistogram::default();
        for part in parts {
            total.genuine.iter_mut().zip(part.genuine).for_each(|(a, b)| *a += b);
            total.impostor.iter_mut().zip(part.impostor).for_each(|(a, b)| *a += b);
        }
        total
    }

    /// The table: one row per FMR that at least [`MIN_IMPOSTORS_PER_ROW`] impostor pairs resolve.
    pub fn calibration(&self) -> Vec<CalibrationPoint> {
        let total_genuine = self.genuine.iter().sum::<u64>() as f64;
        let total_impostor = self.impostor.iter().sum::<u64>() as f64;
        CALIBRATION_FMRS
            .iter()
            .filter(|&&fmr| fmr * total_impostor >= MIN_IMPOSTORS_PER_ROW)
            .map(|&fmr| {
                // Walk down from the top bin while the impostors at or above stay within the budget.
                let budget = fmr * total_impostor;
                let (mut impostors, mut genuine, mut lowest) = (0u64, 0u64, BINS);
                for b in (0..BINS).rev() {
                    if (impostors + self.impostor[b]) as f64 > budget {
                        break;
                    }
                    impostors += self.impostor[b];
                    genuine += self.genuine[b];
                    lowest = b;
                }
                let threshold = lowest as f32 / BINS as f32 * 2.0 - 1.0;
                CalibrationPoint { fmr, threshold, tar: Some(genuine as f64 / total_genuine.max(1.0)) }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_rise_as_the_fmr_falls_and_unresolved_rows_are_left_out() {
        let mut histogram = ScoreHistogram::default();
        for i in 0..100_000u32 {
            histogram.add(-0.5 + (i as f32 / 100_000.0), false);
        }
        for i in 0..1000u32 {
            histogram.add(0.6 + 0.3 * (i as f32 / 1000.0), true);
        }
        let table = histogram.calibration();
        assert_eq!(table.iter().map(|p| p.fmr).collect::<Vec<_>>(), vec![1e-1, 1e-2, 1e-3, 1e-4]);
        assert!(table.windows(2).all(|w| w[0].threshold <= w[1].threshold));
        assert!((table[0].threshold - 0.4).abs() < 1e-3, "{table:?}");
        assert_eq!(table[0].tar, Some(1.0));
    }

    #[test]
    fn all_pairs_are_counted_once() {
        let (a, b, c) = ([1.0f32, 0.0], [0.0f32, 1.0], [1.0f32, 0.0]);
        let histogram = ScoreHistogram::of_all_pairs(&[&a, &b, &c], &[0, 1, 0], 2);
        assert_eq!(histogram.genuine.iter().sum::<u64>(), 1);
        assert_eq!(histogram.impostor.iter().sum::<u64>(), 2);
    }
}
