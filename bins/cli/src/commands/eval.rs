//! `facegate eval lfw`: the standard LFW verification protocol (10 folds of 300 matched + 300 mismatched
//! pairs, each fold's threshold chosen on the other nine), TAR at fixed FAR, EER, a JSON report and a
//! ROC plot; with `--calibrate`, the threshold-against-FMR table over all different-person pairs of LFW.
//! The protocol, the metrics, the calibration and the subject's face are `facegate-eval`'s; this command
//! embeds, prints and plots.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use facegate_core::{EmbedderConfig, Embedding, Mirror, Pipeline, PipelineConfig};
use facegate_eval::calibration::ScoreHistogram;
use facegate_eval::lfw::Lfw;
use facegate_eval::liveness::{LivenessRates, LivenessSample, read_labels};
use facegate_eval::metrics::PairSummary;
use facegate_eval::subject::{FaceSource, subject_template};
use facegate_eval::work::{lost_worker, parallel_map};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde_json::json;

use crate::args::{LfwArgs, LivenessArgs};
use crate::context::{Context, read_image};

pub fn lfw(context: &Context, args: &LfwArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let lfw = Lfw::open(&args.dir)?;
    let pairs = lfw.pairs(args.limit)?;
    let mut images: BTreeSet<PathBuf> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    if args.calibrate {
        images.extend(lfw.all_images()?.into_iter().map(|(path, _)| path));
    }
    let images: Vec<PathBuf> = images.into_iter().collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut config = context.pipeline_config(1);
    // The policy in force (the flag's, else the pack's), and the pack's calibration.
    let loaded = context.load_with(&context.args.pack, config)?;
    config.embedder.mirror = loaded.config().embedder.mirror;
    let calibration = loaded.calibration().clone();
    drop(loaded);
    let embedded = embed_all(context, &images, jobs, config)?;
    // A policy that leaves some faces unmirrored meets galleries enrolled with the mirror (kept
    // templates always have it): score that too, each pair's first image as the enrolled one.
    let mixed = if config.embedder.mirror_policy() == Mirror::Always || args.calibrate {
        None
    } else {
        let enrolled = EmbedderConfig { mirror: Some(Mirror::Always), ..config.embedder };
        Some(embed_all(context, &images, jobs, PipelineConfig { embedder: enrolled, ..config })?)
    };

    let mut scored = Vec::with_capacity(pairs.len());
    for pair in &pairs {
        let (a, b) = (&embedded[&pair.a].0, &embedded[&pair.b].0);
        scored.push((pair.fold, a.cosine(b), pair.same));
    }
    let PairSummary { folds, accuracy_mean: mean, accuracy_std: std, tar_1e3, tar_1e4, roc, eer } =
        PairSummary::of(&scored);
    let mut sources: BTreeMap<FaceSource, usize> = BTreeMap::new();
    for (_, source) in embedded.values() {
        *sources.entry(*source).or_default() += 1;
    }

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut report = json!({
        "benchmark": "lfw",
        "pack": context.args.pack,
        "pairs": pairs.len(),
        "images": embedded.len(),
        "config": {
            "mirror": config.embedder.mirror_policy(),
            "align": format!("{:?}", config.align),
            "normalization": format!("{:?}", context.args.norm),
            "score_threshold": config.detector.score_threshold,
            "max_side": config.detector.max_side,
        },
        "accuracy_mean": mean,
        "accuracy_std": std,
        "folds": folds.iter().map(|(acc, t)| json!({"accuracy": acc, "threshold": t})).collect::<Vec<_>>(),
        "tar_at_far_1e-3": tar_1e3,
        "tar_at_far_1e-4": tar_1e4,
        "eer": eer,
        "face_sources": sources,
        "seconds": 0.0,
    });
    println!("LFW {} pairs, {} images, pack `{}`", pairs.len(), embedded.len(), context.args.pack);
    println!("  10-fold accuracy  {:.2} ± {:.2} %", mean * 100.0, std * 100.0);
    println!("  TAR @ FAR 1e-3    {:.2} %", tar_1e3 * 100.0);
    println!("  TAR @ FAR 1e-4    {:.2} %", tar_1e4 * 100.0);
    println!("  EER               {:.2} %", eer * 100.0);
    println!(
        "  faces: {} detected, {} after a low-threshold retry, {} not found (centre crop used)",
        sources.get(&FaceSource::Detected).unwrap_or(&0),
        sources.get(&FaceSource::LowThresholdRetry).unwrap_or(&0),
        sources.get(&FaceSource::CentreCrop).unwrap_or(&0)
    );
    if let Some(enrolled) = &mixed {
        let scored: Vec<(usize, f32, bool)> =
            pairs.iter().map(|p| (p.fold, enrolled[&p.a].0.cosine(&embedded[&p.b].0), p.same)).collect();
        let summary = PairSummary::of(&scored);
        let mirrored = embedded.values().zip(enrolled.values()).filter(|(a, b)| a.0.cosine(&b.0) > 0.999_99).count();
        println!("  against a gallery enrolled with the mirror (each pair's first image):");
        println!(
            "    10-fold accuracy  {:.2} %, TAR @ FAR 1e-3 {:.2} %, EER {:.2} %",
            summary.accuracy_mean * 100.0,
            summary.tar_1e3 * 100.0,
            summary.eer * 100.0
        );
        println!("    {mirrored} of {} probes were mirrored (hard faces)", embedded.len());
        let rates = false_matches(enrolled, &embedded, &calibration);
        for (fmr, threshold, always, policy) in &rates {
            println!(
                "    at the pack's FMR {fmr:.0e} threshold {threshold:.4}: FMR {always:.2e} mirrored on both sides, \
                 {policy:.2e} with these probes"
            );
        }
        report["against_mirrored_gallery"] = json!({
            "accuracy_mean": summary.accuracy_mean,
            "tar_at_far_1e-3": summary.tar_1e3,
            "eer": summary.eer,
            "probes_mirrored": mirrored,
            "false_match_rates": rates.iter().map(|(fmr, threshold, always, policy)| json!({
                "target_fmr": fmr, "threshold": threshold, "mirrored_both": always, "these_probes": policy,
            })).collect::<Vec<_>>(),
        });
    }
    if args.calibrate {
        let table = calibrate(&images, &embedded, jobs);
        println!("  calibration over all different-person pairs of LFW:");
        for point in &table {
            println!(
                "    FMR {:.0e}: threshold {:.4}, TAR {:.4}",
                point.fmr,
                point.threshold,
                point.tar.unwrap_or(0.0)
            );
        }
        report["calibration"] = serde_json::to_value(&table)?;
    }
    plot_roc(&roc, &args.out.join("roc.svg"), mean)?;
    report["seconds"] = json!(started.elapsed().as_secs_f64());
    let report_path = args.out.join("report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", report_path.display()))?;
    println!("  report: {}, ROC: {}", report_path.display(), args.out.join("roc.svg").display());
    println!("  {:.0} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Embeds the subject's face of each image with `jobs` workers, each holding its own sessions.
fn embed_all(
    context: &Context,
    images: &[PathBuf],
    jobs: usize,
    config: PipelineConfig,
) -> Result<BTreeMap<PathBuf, (Embedding, FaceSource)>> {
    let progress = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message("embedding");
    let pipelines: Vec<Pipeline> =
        (0..jobs.max(1)).map(|_| context.load_with(&context.args.pack, config)).collect::<Result<_>>()?;
    let embedded = parallel_map(
        images,
        &pipelines,
        |pipeline, path| {
            let found = subject_template(pipeline, &read_image(path)?).with_context(|| path.display().to_string());
            progress.inc(1);
            found
        },
        || anyhow::Error::from(lost_worker()),
    )?;
    progress.finish_and_clear();
    Ok(images.iter().cloned().zip(embedded).collect())
}

/// The false-match rate at each calibrated threshold of the pack (1e-3 and 1e-4) over every pair of the
/// images of two different people: with both sides enrolled with the mirror, and with one side a probe
/// of `probes` (the calibration's own thresholds meet the probes a policy makes).
fn false_matches(
    enrolled: &BTreeMap<PathBuf, (Embedding, FaceSource)>,
    probes: &BTreeMap<PathBuf, (Embedding, FaceSource)>,
    calibration: &facegate_core::Calibration,
) -> Vec<(f64, f32, f64, f64)> {
    let person = |p: &Path| p.parent().map(Path::to_path_buf);
    let items: Vec<(Option<PathBuf>, &Embedding, &Embedding)> =
        enrolled.iter().map(|(path, (e, _))| (person(path), e, &probes[path].0)).collect();
    let targets: Vec<(f64, f32)> =
        [1e-3, 1e-4].into_iter().filter_map(|fmr| calibration.threshold_for(fmr).ok().map(|t| (fmr, t))).collect();
    let (mut pairs, mut above_both, mut above_probe) = (0u64, vec![0u64; targets.len()], vec![0u64; targets.len()]);
    for (i, (who, enrolled_i, _)) in items.iter().enumerate() {
        for (other, enrolled_j, probe_j) in &items[i + 1..] {
            if who == other {
                continue;
            }
            pairs += 1;
            let (both, probe) = (enrolled_i.cosine(enrolled_j), enrolled_i.cosine(probe_j));
            for (k, (_, threshold)) in targets.iter().enumerate() {
                above_both[k] += u64::from(both >= *threshold);
                above_probe[k] += u64::from(probe >= *threshold);
            }
        }
    }
    let rate = |n: u64| n as f64 / pairs.max(1) as f64;
    targets.iter().enumerate().map(|(k, (fmr, t))| (*fmr, *t, rate(above_both[k]), rate(above_probe[k]))).collect()
}

/// Threshold against FMR over every pair of LFW images of different people (about 87 million pairs
/// for the full set), with the TAR over every same-person pair at each threshold.
fn calibrate(
    images: &[PathBuf],
    embedded: &BTreeMap<PathBuf, (Embedding, FaceSource)>,
    jobs: usize,
) -> Vec<facegate_core::CalibrationPoint> {
    let mut names: BTreeMap<&std::ffi::OsStr, usize> = BTreeMap::new();
    let people: Vec<usize> = images
        .iter()
        .map(|p| {
            let next = names.len();
            *names.entry(p.parent().and_then(Path::file_name).unwrap_or_default()).or_insert(next)
        })
        .collect();
    let templates: Vec<&[f32]> = images.iter().map(|p| embedded[p].0.as_slice()).collect();
    ScoreHistogram::of_all_pairs(&templates, &people, jobs).calibration()
}

fn plot_roc(roc: &[(f64, f64)], path: &Path, accuracy: f64) -> Result<()> {
    let min_far = roc.iter().map(|p| p.0).filter(|f| *f > 0.0).fold(1.0f64, f64::min).max(1e-5);
    let points: Vec<(f64, f64)> = roc.iter().filter(|p| p.0 >= min_far).copied().collect();
    let min_tar = points.iter().map(|p| p.1).fold(1.0f64, f64::min);
    let y_floor = ((min_tar * 20.0).floor() / 20.0).min(0.9);
    let root = SVGBackend::new(path, (720, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let caption = format!("LFW ROC (10-fold accuracy {:.2} %)", accuracy * 100.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((min_far..1.0).log_scale(), y_floor..1.0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("false accept rate (log)")
        .y_desc("true accept rate")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2))).map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// `facegate eval liveness`: every labelled frame's largest face scored by the pack's liveness models,
/// APCER per attack type and BPCER at the threshold, a sweep of thresholds, the stage's latency.
pub fn liveness(context: &Context, args: &LivenessArgs) -> Result<ExitCode> {
    let samples = read_labels(&args.dir)?;
    let pipeline = context.pipeline()?;
    let spec = pipeline.liveness_spec().context("the pack has no liveness models")?.clone();
    let threshold = args.threshold.unwrap_or(spec.threshold);
    let mut latencies = Vec::with_capacity(samples.len());
    let mut scored: Vec<(&LivenessSample, Option<f32>)> = Vec::with_capacity(samples.len());
    for sample in &samples {
        let image = read_image(&sample.path)?;
        let score = match facegate_core::largest_face(pipeline.detect(&image)?) {
            Some(face) => {
                let started = Instant::now();
                let liveness = pipeline.liveness(&image, &face)?;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                Some(liveness.score)
            }
            None => None,
        };
        scored.push((sample, score));
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    let rates = LivenessRates::at(&scored, threshold);
    let no_face = scored.iter().filter(|(_, s)| s.is_none()).count();
    println!(
        "liveness pack `{}` on {} frames ({} without a face), threshold {threshold}",
        spec.name,
        samples.len(),
        no_face
    );
    println!("  BPCER (real refused)   {:6.2} %  of {}", rates.bpcer * 100.0, rates.bona_fide);
    for (attack, (apcer, n)) in &rates.apcer {
        println!("  APCER {attack:<32} {:6.2} %  of {n}", apcer * 100.0);
    }
    println!("  latency of the stage per face, one thread: {p50:.2} ms (p50)");
    let sweep: Vec<LivenessRates> =
        [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9].iter().map(|t| LivenessRates::at(&scored, *t)).collect();
    println!(
        "  threshold sweep (BPCER / max APCER): {}",
        sweep
            .iter()
            .map(|r| format!("{}: {:.1}/{:.1}", r.threshold, r.bpcer * 100.0, r.max_apcer() * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let report = json!({
        "pack": spec.name,
        "frames": samples.len(),
        "without_face": no_face,
        "at_threshold": rates,
        "sweep": sweep,
        "latency_ms_p50": p50,
        "scores": scored.iter().map(|(s, score)| json!({"path": s.path, "label": s.label, "attack_type": s.attack_type, "score": score})).collect::<Vec<_>>(),
    });
    let path = args.out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("  report: {}", path.display());
    Ok(ExitCode::SUCCESS)
}
