//! `facegate train` and `facegate classify`: the training crate driven from the command line, with
//! progress bars, and a clean stop on Ctrl-C that keeps the last checkpoint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use facegate_core::Pipeline;
use facegate_eval::subject::find_subject;
use facegate_train::{
    Classifier, ClassifierOptions, ClassifierRun, DatasetListing, EmbeddingOptions, EmbeddingRun, EpochMetrics,
    FaceDataset, MarginLoss, OptimizerKind, PrepCache, RunContext, SplitFractions, TrainObserver, prepare_faces,
    pretrained_embeddings, train_classifier, train_embedding_head, training_device,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::{LossArg, OptimizerArg, TrainArgs, TrainMode};
use crate::context::{Context, read_image};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT).
const INTERRUPTED: u8 = 130;

pub fn train(context: &Context, args: &TrainArgs) -> Result<ExitCode> {
    let fractions = SplitFractions { validation: args.val_fraction, test: args.test_fraction };
    if !(0.0..0.5).contains(&fractions.validation) || !(0.0..0.5).contains(&fractions.test) {
        bail!("--val-fraction and --test-fraction must each be in [0, 0.5)");
    }
    let device = training_device(args.gpu)?;
    let stop = interrupt_flag()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let listing = DatasetListing::read(&args.dataset, args.min_images.unwrap_or(2), args.min_images.is_some())?;
    eprintln!(
        "{}: {} people, {} photos{}",
        args.dataset.display(),
        listing.people.len(),
        listing.image_count(),
        if listing.excluded.is_empty() {
            String::new()
        } else {
            format!(" ({} people with fewer photos left out)", listing.excluded.len())
        }
    );
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let pipelines: Vec<Pipeline> = (0..jobs).map(|_| context.pipeline_with_threads(1)).collect::<Result<_>>()?;
    let cache_root = args.cache.clone().unwrap_or_else(|| context.cache.home().join("train-cache"));
    let cache = PrepCache::new(&cache_root, &pipelines[0])?;
    let bar = counter(listing.image_count() as u64, "detecting and aligning");
    let dataset = prepare_faces(&listing, &pipelines, &cache, args.skip_faceless, &|| bar.inc(1))?;
    bar.finish_and_clear();
    if !dataset.skipped_faceless.is_empty() {
        eprintln!("left out {} photos without a face (listed in the report)", dataset.skipped_faceless.len());
    }
    let observer = EpochBars::new();
    let run = RunContext { dir: &args.out, device: &device, observer: &observer, stop: &stop };
    match args.mode {
        TrainMode::Classifier => classifier(context, args, &dataset, fractions, run),
        TrainMode::Embedding => embedding(context, args, &dataset, &pipelines, &cache, fractions, run),
    }
}

