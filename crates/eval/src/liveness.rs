//! Liveness evaluation on labelled real / spoof frames (`labels.csv`: `path,label,attack_type,source`):
//! APCER per attack type (attacks accepted as live), BPCER (real faces refused), as ISO/IEC 30107-3
//! defines them, at a threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EvalError;

/// One labelled frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LivenessSample {
    /// Image path, relative to the labels' folder.
    pub path: PathBuf,
    /// `real` or `spoof`.
    pub label: String,
    /// `none` for real faces; the attack (presentation attack instrument species) otherwise.
    pub attack_type: String,
    /// Where the frame comes from.
    pub source: String,
}

impl LivenessSample {
    /// A bona fide (real) presentation.
    pub fn is_real(&self) -> bool {
        self.label == "real"
    }
}

/// The samples of `dir/labels.csv`, their paths made absolute.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be read; [`EvalError::Protocol`] for a malformed row.
pub fn read_labels(dir: &Path) -> Result<Vec<LivenessSample>, EvalError> {
    let file = dir.join("labels.csv");
    let mut reader =
        csv::Reader::from_path(&file).map_err(|e| EvalError::Protocol(format!("{}: {e}", file.display())))?;
    let mut samples = Vec::new();
    for row in reader.deserialize() {
        let mut sample: LivenessSample = row.map_err(|e| EvalError::Protocol(format!("{}: {e}", file.display())))?;
        if !matches!(sample.label.as_str(), "real" | "spoof") {
            return Err(EvalError::Protocol(format!("{}: label `{}`", file.display(), sample.label)));
        }
        sample.path = dir.join(&sample.path);
        samples.push(sample);
    }
    Ok(samples)
}

/// Error rates at one threshold. A frame where no face was found counts as refused (not live).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivenessRates {
    /// The threshold: live at or above it.
    pub threshold: f32,
    /// Real frames refused, fraction.
    pub bpcer: f64,
    /// Real frames.
    pub bona_fide: usize,
    /// Per attack type: attacks accepted as live (fraction) and how many frames of it.
    pub apcer: BTreeMap<String, (f64, usize)>,
}

impl LivenessRates {
    /// The rates of `scored` frames (a score, or `None` where no face was found) at `threshold`.
    pub fn at(scored: &[(&LivenessSample, Option<f32>)], threshold: f32) -> Self {
        let live = |score: Option<f32>| score.is_some_and(|s| s >= threshold);
        let real: Vec<bool> = scored.iter().filter(|(s, _)| s.is_real()).map(|(_, score)| live(*score)).collect();
        let mut attacks: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (sample, score) in scored.iter().filter(|(s, _)| !s.is_real()) {
            let entry = attacks.entry(sample.attack_type.clone()).or_default();
            entry.0 += usize::from(live(*score));
            entry.1 += 1;
        }
        let fraction = |part: usize, whole: usize| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
        Self {
            threshold,
            bpcer: fraction(real.iter().filter(|l| !**l).count(), real.len()),
            bona_fide: real.len(),
            apcer: attacks.into_iter().map(|(kind, (accepted, n))| (kind, (fraction(accepted, n), n))).collect(),
        }
    }

    /// The worst attack type's APCER (ISO/IEC 30107-3's "maximum APCER").
    pub fn max_apcer(&self) -> f64 {
        self.apcer.values().map(|(rate, _)| *rate).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_count_each_attack_type_and_refused_real_faces() {
        let sample = |label: &str, attack: &str| LivenessSample {
            path: PathBuf::new(),
            label: label.into(),
            attack_type: attack.into(),
            source: String::new(),
        };
        let (real, print, replay) = (sample("real", "none"), sample("spoof", "print"), sample("spoof", "replay"));
        let scored = [
            (&real, Some(0.9)),
            (&real, Some(0.4)),
            (&real, None),
            (&real, Some(0.8)),
            (&print, Some(0.7)),
            (&print, Some(0.1)),
            (&replay, None),
        ];
        let rates = LivenessRates::at(&scored, 0.5);
        assert_eq!((rates.bpcer, rates.bona_fide), (0.5, 4));
        assert_eq!(rates.apcer["print"], (0.5, 2));
        assert_eq!(rates.apcer["replay"], (0.0, 1));
        assert_eq!(rates.max_apcer(), 0.5);
    }
}
