//! `facegate models list | fetch | verify`.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use facegate_core::ModelSpec;
use facegate_models::FetchSource;

use crate::args::ModelsAction;
use crate::context::Context;

pub fn run(context: &Context, action: ModelsAction) -> Result<ExitCode> {
    match action {
        ModelsAction::List => list(context),
        ModelsAction::Fetch { all } => fetch(context, all),
        ModelsAction::Verify { all } => verify(context, all),
    }
}

fn selected(context: &Context, all: bool) -> Result<Vec<&ModelSpec>> {
    if all {
        return Ok(context.manifest.models.iter().collect());
    }
    let pack = context.manifest.pack(&context.args.pack).context("unknown pack")?;
    Ok(context.manifest.pack_files(pack)?)
}

fn list(context: &Context) -> Result<ExitCode> {
    println!("cache: {}", context.cache.home().display());
    println!("\nmodels:");
    for model in &context.manifest.models {
        let state = match context.cache.verify(model) {
            Ok(_) => "cached, verified",
            Err(_) => "not cached",
        };
        println!("  {:<18} {:<9} {:<44} [{state}]", model.name, format!("{:?}", model.kind).to_lowercase(), model.file);
        println!("  {:<18} licence: {}", "", model.licence);
        if !model.calibration.is_empty() {
            let rows: Vec<String> =
                model.calibration.iter().map(|p| format!("FMR {:.0e} → {:.3}", p.fmr, p.threshold)).collect();
            println!("  {:<18} calibration: {}", "", rows.join(", "));
        }
    }
    println!("\npacks:");
    for pack in &context.manifest.packs {
        let landmarks = pack.landmarks.as_deref().map(|l| format!(" + {l}")).unwrap_or_default();
        println!("  {:<12} {}{landmarks} + {}  ({})", pack.name, pack.detector, pack.embedder, pack.description);
        if pack.name == facegate_core::DEFAULT_PACK {
            println!("  {:<12} the default pack", "");
        }
        let mirror = match pack.mirror {
            facegate_core::Mirror::Always => "every face",
            facegate_core::Mirror::Hard => "enrolled templates and hard faces",
            facegate_core::Mirror::Kept => "enrolled templates only (probes embedded once)",
            facegate_core::Mirror::Never => "never",
        };
        println!("  {:<12} mirror image: {mirror}", "");
        let licences: Vec<String> = context
            .manifest
            .pack_files(pack)?
            .into_iter()
            .map(|model| format!("{}: {}", model.name, model.licence))
            .collect();
        if let Some(liveness) = &pack.liveness {
            println!("  {:<12} liveness: `{liveness}` (ask with liveness=true)", "");
        }
        println!("  {:<12} licences: {}", "", licences.join("; "));
        if !context.manifest.research_only_models(pack).is_empty() {
            println!("  {:<12} research only: not cleared for commercial use", "");
        }
    }
    println!("\nliveness packs:");
    for liveness in &context.manifest.liveness {
        println!("  {:<12} {} fused, live at >= {}", liveness.name, liveness.models.join(" + "), liveness.threshold);
        println!("  {:<12} {}", "", liveness.threshold_note);
    }
    let runtime = &context.manifest.runtime;
    let state = match context.cache.runtime_library(runtime) {
        Ok(path) => format!("verified at {}", path.display()),
        Err(e) => e.to_string(),
    };
    println!("\nruntime: {} {} ({}): {state}", runtime.package, runtime.version, runtime.library);
    let openvino = context.manifest.openvino.as_ref();
    let state = match context.cache.openvino_library(openvino) {
        Ok(path) => format!("verified at {}", path.display()),
        Err(e) => e.to_string(),
    };
    let version = openvino.map_or_else(|| "not pinned".to_string(), |o| format!("{} {}", o.package, o.version));
    println!("embedder runtime, optional: {version}: {state}");
    let bf16 = if facegate_core::cpu_has_bf16() { "has" } else { "has no" };
    println!("this CPU {bf16} bf16 arithmetic (AVX-512 BF16); embedder_runtime: {}", context.embedder_runtime);
    embedder_runtime(context)?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime the dispatch chooses for the `--pack` pack's embedder on this machine, where its models
/// are cached (listing fetches nothing).
fn embedder_runtime(context: &Context) -> Result<()> {
    let pack = &context.args.pack;
    let cached = context.manifest.pack(pack).map(|spec| context.manifest.pack_files(spec)).transpose()?;
    match cached {
        Some(models) if models.iter().all(|model| context.cache.verify(model).is_ok()) => {
            let pipeline = context.pipeline_with_threads(context.threads)?;
            let threads = context.threads;
            println!("pack `{pack}`'s embedder, {threads} thread(s): {}", pipeline.embedder_runtime().summary());
        }
        _ => println!("pack `{pack}`'s embedder: its models are not cached (`facegate models fetch`)"),
    }
    Ok(())
}

fn fetch(context: &Context, all: bool) -> Result<ExitCode> {
    for model in selected(context, all)? {
        let provenance = context.cache.fetch(model)?;
        let from = match provenance.source {
            FetchSource::Cache => "already cached".to_string(),
            FetchSource::Mirror(dir) => format!("copied from mirror {}", dir.display()),
            FetchSource::Upstream(url) => format!("downloaded from {url}"),
        };
        println!("{}: {} ({from}, sha256 verified)", model.name, provenance.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(context: &Context, all: bool) -> Result<ExitCode> {
    let mut failures = 0;
    for model in selected(context, all)? {
        match context.cache.verify(model) {
            Ok(path) => println!("ok      {} ({})", model.name, path.display()),
            Err(e) => {
                failures += 1;
                println!("FAILED  {}: {e}", model.name);
            }
        }
    }
    match context.cache.runtime_library(&context.manifest.runtime) {
        Ok(path) => println!("ok      onnxruntime ({})", path.display()),
        Err(e) => {
            failures += 1;
            println!("FAILED  onnxruntime: {e}");
        }
    }
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