fn classifier(
    context: &Context,
    args: &TrainArgs,
    dataset: &FaceDataset,
    fractions: SplitFractions,
    run: RunContext<'_>,
) -> Result<ExitCode> {
    let optimizer = match args.optimizer {
        OptimizerArg::Sgd => OptimizerKind::Sgd,
        OptimizerArg::Adam => OptimizerKind::Adam,
    };
    let defaults = ClassifierOptions::default();
    let options = ClassifierOptions {
        input_size: args.input_size,
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        learning_rate: args.lr.unwrap_or(optimizer.default_learning_rate()),
        optimizer,
        momentum: args.momentum,
        augment: !args.no_augment,
        seed: args.seed,
        fractions,
        resume: args.resume,
    };
    match train_classifier(dataset, &args.dataset, &context.args.pack, &options, run)? {
        ClassifierRun::Interrupted { completed } => interrupted(&args.out, completed),
        ClassifierRun::Finished { report } => {
            println!(
                "test: loss {:.4}, accuracy {:.2} % ({} images); {:.1} s per epoch",
                report.test.loss,
                report.test.accuracy * 100.0,
                report.split_sizes[2],
                report.seconds_per_epoch
            );
            println!(
                "rejection: below {:.2} confidence answers \"unknown\" ({:.1} % of test answered, {:.2} % of those right)",
                report.test.min_confidence,
                report.test.answered_share * 100.0,
                report.test.answered_accuracy * 100.0
            );
            println!(
                "model: {}  report: {}  curves: {}",
                report.model_dir.display(),
                args.out.join("report.json").display(),
                args.out.join("curves.svg").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn embedding(
    context: &Context,
    args: &TrainArgs,
    dataset: &FaceDataset,
    pipelines: &[Pipeline],
    cache: &PrepCache,
    fractions: SplitFractions,
    run: RunContext<'_>,
) -> Result<ExitCode> {
    let base_pack = context.manifest.pack(&context.args.pack).context("unknown pack")?.clone();
    if base_pack.head.is_some() {
        bail!("pack `{}` already has a head; train on a built-in pack", base_pack.name);
    }
    let bar = counter(dataset.samples.len() as u64, "embedding (frozen)");
    let embeddings = pretrained_embeddings(dataset, pipelines, cache, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let defaults = EmbeddingOptions::default();
    let folder_name =
        args.dataset.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let options = EmbeddingOptions {
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        learning_rate: args.lr.unwrap_or(defaults.learning_rate),
        loss: match args.loss {
            LossArg::Arcface => MarginLoss::ArcFace,
            LossArg::Cosface => MarginLoss::CosFace,
        },
        margin: args.margin,
        scale: args.scale,
        seed: args.seed,
        fractions,
        resume: args.resume,
        pack_name: args
            .pack_name
            .clone()
            .unwrap_or_else(|| format!("{}-adapted", folder_name.unwrap_or_else(|| "dataset".into()))),
    };
    match train_embedding_head(dataset, &embeddings, &args.dataset, &base_pack, &options, run)? {
        EmbeddingRun::Interrupted { completed } => interrupted(&args.out, completed),
        EmbeddingRun::Finished { report } => {
            let (before, after) = (&report.test.without_head, &report.test.with_head);
            println!(
                "held-out people: {} ({} images, {} genuine / {} impostor pairs)",
                after.people, after.images, after.genuine_pairs, after.impostor_pairs
            );
            println!("                     accuracy  TAR@FAR1e-3     EER   rank-1");
            for (name, f) in [("pretrained only", before), ("with the head", after)] {
                println!(
                    "{name:<20} {:>8.2} % {:>9.2} % {:>6.2} % {:>7.2} %",
                    f.accuracy * 100.0,
                    f.tar_at_far_1e3 * 100.0,
                    f.eer * 100.0,
                    f.rank1_identification * 100.0
                );
            }
            if report.selected_epoch == 0 {
                println!(
                    "no epoch beat the pretrained embedder on the validation people: the pack's head is the identity"
                );
            } else {
                println!("exported the head of epoch {} (best validation TAR at FAR 1e-3)", report.selected_epoch);
            }
            println!(
                "pack `{}`: {} (use with --pack {1} or serve --packs default,{1}); report: {}",
                options.pack_name,
                report.pack_dir.display(),
                args.out.join("report.json").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn interrupted(out: &Path, completed: usize) -> Result<ExitCode> {
    eprintln!(
        "stopped after {completed} finished epochs; the checkpoint in {} is kept: run the same command with --resume",
        out.join("checkpoint").display()
    );
    Ok(ExitCode::from(INTERRUPTED))
}

/// Set by the first Ctrl-C (the loop stops before its next batch); a second one exits at once.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(flag)
}

fn counter(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// One progress bar per epoch with the running loss and accuracy; validation figures when it ends.
struct EpochBars {
    bars: MultiProgress,
    current: std::sync::Mutex<Option<ProgressBar>>,
}

impl EpochBars {
    fn new() -> Self {
        Self { bars: MultiProgress::new(), current: std::sync::Mutex::new(None) }
    }
}

impl TrainObserver for EpochBars {
    fn epoch_started(&self, epoch: usize, epochs: usize, batches: usize) {
        let bar = self.bars.add(ProgressBar::new(batches as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
        if let Ok(mut current) = self.current.lock() {
            *current = Some(bar);
        }
    }

    fn batch_done(&self, mean_loss: f64, accuracy: f64) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref()
        {
            bar.inc(1);
            bar.set_message(format!("loss {mean_loss:.4} acc {:.1} %", accuracy * 100.0));
        }
    }

    fn epoch_done(&self, m: &EpochMetrics) {
        if let Ok(mut current) = self.current.lock()
            && let Some(bar) = current.take()
        {
            let validation = match (m.validation_loss, m.validation_tar_at_far_1e3) {
                (Some(loss), _) => format!("val loss {loss:.4} acc {:.1} %", m.validation_accuracy * 100.0),
                (None, Some(tar)) => {
                    format!("val verif. acc {:.2} % TAR@1e-3 {:.2} %", m.validation_accuracy * 100.0, tar * 100.0)
                }
                (None, None) => String::new(),
            };
            bar.finish_with_message(format!(
                "loss {:.4} acc {:.1} % | {validation} | {:.1} s",
                m.train_loss,
                m.train_accuracy * 100.0,
                m.seconds
            ));
        }
    }
}

pub fn classify(
    context: &Context,
    images: &[PathBuf],
    model: &Path,
    min_confidence: Option<f32>,
    json: bool,
) -> Result<ExitCode> {
    let classifier = Classifier::load(model)?;
    let meta = classifier.meta();
    let pack =
        if context.args.pack == facegate_core::DEFAULT_PACK { meta.pack.clone() } else { context.args.pack.clone() };
    let pipeline = context.load(&pack, context.threads)?;
    let mut answers = Vec::new();
    for path in images {
        let image = read_image(path)?;
        let answer = match find_subject(&pipeline, &image)? {
            None => json!({ "image": path, "face": false }),
            Some((face, _)) => {
                let crop = pipeline.align(&image, &face).image;
                let prediction = classifier.classify(&[crop], min_confidence).remove(0);
                if !json {
                    match &prediction.person {
                        Some(person) => println!("{}: {person} ({:.2})", path.display(), prediction.confidence),
                        None => println!(
                            "{}: unknown (best guess {} at {:.2})",
                            path.display(),
                            prediction.best_guess,
                            prediction.confidence
                        ),
                    }
                }
                json!({ "image": path, "face": true, "bbox": face.bbox, "prediction": prediction })
            }
        };
        if !json && answer["face"] == false {
            println!("{}: no face", path.display());
        }
        answers.push(answer);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "model": model, "answers": answers }))?);
    }
    Ok(ExitCode::SUCCESS)
}
