//! `facegate enroll KNOWN_DIR` and `facegate identify IMG_OR_DIR...`: face_recognition's two verbs on a
//! collection of the local gallery (the embedded store in the data folder unless the settings name
//! PostgreSQL), through the same gallery service as the HTTP API: quality gate, encryption at rest,
//! calibrated decisions and the audit trail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use axum::body::Bytes;
use facegate_core::{DEFAULT_TARGET_FMR, DecodeLimits, KeptFace, Pipeline};
use facegate_gallery::{
    Actor, EnrollOptions, FaceChoice, Gallery, GalleryError, MatchResult, Pipelines, ProbeOptions, now_ms,
};
use facegate_host::Settings;
use facegate_store::{Collection, KeyId, MigrationState, NewCollection, NewSubject, PackVersion, RequestId, SubjectId};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::{AttendanceArgs, CardsArgs, EnrollArgs, IdentifyArgs, LocalGalleryArgs, MigrateArgs, OutputFormat};
use crate::context::Context;
use facegate_store::WireName;

/// The key id the audit trail names for decisions made from the command line.
const CLI_KEY_ID: &str = "cli";
/// File extensions read as images in folders.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

/// The local gallery and who acts on it.
pub(super) struct LocalGallery {
    pub(super) gallery: Gallery,
    pub(super) actor: Actor,
}

impl LocalGallery {
    pub(super) async fn open(settings: &Settings, args: &LocalGalleryArgs) -> Result<Self> {
        let store = facegate_host::open_configured_store(settings).await?;
        let keys = Arc::new(facegate_host::configured_local_keys(settings)?);
        let gallery = Gallery::new(store, keys);
        let tenant = gallery.keys().tenant(&args.tenant, gallery.now()).await?;
        let actor = Actor::new(tenant.id, KeyId::from(CLI_KEY_ID), RequestId::random());
        Ok(Self { gallery, actor })
    }

    /// The same gallery analysing images with `pipelines`, one image at a time on this thread.
    pub(super) fn analysing(self, pipelines: Pipelines) -> Self {
        Self { gallery: self.gallery.with_analyser(Arc::new(pipelines)), actor: self.actor }
    }

    pub(super) async fn collection(&self, name: &str) -> Result<Option<Collection>> {
        Ok(self.gallery.collections(&self.actor).await?.into_iter().find(|c| c.name == name))
    }
}

