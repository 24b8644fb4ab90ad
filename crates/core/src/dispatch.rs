//! Choosing the embedder's runtime at load: each candidate (OpenVINO, where the settings and the CPU
//! allow it) embeds a test crop, is timed on it and checked against ONNX Runtime's template of it; the
//! fastest that agrees is kept. The choice and its trials are shown by `/v1/models` and `facegate bench`.

use std::time::Instant;

use image::{Rgb, RgbImage};

use crate::embed::{Embedder, EmbedderConfig, Embedding, Mirror};
use crate::error::PipelineError;
use crate::onnx::{Backend, EmbedderRuntime, Precision};

/// Least cosine between a candidate's template of the test crop and ONNX Runtime's for the candidate to
/// be used: a runtime that computes something else scores far lower. OpenVINO fp32 gives 1.0000 here;
/// bf16 kept 0.9996 or more on real LFW crops (the tests hold real faces to 0.999).
pub const DISPATCH_MIN_COSINE: f32 = 0.99;

/// Rounds timed: each round embeds the test crop once on every runtime in turn (interleaved, so a
/// slower or busier moment of the machine falls on all of them alike), after [`WARM_UP_ROUNDS`].
const TIMED_ROUNDS: usize = 9;

/// Rounds run first and not timed (the runtimes allocate their buffers on the first runs).
const WARM_UP_ROUNDS: usize = 3;

/// Why the embedder runs where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// The settings named the runtime.
    Asked,
    /// The fastest of the candidates timed on the test crop whose template agreed.
    Measured,
    /// No other candidate on this machine (see the note).
    OnlyCandidate,
}

/// One candidate timed on the test crop.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RuntimeTrial {
    /// The runtime.
    pub backend: Backend,
    /// Its precision.
    pub precision: Precision,
    /// Median time of one embedding of the test crop, ms.
    pub p50_ms: f64,
    /// Cosine of its template of the test crop with ONNX Runtime's.
    pub cosine: f32,
    /// Whether the template agreed (cosine at least [`DISPATCH_MIN_COSINE`]).
    pub agrees: bool,
}

/// The runtime the embedder runs on, and how it was chosen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RuntimeChoice {
    /// What the settings asked for.
    pub asked: EmbedderRuntime,
    /// The runtime in use.
    pub backend: Backend,
    /// Its precision.
    pub precision: Precision,
    /// How it was chosen.
    pub chosen_by: ChosenBy,
    /// The candidates timed at load, ONNX Runtime first; empty when there was one candidate.
    pub trials: Vec<RuntimeTrial>,
    /// Why OpenVINO was not a candidate, where it was not.
    pub note: Option<String>,
}

impl RuntimeChoice {
    /// ONNX Runtime fp32 without trials: asked for, or the only candidate (`note` says why).
    pub fn onnxruntime(asked: EmbedderRuntime, note: Option<String>) -> Self {
        let chosen_by = if asked == EmbedderRuntime::Onnxruntime { ChosenBy::Asked } else { ChosenBy::OnlyCandidate };
        Self { asked, backend: Backend::Onnxruntime, precision: Precision::F32, chosen_by, trials: Vec::new(), note }
    }

    /// A one-line summary: `openvino bf16 (measured: 3.1 ms against onnxruntime f32 8.4 ms)`.
    pub fn summary(&self) -> String {
        let name = |backend: Backend, precision: Precision| format!("{} {}", backend.as_str(), precision.as_str());
        let trials: Vec<String> = self
            .trials
            .iter()
            .map(|t| {
                let agrees = if t.agrees { "" } else { ", disagrees" };
                format!("{} {:.2} ms (cosine {:.4}{agrees})", name(t.backend, t.precision), t.p50_ms, t.cosine)
            })
            .collect();
        let how = match self.chosen_by {
            ChosenBy::Asked => format!("asked: {}", self.asked),
            ChosenBy::Measured => "measured".into(),
            ChosenBy::OnlyCandidate => "the only candidate".into(),
        };
        let mut line = format!("{} ({how}", name(self.backend, self.precision));
        if !trials.is_empty() {
            line.push_str(&format!("; {}", trials.join(", ")));
        }
        if let Some(note) = &self.note {
            line.push_str(&format!("; {note}"));
        }
        line.push(')');
        line
    }
}

