//! `facegate enroll KNOWN_DIR` and `facegate identify IMG_OR_DIR...`: face_recognition's two verbs on a
//! collection of the local gallery (the embedded store in the data folder unless the settings name
//! PostgreSQL), through the same gallery service as the HTTP API: quality gate, encryption at rest,
//! calibrated decisions and the audit trail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use facegate_core::{DEFAULT_TARGET_FMR, Pipeline};
use facegate_gallery::{Actor, EnrollOptions, FaceChoice, FoundFace, Gallery, MatchResult, OperatingPoint, now_ms};
use facegate_host::Settings;
use facegate_store::{Collection, KeyId, NewCollection, NewSubject, RequestId, SubjectId};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::{EnrollArgs, IdentifyArgs, LocalGalleryArgs, OutputFormat};
use crate::context::{Context, read_image};

/// The key id the audit trail names for decisions made from the command line.
const CLI_KEY_ID: &str = "cli";
/// File extensions read as images in folders.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "gif"];

/// The local gallery and who acts on it.
struct LocalGallery {
    gallery: Gallery,
    actor: Actor,
}

impl LocalGallery {
    async fn open(settings: &Settings, args: &LocalGalleryArgs) -> Result<Self> {
        let store = facegate_host::open_configured_store(settings).await?;
        let keys = Arc::new(facegate_host::configured_local_keys(settings)?);
        let tenant = match store.tenant_by_name(&args.tenant).await? {
            Some(tenant) => tenant,
            None => store.create_tenant(&args.tenant).await?,
        };
        let actor = Actor { tenant_id: tenant.id, key_id: KeyId::from(CLI_KEY_ID), request_id: RequestId::random() };
        Ok(Self { gallery: Gallery::new(store, keys), actor })
    }

    async fn collection(&self, name: &str) -> Result<Option<Collection>> {
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

/// Every face of an image with the sharpness of its aligned crop (what the quality gate checks).
fn found_faces(pipeline: &Pipeline, path: &Path, max_faces: usize) -> Result<Vec<FoundFace>> {
    let analysis = pipeline.analyze_limited(&read_image(path)?, max_faces)?;
    Ok(analysis
        .faces
        .into_iter()
        .zip(&analysis.aligned)
        .map(|(face, aligned)| FoundFace {
            face: face.face,
            embedding: face.embedding,
            sharpness: facegate_core::sharpness(&aligned.image),
        })
        .collect())
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
                    created_at_ms: now_ms(),
                };
                (local.gallery.create_collection(&local.actor, &new).await?, pipeline)
            }
        };
        let operating = OperatingPoint::of(pipeline.calibration(), &collection, None)?;
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
                        created_at_ms: now_ms(),
                    };
                    let subject = local.gallery.create_subject(&local.actor, &collection.id, &new).await?;
                    subjects.insert(name.clone(), subject.id.clone());
                    subject.id
                }
            };
            let mut images = Vec::new();
            let mut notes = Vec::new();
            for (index, file) in files.iter().enumerate() {
                match found_faces(&pipeline, file, settings.max_faces) {
                    Ok(faces) => images.push((index, faces)),
                    Err(error) => notes.push(format!("{}: {error:#}", file.display())),
                }
                bar.inc(1);
            }
            let options = EnrollOptions { face: FaceChoice::Largest, reject_duplicates: false };
            let result =
                local.gallery.enroll(&local.actor, &collection, &subject_id, images, options, operating).await?;
            for rejection in &result.rejected {
                let code = facegate_api::ErrorCode::from(rejection.reason).as_str();
                notes.push(format!("{}: {code}: {}", files[rejection.image_index].display(), rejection.message));
            }
            for accepted in result.accepted.iter().filter(|a| a.possible_duplicate.is_some()) {
                notes.push(format!("{}: also matches another person", files[accepted.image_index].display()));
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
        let operating = OperatingPoint::of(pipeline.calibration(), &collection, args.fmr)?;
        let bar = progress(files.len(), "identifying");
        if files.len() == 1 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut rows = Vec::new();
        for file in &files {
            let faces = match found_faces(&pipeline, file, settings.max_faces) {
                Ok(faces) => faces,
                Err(error) => {
                    bar.suspend(|| eprintln!("skipped {}: {error:#}", file.display()));
                    bar.inc(1);
                    continue;
                }
            };
            let probes: Vec<&[f32]> = faces.iter().map(|f| f.embedding.as_slice()).collect();
            let decisions = local.gallery.identify(&local.actor, &collection, &probes, 1, operating).await?;
            for (index, (face, decision)) in faces.iter().zip(decisions).enumerate() {
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
