//! A folder of labelled faces (`DATASET/<person>/<photo>`), turned into aligned 112×112 crops by
//! facegate's own pipeline. Crops (and frozen embeddings) are cached by the image's sha256 and the
//! pipeline settings, so later epochs and runs never detect again.

use std::fs;
use std::path::{Path, PathBuf};

use facegate_core::{DecodeLimits, Pipeline, decode_image};
use facegate_eval::subject::{RETRY_SCORE_THRESHOLD, find_subject};
use facegate_eval::work::parallel_map;
use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::error::TrainError;

/// File extensions read as photos.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "bmp", "jfif"];

/// The people of a dataset folder and their photos, sorted by name.
#[derive(Debug, Clone)]
pub struct DatasetListing {
    /// The dataset folder.
    pub root: PathBuf,
    /// Each person (folder name) and their photos.
    pub people: Vec<(String, Vec<PathBuf>)>,
    /// People left out by `min_images` (name, image count), when that was allowed.
    pub excluded: Vec<(String, usize)>,
}

impl DatasetListing {
    /// Reads `root`. People with fewer than `min_images` photos are an error unless
    /// `exclude_small` is set, in which case they are listed in `excluded`.
    ///
    /// # Errors
    /// [`TrainError::NotADirectory`], [`TrainError::EmptyDataset`], [`TrainError::TooFewImages`].
    pub fn read(root: &Path, min_images: usize, exclude_small: bool) -> Result<Self, TrainError> {
        if !root.is_dir() {
            return Err(TrainError::NotADirectory(root.to_path_buf()));
        }
        let mut people = Vec::new();
        for entry in sorted_entries(root)? {
            if !entry.is_dir() || is_hidden(&entry) {
                continue;
            }
            let name = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let photos: Vec<PathBuf> =
                sorted_entries(&entry)?.into_iter().filter(|p| p.is_file() && !is_hidden(p) && is_image(p)).collect();
            people.push((name, photos));
        }
        if people.iter().all(|(_, photos)| photos.is_empty()) {
            return Err(TrainError::EmptyDataset(root.to_path_buf()));
        }
        let min = min_images.max(2);
        let small: Vec<(String, usize)> =
            people.iter().filter(|(_, p)| p.len() < min).map(|(n, p)| (n.clone(), p.len())).collect();
        if !small.is_empty() && !exclude_small {
            return Err(TrainError::TooFewImages { min, people: small });
        }
        people.retain(|(_, p)| p.len() >= min);
        Ok(Self { root: root.to_path_buf(), people, excluded: small })
    }

