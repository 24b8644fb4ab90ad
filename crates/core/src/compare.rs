//! Stage 4: comparison. Cosine scores, and decisions at a threshold read from the embedder's calibration
//! table for a requested false-match rate (FMR). A score is a similarity, not a probability.

use serde::{Deserialize, Serialize};

use crate::error::PipelineError;

/// Cosine similarity of two unit vectors (their dot product). Extra dimensions of the longer one are ignored.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The false-match rates every calibration table is made at, loosest first: decisions can be asked
/// for anywhere between the last and the first (the API documents the same bounds).
pub const CALIBRATION_FMRS: [f64; 6] = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

/// The target false-match rate of decisions when neither the request nor the collection names one.
pub const DEFAULT_TARGET_FMR: f64 = 1e-3;

/// One row of a calibration table: at `threshold`, impostor pairs scored at or above it with rate `fmr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalibrationPoint {
    /// False-match rate on the calibration set.
    pub fmr: f64,
    /// Cosine threshold achieving it.
    pub threshold: f32,
    /// True-accept rate at that threshold on the calibration set's genuine pairs, when measured.
    #[serde(default)]
    pub tar: Option<f64>,
}

/// A calibration table, sorted by FMR ascending (threshold descending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    points: Vec<CalibrationPoint>,
}

/// The outcome of a 1:1 comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Score at or above the threshold.
    pub same: bool,
    /// Cosine threshold used.
    pub threshold: f32,
    /// The false-match rate the threshold was calibrated for.
    pub target_fmr: f64,
}

impl Calibration {
    /// A table from points in any order; non-finite or out-of-range points are dropped.
    pub fn new(mut points: Vec<CalibrationPoint>) -> Self {
        points.retain(|p| p.fmr > 0.0 && p.fmr <= 1.0 && p.threshold.is_finite());
        points.sort_by(|a, b| a.fmr.total_cmp(&b.fmr));
        Self { points }
    }

    /// The rows, FMR ascending.
    pub fn points(&self) -> &[CalibrationPoint] {
        &self.points
    }

    /// Cosine threshold for a target FMR, interpolated linearly in log10(FMR) between table rows.
    ///
    /// # Errors
    /// [`PipelineError::Uncalibrated`] for an empty table; [`PipelineError::FmrOutOfRange`] outside it.
    pub fn threshold_for(&self, target_fmr: f64) -> Result<f32, PipelineError> {
        let (first, last) = match (self.points.first(), self.points.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(PipelineError::Uncalibrated),
        };
        let out_of_range = || PipelineError::FmrOutOfRange { requested: target_fmr, min: first.fmr, max: last.fmr };
        if !target_fmr.is_finite() || target_fmr < first.fmr * (1.0 - 1e-9) || target_fmr > last.fmr * (1.0 + 1e-9) {
            return Err(out_of_range());
        }
        for pair in self.points.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            if target_fmr <= hi.fmr * (1.0 + 1e-9) {
                let span = hi.fmr.log10() - lo.fmr.log10();
                let t = if span > 0.0 { ((target_fmr.log10() - lo.fmr.log10()) / span).clamp(0.0, 1.0) } else { 0.0 };
                return Ok(lo.threshold + (hi.threshold - lo.threshold) * t as f32);
            }
        }
        Ok(first.threshold)
    }

    /// Decides whether a score means "same person" at the target FMR.
    ///
    /// # Errors
    /// As [`Calibration::threshold_for`].
    pub fn decide(&self, score: f32, target_fmr: f64) -> Result<Decision, PipelineError> {
        let threshold = self.threshold_for(target_fmr)?;
        Ok(Decision { same: score >= threshold, threshold, target_fmr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Calibration {
        Calibration::new(vec![
            CalibrationPoint { fmr: 1e-2, threshold: 0.3, tar: None },
            CalibrationPoint { fmr: 1e-4, threshold: 0.5, tar: None },
            CalibrationPoint { fmr: 1e-3, threshold: 0.4, tar: None },
        ])
    }

    #[test]
    fn exact_rows_and_log_interpolation() {
        let t = table();
        assert!((t.threshold_for(1e-3).expect("in range") - 0.4).abs() < 1e-6);
        let mid = t.threshold_for(10f64.powf(-3.5)).expect("in range");
        assert!((mid - 0.45).abs() < 1e-4, "{mid}");
        assert!(t.decide(0.41, 1e-3).expect("in range").same);
        assert!(!t.decide(0.39, 1e-3).expect("in range").same);
    }

    #[test]
    fn outside_the_table_is_an_error() {
        assert!(matches!(table().threshold_for(1e-6), Err(PipelineError::FmrOutOfRange { .. })));
        assert!(matches!(Calibration::new(vec![]).threshold_for(1e-3), Err(PipelineError::Uncalibrated)));
    }
}
