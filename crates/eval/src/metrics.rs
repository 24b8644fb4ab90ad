//! Verification metrics over scored pairs: accuracy with a cross-validated threshold, TAR at a fixed
//! FAR, the ROC curve and the equal error rate. Used by `facegate eval` and by training reports.

/// Folds of the standard protocol (LFW's 10 × 600 pairs).
pub const VERIFICATION_FOLDS: usize = 10;

/// Best threshold on `train` (maximising accuracy), as the midpoint between neighbouring scores.
pub fn best_threshold(train: &[(f32, bool)]) -> f32 {
    let mut sorted: Vec<(f32, bool)> = train.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold below everything: all accepted, correct = number of genuine pairs.
    let mut correct = sorted.iter().filter(|s| s.1).count() as i64;
    let mut best = (correct, sorted.first().map_or(0.0, |s| s.0 - 1e-4));
    for (i, (score, same)) in sorted.iter().enumerate() {
        correct += if *same { -1 } else { 1 };
        let next = sorted.get(i + 1).map_or(score + 1e-4, |s| s.0);
        if correct > best.0 && next > *score {
            best = (correct, (score + next) / 2.0);
        }
    }
    best.1
}

/// What scored pairs `(fold, score, same)` say of a verification: its 10-fold accuracy, its TAR at the
/// two FARs reported, its ROC and EER.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSummary {
    /// Accuracy and threshold of each fold ([`ten_fold_accuracy`]).
    pub folds: Vec<(f64, f32)>,
    /// Mean accuracy over the folds.
    pub accuracy_mean: f64,
    /// Its standard deviation over the folds.
    pub accuracy_std: f64,
    /// TAR at FAR 1e-3.
    pub tar_1e3: f64,
    /// TAR at FAR 1e-4.
    pub tar_1e4: f64,
    /// The ROC curve ([`roc_curve`]).
    pub roc: Vec<(f64, f64)>,
    /// Its equal error rate.
    pub eer: f64,
}

impl PairSummary {
    /// The summary of scored pairs `(fold, score, same)`.
    pub fn of(scored: &[(usize, f32, bool)]) -> Self {
        let folds = ten_fold_accuracy(scored);
        let count = folds.len().max(1) as f64;
        let accuracy_mean = folds.iter().map(|f| f.0).sum::<f64>() / count;
        let accuracy_std = (folds.iter().map(|f| (f.0 - accuracy_mean).powi(2)).sum::<f64>() / count).sqrt();
        let genuine: Vec<f32> = scored.iter().filter(|s| s.2).map(|s| s.1).collect();
        let impostor: Vec<f32> = scored.iter().filter(|s| !s.2).map(|s| s.1).collect();
        let roc = roc_curve(&genuine, &impostor);
        Self {
            accuracy_mean,
            accuracy_std,
            tar_1e3: tar_at_far(&genuine, &impostor, 1e-3),
            tar_1e4: tar_at_far(&genuine, &impostor, 1e-4),
            eer: equal_error_rate(&roc),
            roc,
            folds,
        }
    }
}

/// Accuracy and threshold of each fold `(fold, score, same)`, the threshold chosen on the other folds.
pub fn ten_fold_accuracy(scored: &[(usize, f32, bool)]) -> Vec<(f64, f32)> {
    (0..VERIFICATION_FOLDS)
        .filter(|fold| scored.iter().any(|s| s.0 == *fold))
        .map(|fold| {
            let train: Vec<(f32, bool)> = scored.iter().filter(|s| s.0 != fold).map(|s| (s.1, s.2)).collect();
            let threshold = best_threshold(&train);
            let test: Vec<_> = scored.iter().filter(|s| s.0 == fold).collect();
            let correct = test.iter().filter(|s| (s.1 >= threshold) == s.2).count();
            (correct as f64 / test.len() as f64, threshold)
        })
        .collect()
}

/// Fraction of genuine pairs accepted at the strictest threshold that still keeps the impostor
/// acceptance at or below `far` (accept = score strictly above the k-th highest impostor score).
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> f64 {
    let mut sorted = impostor.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * sorted.len() as f64).floor() as usize;
    let Some(threshold) = sorted.get(allowed) else {
        return 1.0;
    };
    genuine.iter().filter(|g| *g > threshold).count() as f64 / genuine.len().max(1) as f64
}

/// `(far, tar)` at every distinct score, strictest first.
pub fn roc_curve(genuine: &[f32], impostor: &[f32]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f32, bool)> =
        genuine.iter().map(|g| (*g, true)).chain(impostor.iter().map(|i| (*i, false))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (ng, ni) = (genuine.len().max(1) as f64, impostor.len().max(1) as f64);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve = vec![(0.0, 0.0)];
    for (i, (score, same)) in all.iter().enumerate() {
        if *same {
            tp += 1
        } else {
            fp += 1
        }
        if all.get(i + 1).is_none_or(|next| next.0 < *score) {
            curve.push((fp as f64 / ni, tp as f64 / ng));
        }
    }
    curve
}

/// The rate where false accepts equal false rejects, interpolated on the ROC.
pub fn equal_error_rate(roc: &[(f64, f64)]) -> f64 {
    for pair in roc.windows(2) {
        let ((f0, t0), (f1, t1)) = (pair[0], pair[1]);
        let (d0, d1) = (f0 - (1.0 - t0), f1 - (1.0 - t1));
        if d0 <= 0.0 && d1 >= 0.0 {
            let t = if d1 - d0 > 0.0 { -d0 / (d1 - d0) } else { 0.0 };
            return f0 + (f1 - f0) * t;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_separates_separable_scores() {
        let train = [(0.1, false), (0.2, false), (0.6, true), (0.7, true)];
        let t = best_threshold(&train);
        assert!(t > 0.2 && t < 0.6, "{t}");
    }

    #[test]
    fn tar_at_far_and_eer() {
        let genuine = [0.9, 0.8, 0.7, 0.3];
        let impostor = [0.1, 0.2, 0.35, 0.75];
        assert_eq!(tar_at_far(&genuine, &impostor, 0.0), 0.5);
        assert_eq!(tar_at_far(&genuine, &impostor, 0.25), 0.75);
        let eer = equal_error_rate(&roc_curve(&genuine, &impostor));
        assert!((eer - 0.25).abs() < 1e-9, "{eer}");
    }
}
