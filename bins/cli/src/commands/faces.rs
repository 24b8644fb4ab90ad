//! `facegate detect`, `embed` and `compare`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use facegate_core::{AnalyzedFace, largest_face};
use serde_json::json;

use crate::context::{Context, read_image};
use crate::draw::annotate;

pub fn detect(context: &Context, images: &[PathBuf], json: bool, draw: Option<&Path>) -> Result<ExitCode> {
    let pipeline = context.pipeline()?;
    if let Some(out) = draw.filter(|_| images.len() > 1) {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut report = Vec::new();
    for path in images {
        let image = read_image(path)?;
        let faces = pipeline.detect(&image)?;
        if let Some(out) = draw {
            let target = if images.len() > 1 {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                out.join(format!("{stem}.faces.png"))
            } else {
                out.to_path_buf()
            };
            annotate(&image, &faces).save(&target).with_context(|| format!("writing {}", target.display()))?;
        }
        if json {
            report.push(json!({ "image": path, "width": image.width(), "height": image.height(), "faces": faces }));
        } else {
            println!("{}: {} face(s)", path.display(), faces.len());
            for (i, f) in faces.iter().enumerate() {
                println!(
                    "  #{i} score {:.3} box x={:.0} y={:.0} w={:.0} h={:.0}",
                    f.score, f.bbox.x, f.bbox.y, f.bbox.width, f.bbox.height
                );
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn embed(context: &Context, path: &Path) -> Result<ExitCode> {
    let pipeline = context.pipeline()?;
    let faces = pipeline.analyze(&read_image(path)?)?;
    let report = json!({
        "image": path,
        "pack": pipeline.pack().name,
        "embedder": pipeline.embedder_spec().name,
        "faces": faces,
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(if faces.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn prominent_face(pipeline: &facegate_core::Pipeline, path: &Path) -> Result<AnalyzedFace> {
    let faces = pipeline.analyze(&read_image(path)?)?;
    match largest_face(faces) {
        Some(face) => Ok(face),
        None => bail!("no face found in {}", path.display()),
    }
}

pub fn compare(context: &Context, a: &Path, b: &Path, fmr: f64, json: bool) -> Result<ExitCode> {
    let pipeline = context.pipeline()?;
    let face_a = prominent_face(&pipeline, a)?;
    let face_b = prominent_face(&pipeline, b)?;
    let score = face_a.embedding.cosine(&face_b.embedding);
    let decision = pipeline.calibration().decide(score, fmr)?;
    if json {
        let report = json!({
            "score": score,
            "same_person": decision.same,
            "threshold": decision.threshold,
            "target_fmr": decision.target_fmr,
            "pack": pipeline.pack().name,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verdict = if decision.same { "same person" } else { "different people" };
        println!(
            "score {score:.4}: {verdict} (threshold {:.4} for a false-match rate of {:e})",
            decision.threshold, decision.target_fmr
        );
    }
    Ok(ExitCode::SUCCESS)
}