/// Image files of `paths`: files as given, folders searched recursively, each folder's files sorted.
fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            entries.sort();
            let (folders, others): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|p| p.is_dir());
            files.extend(others.into_iter().filter(|p| is_image(p)));
            files.extend(image_files(&folders)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn progress(total: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:10} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// The pipelines the CLI analyses with: `pipeline` as `pack`, images decoded within the default limits.
pub(super) fn pipelines(settings: &Settings, pack: &str, pipeline: Arc<Pipeline>) -> Pipelines {
    Pipelines::new(DecodeLimits::default(), settings.max_faces).with(pack, pipeline)
}

/// `facegate enroll KNOWN_DIR`.
pub fn enroll(context: &Context, settings: &Settings, args: &EnrollArgs) -> Result<ExitCode> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(&args.known_dir)
        .with_context(|| format!("reading {}", args.known_dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    if people.is_empty() {
        bail!("{} has no subfolders: put each person's photos in a folder named after them", args.known_dir.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let (collection, pipeline) = match local.collection(&args.gallery.collection).await? {
            Some(existing) => {
                let pipeline = context.load(&existing.pack, context.threads)?;
                (existing, pipeline)
            }
            None => {
                let pipeline = context.pipeline()?;
                let new = NewCollection {
                    name: args.gallery.collection.clone(),
                    pack: context.args.pack.clone(),
                    embedding_size: u32::try_from(pipeline.embedding_size())?,
                    target_fmr: DEFAULT_TARGET_FMR,
                    keep_crops: args.keep_crops,
                    created_at_ms: now_ms(),
                };
                (local.gallery.create_collection(&local.actor, &new).await?, pipeline)
            }
        };
        // During a migration every new face gets a template of the target pack too.
        let mut analyser = pipelines(settings, &collection.pack, Arc::new(pipeline));
        let migration = local.gallery.running_migration(&local.actor, &collection.id).await?;
        if let Some(target) = migration.map(|m| m.target.pack).filter(|p| *p != collection.pack) {
            analyser = analyser.with(target.clone(), Arc::new(context.load(&target, context.threads)?));
        }
        let local = local.analysing(analyser);
        let mut subjects: HashMap<String, SubjectId> =
            local.gallery.subjects(&local.actor, &collection.id).await?.into_iter().map(|s| (s.name, s.id)).collect();
        let folders: Vec<(String, Vec<PathBuf>)> = people
            .iter()
            .map(|folder| {
                let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                image_files(std::slice::from_ref(folder)).map(|files| (name, files))
            })
            .collect::<Result<_>>()?;
        let bar = progress(folders.iter().map(|(_, files)| files.len()).sum(), "enrolling");
        let (mut enrolled, mut refused) = (0, 0);
        for (name, files) in folders {
            let subject_id = match subjects.get(&name) {
                Some(id) => id.clone(),
                None => {
                    let new = NewSubject {
                        name: name.clone(),
                        metadata: serde_json::Value::Object(serde_json::Map::new()),
                        groups: None,
                        consent: None,
                        created_at_ms: now_ms(),
                    };
                    let subject = local.gallery.create_subject(&local.actor, &collection.id, &new).await?;
                    subjects.insert(name.clone(), subject.id.clone());
                    subject.id
                }
            };
            // The photos read, and which file each is.
            let (mut images, mut read, mut notes) = (Vec::new(), Vec::new(), Vec::new());
            for (index, file) in files.iter().enumerate() {
                match std::fs::read(file) {
                    Ok(bytes) => {
                        images.push(Bytes::from(bytes));
                        read.push(index);
                    }
                    Err(error) => notes.push(format!("{}: {error}", file.display())),
                }
            }
            let options = EnrollOptions { face: FaceChoice::Largest, reject_duplicates: false, crops: false };
            let result = local.gallery.enroll(&local.actor, &collection.id, &subject_id, images, options).await?;
            bar.inc(files.len() as u64);
            let file = |image_index: usize| files[read[image_index]].display();
            for unreadable in &result.unreadable {
                notes.push(format!("{}: {}", file(unreadable.image_index), unreadable.error));
            }
            for rejection in &result.rejected {
                let code = facegate_api::ErrorCode::from(rejection.reason).as_str();
                notes.push(format!("{}: {code}: {}", file(rejection.image_index), rejection.message));
            }
            for accepted in result.accepted.iter().filter(|a| a.possible_duplicate.is_some()) {
                notes.push(format!("{}: also matches another person", file(accepted.image_index)));
            }
            enrolled += result.accepted.len();
            refused += files.len() - result.accepted.len();
            bar.suspend(|| {
                println!("{name}: {} of {} photos enrolled", result.accepted.len(), files.len());
                for note in &notes {
                    println!("  {note}");
                }
            });
        }
        bar.finish_and_clear();
        println!(
            "collection `{}` ({}, pack `{}`): {enrolled} faces enrolled, {refused} photos refused",
            collection.name, collection.id, collection.pack
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// One face named by `identify`.
#[derive(Debug, Serialize)]
struct IdentifiedFace {
    image: String,
    face: usize,
    name: String,
    subject_id: Option<SubjectId>,
    score: Option<f32>,
    x: f32,
    y: f32,
    width: f32,
    height: f32,
}

/// The name `identify` prints for a face that matches nobody.
const UNKNOWN: &str = "unknown";

/// `facegate identify IMG_OR_DIR...`.
pub fn identify(context: &Context, settings: &Settings, args: &IdentifyArgs) -> Result<ExitCode> {
    let files = image_files(&args.images)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rows = runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}`: enrol people first with `facegate enroll`", args.gallery.collection);
        };
        let pipeline = context.load(&collection.pack, context.threads)?;
        let local = local.analysing(pipelines(settings, &collection.pack, Arc::new(pipeline)));
        let bar = progress(files.len(), "identifying");
        if files.len() == 1 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let options = ProbeOptions { top_k: 1, fmr: args.fmr, liveness: false };
        let mut rows = Vec::new();
        for file in &files {
            let image = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let recognition = match local.gallery.recognize(&local.actor, &collection.id, image.into(), options).await {
                Ok(recognition) => recognition,
                Err(GalleryError::Analysis(error)) if error.is_bad_image() => {
                    bar.suspend(|| eprintln!("skipped {}: {error}", file.display()));
                    bar.inc(1);
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            for (index, identified) in recognition.faces.into_iter().enumerate() {
                let (face, decision) = (identified.face, identified.identification);
                let best = decision.candidates.first();
                let named = decision.subject.filter(|_| decision.result == MatchResult::Match);
                let b = face.face.bbox;
                rows.push(IdentifiedFace {
                    image: file.display().to_string(),
                    face: index,
                    name: named.as_ref().map_or_else(|| UNKNOWN.to_string(), |s| s.name.clone()),
                    subject_id: named.map(|s| s.id),
                    score: best.map(|c| c.score),
                    x: b.x,
                    y: b.y,
                    width: b.width,
                    height: b.height,
                });
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(rows)
    })?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Csv => {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            for row in &rows {
                writer.serialize(row)?;
            }
            writer.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `facegate collections migrate --to PACK`: starts the collection's move (or resumes a running one)
/// and runs it here with a progress bar; the kept faces of a batch are stored in one transaction, so an
/// interrupted run loses at most one batch and the next run goes on from there.
pub fn migrate(context: &Context, settings: &Settings, args: &MigrateArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}` in tenant `{}`", args.gallery.collection, args.gallery.tenant);
        };
        let migration = match local.gallery.running_migration(&local.actor, &collection.id).await? {
            Some(running) => {
                println!("resuming the migration of `{}` to pack `{}`", collection.name, running.target.pack);
                running
            }
            None => {
                let pipeline = context.load(&args.to, context.threads)?;
                let target = PackVersion { pack: args.to.clone(), version: pipeline.template_version() };
                let size = u32::try_from(pipeline.embedding_size())?;
                local.gallery.start_migration(&local.actor, &collection.id, target, size).await?
            }
        };
        let pipeline = context.load(&migration.target.pack, context.threads)?;
        let bar = progress(usize::try_from(migration.faces_total)?, "migrating");
        let started = std::time::Instant::now();
        let first_done = migration.faces_migrated;
        let embed = |frames: Vec<KeptFace>| {
            let refs: Vec<&KeptFace> = frames.iter().collect();
            let embedded = pipeline.embed_kept(&refs).map_err(|e| e.to_string());
            std::future::ready(embedded)
        };
        let show = |m: &facegate_store::Migration| {
            bar.set_length(m.faces_total);
            bar.set_position(m.faces_migrated);
        };
        let version = pipeline.template_version();
        let batch = settings.migration_batch;
        let done = local.gallery.run_migration(&local.actor, &collection.id, &version, batch, embed, show).await?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let migrated_now = done.faces_migrated.saturating_sub(first_done);
        if done.state == MigrationState::Finished {
            println!(
                "collection `{}` now uses pack `{}`: {} of {} faces migrated ({migrated_now} in {seconds:.1} s, {:.1} faces/s)",
                collection.name,
                done.target.pack,
                done.faces_migrated,
                done.faces_total,
                migrated_now as f64 / seconds.max(1e-9)
            );
        }
        if !done.faces_without_crop.is_empty() {
            let subjects = local.gallery.subjects(&local.actor, &collection.id).await?;
            let name = |id: &SubjectId| subjects.iter().find(|s| s.id == *id).map_or(id.to_string(), |s| s.name.clone());
            println!("{} faces had no kept frame; these people must enrol again:", done.faces_without_crop.len());
            let mut names: Vec<String> = done.faces_without_crop.iter().map(|f| name(&f.subject_id)).collect();
            names.dedup();
            for person in names {
                println!("  {person}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A card as written on the command line: `FORMAT:FACILITY:NUMBER[@SYSTEM]`.
fn parse_card(text: &str) -> Result<facegate_store::CardCredential> {
    let (card, system) = text.split_once('@').unwrap_or((text, "default"));
    let parts: Vec<&str> = card.split(':').collect();
    let [format, facility, number] = parts.as_slice() else {
        bail!("`{text}`: a card is FORMAT:FACILITY:NUMBER[@SYSTEM], e.g. wiegand26:12:3456");
    };
    let format: facegate_store::CardFormat = serde_json::from_value(serde_json::json!(format))
        .map_err(|_| anyhow::anyhow!("`{format}`: the formats are wiegand26, wiegand34 and raw"))?;
    Ok(facegate_store::CardCredential {
        system: system.to_string(),
        format,
        facility_code: facility.parse().with_context(|| format!("`{facility}` is not a facility code"))?,
        card_number: number.parse().with_context(|| format!("`{number}` is not a card number"))?,
    })
}

/// `facegate cards`: a person's cards, shown or replaced (as JSON).
pub fn cards(settings: &Settings, args: &CardsArgs) -> Result<ExitCode> {
    let cards = args.cards.iter().map(|c| parse_card(c)).collect::<Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}` in tenant `{}`", args.gallery.collection, args.gallery.tenant);
        };
        let subjects = local.gallery.subjects(&local.actor, &collection.id).await?;
        let named: Vec<_> = subjects.iter().filter(|s| s.name == args.person || s.id.as_str() == args.person).collect();
        let subject = match named.as_slice() {
            [one] => one.id.clone(),
            [] => bail!("nobody called `{}` in `{}`", args.person, collection.name),
            _ => bail!("several people are called `{}`: give the subject id", args.person),
        };
        let (gallery, actor) = (&local.gallery, &local.actor);
        let shown = if args.clear || !cards.is_empty() {
            gallery.set_credentials(actor, &collection.id, &subject, cards).await?
        } else {
            gallery.credentials(actor, &collection.id, &subject).await?
        };
        let shown = serde_json::json!({ "subject_id": subject, "credentials": shown });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        Ok(ExitCode::SUCCESS)
    })
}

/// `facegate attendance`: the collection's attendance sheet from its door decisions, as CSV (or JSON).
pub fn attendance(settings: &Settings, args: &AttendanceArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}` in tenant `{}`", args.gallery.collection, args.gallery.tenant);
        };
        let zone = facegate_gallery::time_zone(&args.tz)?;
        let day = |text: &str| text.parse::<jiff::civil::Date>().with_context(|| format!("`{text}` is not YYYY-MM-DD"));
        let from = day(&args.from)?;
        let to = args.to.as_deref().map(day).transpose()?.unwrap_or(from);
        let days = local.gallery.attendance(&local.actor, &collection.id, from, to, &zone).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&days)?);
        } else {
            print!("{}", facegate_gallery::attendance_csv(&days)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}
