//! Running the CPU-bound pipeline off the async runtime: a pool of loaded pipelines (one per worker),
//! each run on tokio's blocking threads, so at most `workers` images are analysed at once and the rest
//! wait in line.
//!
//! Cancellation-safe by construction: the permit and the pipeline slot are taken together into a
//! [`Lease`] that moves into the blocking task, and the lease returns both when that task ends, whatever
//! happens to the request that started it (a client that hangs up, a request timeout).
//!
//! Memory: before an image takes a pipeline, the bytes its decoding will hold (read from its header) are
//! reserved from one [`ByteBudget`] shared by all workers; the reservation travels with the work like
//! the lease. Small images decode side by side; two giant ones take turns.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use facegate_core::{
    AnalyzedFace, DecodeLimits, Embedding, KeptFace, LivenessScore, Pipeline, StageTimings, decode_cost, decode_image,
};
use image::RgbImage;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// Loaded pipelines of one pack.
pub struct PipelinePool {
    pipelines: Vec<Arc<Pipeline>>,
    free: Arc<Mutex<Vec<usize>>>,
    permits: Arc<Semaphore>,
}

/// A pipeline slot and the permit that goes with it; dropping it returns both to the pool.
struct Lease {
    slot: usize,
    free: Arc<Mutex<Vec<usize>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The slot goes back before the permit (dropped after this body), so a permit always finds a slot.
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(self.slot);
    }
}

/// A budget of bytes shared by requests (decoded pixels, request bodies), counted in KiB permits. A share
/// larger than the whole budget takes the whole budget, so it can always be had eventually.
pub(crate) struct ByteBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

/// Bytes per budget permit.
const BUDGET_UNIT: u64 = 1024;

impl ByteBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX).max(1);
        Self { kib: Arc::new(Semaphore::new(total_kib as usize)), total_kib }
    }

    fn share(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX).clamp(1, self.total_kib)
    }

    /// Waits until `bytes` of the budget are free; the permit holds them until dropped.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<OwnedSemaphorePermit, ApiError> {
        self.kib.clone().acquire_many_owned(self.share(bytes)).await.map_err(ApiError::internal)
    }

    /// Waits until decoding `encoded` fits in the budget.
    ///
    /// # Errors
    /// The 4xx of an image whose header is bad or over the limits (nothing is reserved for it).
    pub(crate) async fn reserve_decoding(
        &self,
        encoded: &[u8],
        limits: &DecodeLimits,
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        self.reserve(decode_cost(encoded, limits)?.bytes).await
    }
}

/// How a pool stands: what `/v1/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PoolStatus {
    /// Pipelines in the pool.
    pub workers: usize,
    /// Pipelines analysing an image now.
    pub busy: usize,
    /// Pipelines free now.
    pub free: usize,
}

impl PoolStatus {
    /// Every pipeline is accounted for, so a waiting request will get one. (A lease being taken or
    /// given back counts once in each column for an instant; a lost pipeline would count in neither.)
    pub fn ready(&self) -> bool {
        self.workers > 0 && self.busy + self.free >= self.workers
    }
}

/// An analysed image.
pub struct Analysis {
    /// Decoded image size.
    pub width: u32,
    /// Decoded image height.
    pub height: u32,
    /// Faces found, best detection score first, at most the configured number.
    pub faces: Vec<AnalyzedFace>,
    /// More faces were found than the configured number; only the best ones were analysed.
    pub faces_truncated: bool,
    /// Sharpness of each face's aligned crop (same order), when asked for.
    pub sharpness: Vec<f32>,
    /// Each face on the kept frame (same order), when asked for.
    pub kept: Vec<Option<KeptFace>>,
    /// Each face's liveness (same order), when asked for.
    pub liveness: Vec<LivenessScore>,
    /// Each face's aligned crop, JPEG (same order), when asked for.
    pub crops: Vec<Option<Vec<u8>>>,
    /// Time per stage.
    pub timings: StageTimings,
    /// Time spent decoding.
    pub decode: std::time::Duration,
}

