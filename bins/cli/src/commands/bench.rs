//! `facegate bench`: per-stage latency (p50/p99) at one thread and at all cores on a one-face 640×480
//! photo and a group photo, and cold start measured as fresh `facegate embed` processes.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use facegate_core::{BoundingBox, Pipeline};
use image::{RgbImage, imageops::FilterType};
use serde_json::json;

use crate::args::BenchArgs;
use crate::context::{Context, read_image};

const WARMUP: usize = 5;
const ONE_FACE_SIZE: (u32, u32) = (640, 480);

pub fn run(context: &Context, args: &BenchArgs) -> Result<ExitCode> {
    if let Some(list) = &args.images {
        return throughput(context, list);
    }
    let group = read_image(&args.group)?;
    let probe = context.pipeline_with_threads(1)?;
    let photo = match &args.photo {
        Some(path) => read_image(path)?,
        None => one_face_photo(&probe, &group)?,
    };
    let runtime = probe.embedder_runtime().clone();
    drop(probe);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    let mut figures = Vec::new();
    println!(
        "stage latency, ms (p50 / p99 over {} runs), pack `{}`, flip {}",
        args.iterations, context.args.pack, !context.args.no_flip
    );
    println!("embedder runtime (one thread): {}", runtime.summary());
    println!("{:<38} {:>7} {:>15} {:>15} {:>15} {:>15}", "image", "threads", "detect", "align", "embed", "total");
    for threads in thread_counts {
        let pipeline = context.pipeline_with_threads(threads)?;
        for (name, image) in [("one face 640x480", &photo), ("group", &group)] {
            let row = measure(&pipeline, image, args.iterations)?;
            let label = format!("{name} ({} faces, {}x{})", row.faces, image.width(), image.height());
            println!(
                "{label:<38} {threads:>7} {:>15} {:>15} {:>15} {:>15}",
                row.detect.show(),
                row.align.show(),
                row.embed.show(),
                row.total.show()
            );
            figures.push(json!({
                "image": name, "width": image.width(), "height": image.height(), "faces": row.faces, "threads": threads,
                "detect_ms": row.detect.json(), "align_ms": row.align.json(), "embed_ms": row.embed.json(), "total_ms": row.total.json(),
            }));
        }
    }
    let cold = cold_start(&photo, args.cold_runs)?;
    println!("cold start (process start → first embedding printed, models included), ms: {}", cold.show());
    if let Some(path) = &args.json {
        let report = json!({
            "pack": context.args.pack, "flip": !context.args.no_flip, "embedder_runtime": runtime,
            "stages": figures, "cold_start_ms": cold.json(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `facegate bench --images LIST`: images per second through the whole pipeline, one thread, one face
/// (the largest) per image, printed as one JSON line.
fn throughput(context: &Context, list: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let paths: Vec<&Path> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(Path::new).collect();
    let pipeline = context.pipeline_with_threads(1)?;
    let limits = facegate_core::DecodeLimits::default();
    let (mut faces, mut checksum) = (0usize, 0.0f64);
    let started = Instant::now();
    for path in &paths {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let image = facegate_core::decode_image(&bytes, &limits)?;
        let Some(face) = facegate_core::largest_face(pipeline.detect(&image)?) else { continue };
        let embedding = pipeline.embed_faces(&image, std::slice::from_ref(&face))?;
        faces += embedding.len();
        checksum += embedding.first().map_or(0.0, |e| f64::from(e.as_slice()[0]));
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = json!({
        "runner": "facegate", "pack": context.args.pack, "images": paths.len(), "faces": faces,
        "seconds": seconds, "images_per_second": paths.len() as f64 / seconds, "checksum": checksum,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Median and 99th percentile of a set of durations.
struct Percentiles {
    p50: f64,
    p99: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
            samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        Self { p50: at(0.5), p99: at(0.99) }
    }

    fn show(&self) -> String {
        format!("{:.2} / {:.2}", self.p50, self.p99)
    }

    fn json(&self) -> serde_json::Value {
        json!({ "p50": self.p50, "p99": self.p99 })
    }
}

struct StageRow {
    faces: usize,
    detect: Percentiles,
    align: Percentiles,
    embed: Percentiles,
    total: Percentiles,
}

fn measure(pipeline: &Pipeline, image: &RgbImage, iterations: usize) -> Result<StageRow> {
    for _ in 0..WARMUP {
        pipeline.analyze(image)?;
    }
    let (mut detect, mut align, mut embed, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut faces = 0;
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let (found, timings) = pipeline.analyze_timed(image)?;
        total.push(started.elapsed());
        detect.push(timings.detect);
        align.push(timings.align);
        embed.push(timings.embed);
        faces = found.len();
    }
    Ok(StageRow {
        faces,
        detect: Percentiles::of(detect),
        align: Percentiles::of(align),
        embed: Percentiles::of(embed),
        total: Percentiles::of(total),
    })
}

/// A 640×480 view of the group photo centred on its largest face, holding that face only.
fn one_face_photo(pipeline: &Pipeline, group: &RgbImage) -> Result<RgbImage> {
    let faces = pipeline.detect(group)?;
    let Some(face) = facegate_core::largest_face(faces.clone()) else { bail!("no face in the group photo") };
    let (gw, gh) = (group.width() as f32, group.height() as f32);
    let mut width = face.bbox.width * 2.2;
    let others: Vec<BoundingBox> = faces.iter().filter(|f| f.bbox != face.bbox).map(|f| f.bbox).collect();
    let (cx, cy) = (face.bbox.x + face.bbox.width / 2.0, face.bbox.y + face.bbox.height / 2.0);
    let window = |width: f32| {
        let height = width * 0.75;
        let x = (cx - width / 2.0).clamp(0.0, (gw - width).max(0.0));
        let y = (cy - height / 2.0).clamp(0.0, (gh - height).max(0.0));
        BoundingBox { x, y, width: width.min(gw), height: height.min(gh) }
    };
    while width > face.bbox.width * 1.2 && others.iter().any(|o| window(width).iou(o) > 0.0) {
        width *= 0.9;
    }
    let w = window(width);
    let crop = image::imageops::crop_imm(group, w.x as u32, w.y as u32, w.width as u32, w.height as u32).to_image();
    Ok(image::imageops::resize(&crop, ONE_FACE_SIZE.0, ONE_FACE_SIZE.1, FilterType::Lanczos3))
}

fn cold_start(photo: &RgbImage, runs: usize) -> Result<Percentiles> {
    let dir = std::env::temp_dir().join(format!("facegate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("one-face.png");
    photo.save(&path)?;
    let exe = std::env::current_exe()?;
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        samples.push(time_process(&exe, &path)?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Percentiles::of(samples))
}

fn time_process(exe: &Path, photo: &Path) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new(exe)
        .args(["embed"])
        .arg(photo)
        .stdout(Stdio::null())
        .status()
        .context("starting facegate embed")?;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("facegate embed exited with {status}");
    }
    Ok(elapsed)
}