/// A deterministic face-sized test crop: smooth gradients with a few blobs (the runtimes must agree on
/// it, not recognise it).
fn test_crop(side: u32) -> RgbImage {
    let s = side as f32;
    RgbImage::from_fn(side, side, |x, y| {
        let (u, v) = (x as f32 / s, y as f32 / s);
        let blob = |cx: f32, cy: f32, r: f32| (-((u - cx).powi(2) + (v - cy).powi(2)) / (r * r)).exp();
        let shade = 120.0 + 60.0 * (u * 5.0).sin() * (v * 3.0).cos()
            - 70.0 * (blob(0.35, 0.4, 0.06) + blob(0.65, 0.4, 0.06))
            + 40.0 * blob(0.5, 0.6, 0.1)
            - 50.0 * blob(0.5, 0.78, 0.05);
        let channel = |offset: f32| (shade + offset).clamp(0.0, 255.0) as u8;
        Rgb([channel(20.0), channel(0.0), channel(-15.0)])
    })
}

/// Each embedder's template of `crop` and the median time of one embedding, ms, timed in interleaved
/// rounds.
fn timed(embedders: &[&Embedder], crop: &RgbImage) -> Result<Vec<(Embedding, f64)>, PipelineError> {
    let config = EmbedderConfig { mirror: Some(Mirror::Never), normalization: None };
    let mut last: Vec<Option<Embedding>> = vec![None; embedders.len()];
    let mut times = vec![Vec::with_capacity(TIMED_ROUNDS); embedders.len()];
    for round in 0..WARM_UP_ROUNDS + TIMED_ROUNDS {
        for (index, embedder) in embedders.iter().enumerate() {
            let started = Instant::now();
            last[index] = embedder.embed(&[crop], &config)?.pop();
            if round >= WARM_UP_ROUNDS {
                times[index].push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    last.into_iter()
        .zip(times)
        .map(|(embedding, mut times)| {
            times.sort_by(f64::total_cmp);
            let embedding =
                embedding.ok_or_else(|| PipelineError::ModelOutput("no embedding of the test crop".into()))?;
            Ok((embedding, times[times.len() / 2]))
        })
        .collect()
}

/// Times `reference` (the ONNX Runtime embedder) and each candidate on the test crop and checks each
/// candidate's template against the reference's. Asked for by name (`asked` names OpenVINO): the first
/// candidate, which must agree. `auto`: the fastest candidate that agrees, if faster than the reference.
/// Returns the candidate to use instead of the reference (`None`: keep it) and the choice.
///
/// # Errors
/// A run that fails; a candidate asked for by name whose template disagrees ([`PipelineError::Config`]).
pub fn dispatch(
    reference: &Embedder,
    candidates: Vec<Embedder>,
    asked: EmbedderRuntime,
) -> Result<(Option<Embedder>, RuntimeChoice), PipelineError> {
    let crop = test_crop(reference.alignment().size);
    let all: Vec<&Embedder> = std::iter::once(reference).chain(&candidates).collect();
    let mut results = timed(&all, &crop)?.into_iter();
    let (expected, reference_ms) = results.next().ok_or_else(|| PipelineError::Config("nothing timed".into()))?;
    let mut trials = vec![RuntimeTrial {
        backend: Backend::Onnxruntime,
        precision: Precision::F32,
        p50_ms: reference_ms,
        cosine: 1.0,
        agrees: true,
    }];
    let mut best: Option<(usize, f64)> = None;
    for (index, (candidate, (embedding, ms))) in candidates.iter().zip(results).enumerate() {
        let cosine = embedding.cosine(&expected);
        let agrees = cosine >= DISPATCH_MIN_COSINE;
        let (backend, precision) = candidate.runtime();
        trials.push(RuntimeTrial { backend, precision, p50_ms: ms, cosine, agrees });
        if agrees && best.is_none_or(|(_, fastest)| ms < fastest) {
            best = Some((index, ms));
        }
    }
    let chosen = if asked.openvino().is_some() {
        match trials.get(1) {
            Some(trial) if trial.agrees => Some((0, ChosenBy::Asked)),
            Some(trial) => {
                return Err(PipelineError::Config(format!(
                    "OpenVINO's template of the test crop disagrees with ONNX Runtime's (cosine {:.4}, at least {DISPATCH_MIN_COSINE} needed)",
                    trial.cosine
                )));
            }
            None => return Err(PipelineError::Config("OpenVINO was asked for and not loaded".into())),
        }
    } else {
        best.filter(|(_, ms)| *ms < reference_ms).map(|(index, _)| (index, ChosenBy::Measured))
    };
    let (backend, precision, chosen_by) = match chosen {
        Some((index, chosen_by)) => (trials[index + 1].backend, trials[index + 1].precision, chosen_by),
        None => (Backend::Onnxruntime, Precision::F32, ChosenBy::Measured),
    };
    let choice = RuntimeChoice { asked, backend, precision, chosen_by, trials, note: None };
    let embedder = chosen.and_then(|(index, _)| candidates.into_iter().nth(index));
    Ok((embedder, choice))
}