    /// Number of photos.
    pub fn image_count(&self) -> usize {
        self.people.iter().map(|(_, p)| p.len()).sum()
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut entries: Vec<PathBuf> =
        fs::read_dir(dir).map_err(TrainError::io(dir))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    Ok(entries)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_image(path: &Path) -> bool {
    path.extension().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
}

/// One aligned face of the dataset.
#[derive(Debug, Clone)]
pub struct FaceSample {
    /// The photo it came from.
    pub path: PathBuf,
    /// sha256 of the photo's bytes (the cache key).
    pub digest: String,
    /// Index into [`FaceDataset::people`].
    pub person: usize,
    /// The aligned 112×112 crop.
    pub crop: RgbImage,
}

/// The aligned faces of a dataset.
#[derive(Debug, Clone)]
pub struct FaceDataset {
    /// Person names; a sample's `person` indexes this.
    pub people: Vec<String>,
    /// Every usable photo's face, grouped by person in listing order.
    pub samples: Vec<FaceSample>,
    /// Photos without a face, left out because that was allowed.
    pub skipped_faceless: Vec<PathBuf>,
    /// People left out for having too few photos.
    pub excluded_people: Vec<(String, usize)>,
}

/// Where prepared crops and embeddings are kept between runs.
#[derive(Debug, Clone)]
pub struct PrepCache {
    crops: PathBuf,
    embeddings: PathBuf,
}

impl PrepCache {
    /// A cache under `root` for crops made by `pipeline` (its detector, alignment and thresholds are
    /// part of the key, so other settings never see these crops).
    ///
    /// # Errors
    /// [`TrainError::Io`] when the folders cannot be made.
    pub fn new(root: &Path, pipeline: &Pipeline) -> Result<Self, TrainError> {
        let config = pipeline.config();
        let crop_key = fingerprint(&format!(
            "crop-v1 {} {:?} refine={} score={} max_side={} retry={}{}",
            pipeline.detector_spec().sha256,
            config.align,
            config.refine_roll,
            config.detector.score_threshold,
            config.detector.max_side,
            RETRY_SCORE_THRESHOLD,
            crop_variant(pipeline)
        ));
        let embed_key = fingerprint(&format!(
            "embed-v1 {crop_key} {} flip={} norm={:?}",
            pipeline.embedder_spec().sha256,
            config.embedder.mirror_policy() != facegate_core::Mirror::Never,
            config.embedder.normalization
        ));
        let cache =
            Self { crops: root.join("crops").join(crop_key), embeddings: root.join("embeddings").join(embed_key) };
        for dir in [&cache.crops, &cache.embeddings] {
            fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
        }
        Ok(cache)
    }

    fn crop_path(&self, digest: &str) -> PathBuf {
        self.crops.join(format!("{digest}.png"))
    }

    fn faceless_marker(&self, digest: &str) -> PathBuf {
        self.crops.join(format!("{digest}.noface"))
    }

    fn embedding_path(&self, digest: &str) -> PathBuf {
        self.embeddings.join(format!("{digest}.f32"))
    }
}

fn fingerprint(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(TrainError::io(dir))?;
    std::io::Write::write_all(&mut temp, bytes).map_err(TrainError::io(path))?;
    temp.persist(path).map_err(|e| TrainError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// What became of one photo.
enum Prepared {
    Face(FaceSample),
    Faceless(PathBuf),
}

/// Detects and aligns every photo, with one worker thread per pipeline, reading and filling the cache.
/// `progress` is called once per photo.
///
/// # Errors
/// [`TrainError::NoFace`] when photos have no face and `skip_faceless` is not set; unreadable photos;
/// [`TrainError::TooFewImages`] when skipping faceless photos leaves a person with fewer than 2.
pub fn prepare_faces(
    listing: &DatasetListing,
    pipelines: &[Pipeline],
    cache: &PrepCache,
    skip_faceless: bool,
    progress: &(dyn Fn() + Sync),
) -> Result<FaceDataset, TrainError> {
    let jobs: Vec<(usize, &PathBuf)> = listing
        .people
        .iter()
        .enumerate()
        .flat_map(|(person, (_, photos))| photos.iter().map(move |p| (person, p)))
        .collect();
    let results = parallel_map(
        &jobs,
        pipelines,
        |pipeline, &(person, path)| {
            let outcome = prepare_one(pipeline, cache, person, path);
            progress();
            outcome
        },
        lost_worker,
    )?;
    let (mut samples, mut faceless) = (Vec::new(), Vec::new());
    for outcome in results {
        match outcome {
            Prepared::Face(sample) => samples.push(sample),
            Prepared::Faceless(path) => faceless.push(path),
        }
    }
    if !faceless.is_empty() && !skip_faceless {
        return Err(TrainError::NoFace { paths: faceless });
    }
    let people: Vec<String> = listing.people.iter().map(|(name, _)| name.clone()).collect();
    let short: Vec<(String, usize)> = people
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), samples.iter().filter(|s| s.person == i).count()))
        .filter(|(_, n)| *n < 2)
        .collect();
    if !short.is_empty() {
        return Err(TrainError::TooFewImages { min: 2, people: short });
    }
    Ok(FaceDataset { people, samples, skipped_faceless: faceless, excluded_people: listing.excluded.clone() })
}

fn prepare_one(pipeline: &Pipeline, cache: &PrepCache, person: usize, path: &Path) -> Result<Prepared, TrainError> {
    let bytes = fs::read(path).map_err(TrainError::io(path))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let cached = cache.crop_path(&digest);
    if cache.faceless_marker(&digest).exists() {
        return Ok(Prepared::Faceless(path.to_path_buf()));
    }
    if let Ok(image) = image::open(&cached) {
        return Ok(Prepared::Face(FaceSample { path: path.to_path_buf(), digest, person, crop: image.to_rgb8() }));
    }
    let image = decode_image(&bytes, &DecodeLimits::default())
        .map_err(|source| TrainError::Image { path: path.to_path_buf(), source: source.into() })?;
    let Some((face, _)) = find_subject(pipeline, &image)? else {
        write_atomic(&cache.faceless_marker(&digest), b"")?;
        return Ok(Prepared::Faceless(path.to_path_buf()));
    };
    let crop = pipeline.align(&image, &face).image;
    let mut png = Vec::new();
    crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| TrainError::Record(format!("encoding a crop: {e}")))?;
    write_atomic(&cached, &png)?;
    Ok(Prepared::Face(FaceSample { path: path.to_path_buf(), digest, person, crop }))
}

/// The frozen embedder's output for every sample (cached), in sample order.
///
/// # Errors
/// [`TrainError::Pipeline`] when the embedder fails; cache I/O.
pub fn pretrained_embeddings(
    dataset: &FaceDataset,
    pipelines: &[Pipeline],
    cache: &PrepCache,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<f32>>, TrainError> {
    const BATCH: usize = 16;
    let chunks: Vec<&[FaceSample]> = dataset.samples.chunks(BATCH).collect();
    let results = parallel_map(
        &chunks,
        pipelines,
        |pipeline, chunk| {
            let outcome = embed_chunk(pipeline, cache, chunk);
            progress(chunk.len());
            outcome
        },
        lost_worker,
    )?;
    Ok(results.into_iter().flatten().collect())
}

fn lost_worker() -> TrainError {
    TrainError::Config("a worker thread panicked".into())
}

fn embed_chunk(pipeline: &Pipeline, cache: &PrepCache, chunk: &[FaceSample]) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut out: Vec<Option<Vec<f32>>> = chunk
        .iter()
        .map(|s| {
            fs::read(cache.embedding_path(&s.digest))
                .ok()
                .filter(|b| b.len() % 4 == 0 && !b.is_empty())
                .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        })
        .collect();
    let missing: Vec<usize> = (0..chunk.len()).filter(|&i| out[i].is_none()).collect();
    if !missing.is_empty() {
        let crops: Vec<&RgbImage> = missing.iter().map(|&i| &chunk[i].crop).collect();
        let embeddings = pipeline.embed_aligned_pretrained(&crops)?;
        for (&i, embedding) in missing.iter().zip(embeddings) {
            let values = embedding.as_slice().to_vec();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_atomic(&cache.embedding_path(&chunk[i].digest), &bytes)?;
            out[i] = Some(values);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// What else shapes a crop beyond the ArcFace default: a landmark model and another alignment (empty
/// for the default, so caches made before these existed stay valid).
fn crop_variant(pipeline: &Pipeline) -> String {
    let mut variant = String::new();
    if let Some(landmarks) = pipeline.landmark_spec() {
        variant.push_str(&format!(" landmarks={}", landmarks.sha256));
    }
    let alignment = pipeline.alignment();
    if alignment != facegate_core::Alignment::ARCFACE {
        variant.push_str(&format!(" alignment={alignment:?}"));
    }
    variant
}
