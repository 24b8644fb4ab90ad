//! `facegate eval lfw`: the standard LFW verification protocol (10 folds of 300 matched + 300 mismatched
//! pairs, each fold's threshold chosen on the other nine), TAR at fixed FAR, EER, a JSON report and a
//! ROC plot; with `--calibrate`, the threshold-against-FMR table over all different-person pairs of LFW.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use facegate_core::verification::{equal_error_rate, roc_curve, tar_at_far, ten_fold_accuracy};
use facegate_core::{BoundingBox, CalibrationPoint, DetectorConfig, Embedding, Pipeline, crop_box_face, subject_face};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::args::LfwArgs;
use crate::context::{Context, read_image};

/// Detector threshold of the retry on images where the normal threshold finds nothing.
const RETRY_SCORE_THRESHOLD: f32 = 0.2;
const HISTOGRAM_BINS: usize = 1 << 16;

/// One pair of the protocol.
struct Pair {
    a: PathBuf,
    b: PathBuf,
    same: bool,
    fold: usize,
}

/// How an image's face was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum FaceSource {
    Detected,
    LowThresholdRetry,
    CentreCrop,
}

pub fn lfw(context: &Context, args: &LfwArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let pairs_file = find_pairs_file(&args.dir)?;
    let images_dir = find_images_dir(&args.dir)?;
    let pairs = parse_pairs(&pairs_file, &images_dir, args.limit)?;
    let mut images: BTreeSet<PathBuf> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    if args.calibrate {
        images.extend(all_images(&images_dir)?);
    }
    let images: Vec<PathBuf> = images.into_iter().collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let embedded = embed_all(context, &images, jobs)?;

    let mut scored = Vec::with_capacity(pairs.len());
    for pair in &pairs {
        let (a, b) = (&embedded[&pair.a].0, &embedded[&pair.b].0);
        scored.push((pair.fold, a.cosine(b), pair.same));
    }
    let folds = ten_fold_accuracy(&scored);
    let accuracies: Vec<f64> = folds.iter().map(|f| f.0).collect();
    let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accuracies.len() as f64).sqrt();
    let genuine: Vec<f32> = scored.iter().filter(|s| s.2).map(|s| s.1).collect();
    let impostor: Vec<f32> = scored.iter().filter(|s| !s.2).map(|s| s.1).collect();
    let roc = roc_curve(&genuine, &impostor);
    let tar_1e3 = tar_at_far(&genuine, &impostor, 1e-3);
    let tar_1e4 = tar_at_far(&genuine, &impostor, 1e-4);
    let eer = equal_error_rate(&roc);
    let mut sources: BTreeMap<FaceSource, usize> = BTreeMap::new();
    for (_, source) in embedded.values() {
        *sources.entry(*source).or_default() += 1;
    }

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let config = context.pipeline_config(1);
    let mut report = json!({
        "benchmark": "lfw",
        "pack": context.args.pack,
        "pairs": pairs.len(),
        "images": embedded.len(),
        "config": {
            "flip": config.embedder.flip,
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

fn find_pairs_file(dir: &Path) -> Result<PathBuf> {
    let candidate = dir.join("pairs.txt");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!("{} has no pairs.txt", dir.display())
}

fn find_images_dir(dir: &Path) -> Result<PathBuf> {
    for name in ["lfw-deepfunneled", "lfw"] {
        if dir.join(name).is_dir() {
            return Ok(dir.join(name));
        }
    }
    Ok(dir.to_path_buf())
}

fn image_path(images_dir: &Path, name: &str, number: &str) -> Result<PathBuf> {
    let n: u32 = number.parse().with_context(|| format!("bad image number `{number}` in pairs.txt"))?;
    Ok(images_dir.join(name).join(format!("{name}_{n:04}.jpg")))
}

/// Parses pairs.txt: a header `folds pairs-per-half`, then per fold the matched and the mismatched pairs.
fn parse_pairs(path: &Path, images_dir: &Path, limit: Option<usize>) -> Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<usize> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("pairs.txt header")?;
    let [folds, per_half] = header[..] else { bail!("pairs.txt header must be `folds pairs`") };
    let mut pairs = Vec::new();
    for fold in 0..folds {
        for index in 0..2 * per_half {
            let line = lines.next().with_context(|| format!("pairs.txt ends in fold {fold}"))?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            let pair = match fields[..] {
                [name, a, b] => {
                    Pair { a: image_path(images_dir, name, a)?, b: image_path(images_dir, name, b)?, same: true, fold }
                }
                [n1, a, n2, b] => {
                    Pair { a: image_path(images_dir, n1, a)?, b: image_path(images_dir, n2, b)?, same: false, fold }
                }
                _ => bail!("bad pairs.txt line `{line}`"),
            };
            if limit.is_none_or(|l| index % per_half < l) {
                pairs.push(pair);
            }
        }
    }
    Ok(pairs)
}

fn all_images(images_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    for person in std::fs::read_dir(images_dir).with_context(|| format!("listing {}", images_dir.display()))? {
        let person = person?.path();
        if person.is_dir() {
            for file in std::fs::read_dir(&person)? {
                let file = file?.path();
                if file.extension().is_some_and(|e| e == "jpg") {
                    images.push(file);
                }
            }
        }
    }
    Ok(images)
}

/// Embeds the most prominent face of each image with `jobs` workers, each holding its own sessions.
fn embed_all(context: &Context, images: &[PathBuf], jobs: usize) -> Result<BTreeMap<PathBuf, (Embedding, FaceSource)>> {
    let progress = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    progress.set_message("embedding");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let pipeline = context.pipeline_with_threads(1)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = images.get(i) else {
                            return Ok(());
                        };
                        let found = embed_one(&pipeline, path)?;
                        results.lock().map_err(|_| anyhow::anyhow!("worker panicked"))?.insert(path.clone(), found);
                        progress.inc(1);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| anyhow::anyhow!("embedding worker panicked"))??;
        }
        Ok(())
    })?;
    progress.finish_and_clear();
    results.into_inner().map_err(|_| anyhow::anyhow!("worker panicked"))
}