/// What an analysis computes beyond the faces and their embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extras {
    /// Sharpness of each aligned crop (the enrolment gate).
    pub sharpness: bool,
    /// Each face on the kept frame (collections that keep them, migrations).
    pub kept: bool,
    /// Each face's liveness (`?liveness=true`).
    pub liveness: bool,
    /// Each face's aligned crop as a JPEG (shown by the console after an enrolment, never stored).
    pub crops: bool,
}

impl Extras {
    /// What an enrolment needs, and each face's aligned crop when asked for.
    pub fn enrolment(keep_faces: bool, crops: bool) -> Self {
        Self { sharpness: true, kept: keep_faces, liveness: false, crops }
    }

    /// What a door attempt needs: sharpness (its quality gate) and liveness where the door requires it.
    pub fn door(liveness: bool) -> Self {
        Self { sharpness: true, liveness, ..Self::default() }
    }

    /// What a probe needs: each face's liveness when asked.
    pub fn probe(liveness: Option<bool>) -> Self {
        Self { liveness: liveness.unwrap_or(false), ..Self::default() }
    }

    /// What a probe against `collection` needs: liveness when asked, and always where the collection
    /// requires it.
    pub fn probe_against(liveness: Option<bool>, collection: &facegate_store::Collection) -> Self {
        Self::probe(Some(liveness.unwrap_or(false) || collection.liveness_required))
    }
}

impl Analysis {
    /// The largest face and its liveness (when asked for), or 422 `no_face` naming `what`.
    ///
    /// # Errors
    /// 422 `no_face` when the image has no face.
    pub fn largest(self, what: &str) -> Result<(AnalyzedFace, Option<LivenessScore>), ApiError> {
        let mut liveness = self.liveness.into_iter();
        let faces: Vec<Probe> = self.faces.into_iter().map(|face| Probe { face, liveness: liveness.next() }).collect();
        let probe = facegate_core::largest_face(faces)
            .ok_or_else(|| ApiError::new(crate::ErrorCode::NoFace, format!("no face found in {what}")))?;
        Ok((probe.face, probe.liveness))
    }
}

/// A face with its liveness, for choosing the largest.
struct Probe {
    face: AnalyzedFace,
    liveness: Option<LivenessScore>,
}

impl AsRef<facegate_core::DetectedFace> for Probe {
    fn as_ref(&self) -> &facegate_core::DetectedFace {
        &self.face.face
    }
}

impl PipelinePool {
    /// A pool over pipelines of one pack (at least one).
    pub fn new(pipelines: Vec<Pipeline>) -> Self {
        let count = pipelines.len();
        Self {
            pipelines: pipelines.into_iter().map(Arc::new).collect(),
            free: Arc::new(Mutex::new((0..count).collect())),
            permits: Arc::new(Semaphore::new(count)),
        }
    }

    /// Any pipeline of the pool, for its manifest and calibration.
    pub fn first(&self) -> Option<&Arc<Pipeline>> {
        self.pipelines.first()
    }

    /// The pack's calibration table (the same in every pipeline of the pool).
    pub fn calibration(&self) -> Result<&facegate_core::Calibration, ApiError> {
        self.first().map(|p| p.calibration()).ok_or_else(|| ApiError::internal("empty pipeline pool"))
    }

    /// How many pipelines are busy and free.
    pub fn status(&self) -> PoolStatus {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner).len();
        let workers = self.pipelines.len();
        PoolStatus { workers, busy: workers - self.permits.available_permits().min(workers), free }
    }

    /// Runs `work` on a free pipeline on the blocking pool. If the caller stops waiting, the work still
    /// runs to its end and then gives its pipeline back.
    ///
    /// # Errors
    /// [`ApiError`] from `work`; 500 if the work panicked.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Pipeline) -> Result<T, ApiError> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(ApiError::internal)?;
        // No await between taking the permit and building the lease: nothing can be lost in between.
        let slot = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let slot = slot.ok_or_else(|| ApiError::internal("a permit found no free pipeline"))?;
        let lease = Lease { slot, free: self.free.clone(), _permit: permit };
        let pipeline = self.pipelines[slot].clone();
        tokio::task::spawn_blocking(move || {
            let _lease = lease;
            work(&pipeline)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Embeds kept faces with this pool's pack (a migration's target).
    ///
    /// # Errors
    /// 500 when the embedder fails.
    pub async fn embed_kept(&self, faces: Vec<KeptFace>) -> Result<Vec<Embedding>, ApiError> {
        self.run(move |pipeline| {
            let refs: Vec<&KeptFace> = faces.iter().collect();
            Ok(pipeline.embed_kept(&refs)?)
        })
        .await
    }

    /// 400 when liveness is `asked` for and this pool's pack has no liveness models.
    ///
    /// # Errors
    /// 400 `invalid_request`.
    pub fn check_liveness(&self, asked: bool) -> Result<(), ApiError> {
        if asked && self.first().and_then(|p| p.liveness_spec()).is_none() {
            return Err(ApiError::invalid("this pack has no liveness models: ask without `liveness`"));
        }
        Ok(())
    }

    /// The version of the templates this pool's pack makes.
    pub fn template_version(&self) -> String {
        self.first().map(|p| p.template_version()).unwrap_or_default()
    }

    /// Length of this pool's templates.
    pub fn embedding_size(&self) -> u32 {
        self.first().map_or(0, |p| p.embedding_size() as u32)
    }

    /// Decodes and analyses an image: every face (at most `max_faces`) with its embedding.
    ///
    /// # Errors
    /// Typed 4xx errors for bad images.
    pub async fn analyze(
        &self,
        bytes: Bytes,
        limits: DecodeLimits,
        max_faces: usize,
        extras: Extras,
        reservation: OwnedSemaphorePermit,
    ) -> Result<Analysis, ApiError> {
        self.check_liveness(extras.liveness)?;
        self.run(move |pipeline| {
            let _reservation = reservation;
            let started = std::time::Instant::now();
            let image: RgbImage = decode_image(&bytes, &limits)?;
            let decode = started.elapsed();
            let analysis = pipeline.analyze_limited(&image, max_faces)?;
            let (faces, timings) = (analysis.faces, analysis.timings);
            let faces_truncated = analysis.detected > faces.len();
            let sharpness = if extras.sharpness {
                faces.iter().map(|f| facegate_core::face_sharpness(&image, &f.face)).collect()
            } else {
                Vec::new()
            };
            let kept =
                if extras.kept { faces.iter().map(|f| KeptFace::cut(&image, &f.face)).collect() } else { Vec::new() };
            let liveness = if extras.liveness {
                faces.iter().map(|f| pipeline.liveness(&image, &f.face)).collect::<Result<_, _>>()?
            } else {
                Vec::new()
            };
            let crops =
                if extras.crops { faces.iter().map(|f| aligned_jpeg(&image, &f.face)).collect() } else { Vec::new() };
            Ok(Analysis {
                width: image.width(),
                height: image.height(),
                faces,
                faces_truncated,
                sharpness,
                kept,
                liveness,
                crops,
                timings,
                decode,
            })
        })
        .await
    }
}

/// Quality of the aligned crops returned to the console (112×112, a few kB each).
const CROP_JPEG_QUALITY: u8 = 90;

/// The face aligned onto the 112×112 template, as a JPEG.
fn aligned_jpeg(image: &RgbImage, face: &facegate_core::DetectedFace) -> Option<Vec<u8>> {
    let aligned = facegate_core::align_face(image, &face.landmarks)?;
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, CROP_JPEG_QUALITY);
    aligned.image.write_with_encoder(encoder).ok()?;
    Some(jpeg)
}