fn embed_one(pipeline: &Pipeline, path: &Path) -> Result<(Embedding, FaceSource)> {
    let image = read_image(path)?;
    let mut faces = pipeline.detect(&image)?;
    let mut source = FaceSource::Detected;
    if faces.is_empty() {
        let retry = DetectorConfig { score_threshold: RETRY_SCORE_THRESHOLD, ..pipeline.config().detector };
        faces = pipeline.detect_with(&image, &retry)?;
        source = FaceSource::LowThresholdRetry;
    }
    let embedding = match subject_face(faces, image.width() as f32, image.height() as f32) {
        Some(face) => pipeline.embed_faces(&image, std::slice::from_ref(&face))?.pop(),
        None => {
            source = FaceSource::CentreCrop;
            let (w, h) = (image.width() as f32, image.height() as f32);
            let centre = BoundingBox { x: w * 0.25, y: h * 0.25, width: w * 0.5, height: h * 0.5 };
            let crop = crop_box_face(&image, &centre);
            pipeline.embed_aligned(&[&crop.image])?.pop()
        }
    };
    let embedding = embedding.with_context(|| format!("no embedding for {}", path.display()))?;
    Ok((embedding, source))
}

/// Threshold against FMR over every pair of LFW images of different people (about 87 million pairs
/// for the full set), with the TAR over every same-person pair at each threshold.
fn calibrate(
    images: &[PathBuf],
    embedded: &BTreeMap<PathBuf, (Embedding, FaceSource)>,
    jobs: usize,
) -> Vec<CalibrationPoint> {
    let people: Vec<&std::ffi::OsStr> =
        images.iter().map(|p| p.parent().and_then(Path::file_name).unwrap_or_default()).collect();
    let dim = embedded.values().next().map_or(0, |e| e.0.len());
    let flat: Vec<f32> = images.iter().flat_map(|p| embedded[p].0.as_slice().to_vec()).collect();
    let bin = |score: f32| (((score + 1.0) / 2.0 * HISTOGRAM_BINS as f32) as usize).min(HISTOGRAM_BINS - 1);
    let next_row = AtomicUsize::new(0);
    let histograms: Vec<(Vec<u64>, Vec<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let (mut genuine, mut impostor) = (vec![0u64; HISTOGRAM_BINS], vec![0u64; HISTOGRAM_BINS]);
                    loop {
                        let i = next_row.fetch_add(1, Ordering::Relaxed);
                        if i >= images.len() {
                            return (genuine, impostor);
                        }
                        let a = &flat[i * dim..(i + 1) * dim];
                        for j in i + 1..images.len() {
                            let score = facegate_core::cosine(a, &flat[j * dim..(j + 1) * dim]);
                            let target = if people[i] == people[j] { &mut genuine } else { &mut impostor };
                            target[bin(score)] += 1;
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut genuine = vec![0u64; HISTOGRAM_BINS];
    let mut impostor = vec![0u64; HISTOGRAM_BINS];
    for (g, i) in histograms {
        genuine.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        impostor.iter_mut().zip(i).for_each(|(a, b)| *a += b);
    }
    let (total_genuine, total_impostor) = (genuine.iter().sum::<u64>() as f64, impostor.iter().sum::<u64>() as f64);
    facegate_core::CALIBRATION_FMRS
        .iter()
        .map(|&fmr| {
            // Walk down from the top bin while the impostors at or above stay within the budget.
            let budget = fmr * total_impostor;
            let (mut accepted_impostors, mut accepted_genuine, mut lowest) = (0u64, 0u64, HISTOGRAM_BINS);
            for b in (0..HISTOGRAM_BINS).rev() {
                if (accepted_impostors + impostor[b]) as f64 > budget {
                    break;
                }
                accepted_impostors += impostor[b];
                accepted_genuine += genuine[b];
                lowest = b;
            }
            let threshold = lowest as f32 / HISTOGRAM_BINS as f32 * 2.0 - 1.0;
            CalibrationPoint { fmr, threshold, tar: Some(accepted_genuine as f64 / total_genuine.max(1.0)) }
        })
        .collect()
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
