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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use axum::body::Bytes;
use facegate_core::{
    Calibration, DecodeLimits, Embedding, Extras, ImageAnalysis, KeptFace, Pipeline, PipelineError, decode_cost,
};
use facegate_gallery::{Analyser, AnalysisError};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{ApiConfig, Metrics};

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
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<OwnedSemaphorePermit, AnalysisError> {
        let permit = self.kib.clone().acquire_many_owned(self.share(bytes)).await;
        permit.map_err(|e| AnalysisError::Failed(e.to_string()))
    }

    /// Waits until decoding `encoded` fits in the budget.
    ///
    /// # Errors
    /// The 4xx of an image whose header is bad or over the limits (nothing is reserved for it).
    pub(crate) async fn reserve_decoding(
        &self,
        encoded: &[u8],
        limits: &DecodeLimits,
    ) -> Result<OwnedSemaphorePermit, AnalysisError> {
        let cost = decode_cost(encoded, limits).map_err(PipelineError::from)?;
        self.reserve(cost.bytes).await
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
    ///
    /// # Errors
    /// [`AnalysisError::Failed`] for an empty pool.
    pub fn calibration(&self) -> Result<&Calibration, AnalysisError> {
        self.first().map(|p| p.calibration()).ok_or_else(|| AnalysisError::Failed("empty pipeline pool".into()))
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
    /// The error of `work`; [`AnalysisError::Failed`] if the work panicked.
    pub async fn run<T, F>(&self, work: F) -> Result<T, AnalysisError>
    where
        T: Send + 'static,
        F: FnOnce(&Pipeline) -> Result<T, AnalysisError> + Send + 'static,
    {
        let failed = |e: &dyn std::fmt::Display| AnalysisError::Failed(e.to_string());
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| failed(&e))?;
        // No await between taking the permit and building the lease: nothing can be lost in between.
        let slot = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let slot = slot.ok_or_else(|| AnalysisError::Failed("a permit found no free pipeline".into()))?;
        let lease = Lease { slot, free: self.free.clone(), _permit: permit };
        let pipeline = self.pipelines[slot].clone();
        tokio::task::spawn_blocking(move || {
            let _lease = lease;
            work(&pipeline)
        })
        .await
        .map_err(|e| failed(&e))?
    }

    /// Whether this pool's pack has liveness models.
    pub fn has_liveness(&self) -> bool {
        self.first().and_then(|p| p.liveness_spec()).is_some()
    }

    /// The version of the templates this pool's pack makes.
    pub fn template_version(&self) -> String {
        self.first().map(|p| p.template_version()).unwrap_or_default()
    }

    /// Length of this pool's templates.
    pub fn embedding_size(&self) -> u32 {
        self.first().map_or(0, |p| p.embedding_size() as u32)
    }
}

/// The packs this server has loaded, as the gallery's [`Analyser`]: each image's decoding is reserved
/// from one byte budget (read from its header), the image is analysed on a free pipeline of its pack's
/// pool off the async runtime, and its stage timings are recorded.
pub struct Packs {
    pools: Arc<HashMap<String, Arc<PipelinePool>>>,
    limits: DecodeLimits,
    max_faces: usize,
    /// Decoded pixel bytes reserved by images being analysed.
    pub(crate) decoding: ByteBudget,
    metrics: Arc<Metrics>,
}

impl Packs {
    /// The analyser over `pools` within `config`'s image limits, recording into `metrics`.
    pub(crate) fn new(
        pools: Arc<HashMap<String, Arc<PipelinePool>>>,
        config: &ApiConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            pools,
            limits: config.decode_limits(),
            max_faces: config.max_faces,
            decoding: ByteBudget::new(config.max_decoding_bytes.max(config.max_decoded_bytes)),
            metrics,
        }
    }

    /// The pool of `pack`.
    ///
    /// # Errors
    /// [`AnalysisError::UnknownPack`], naming the packs that are loaded.
    pub fn pool(&self, pack: &str) -> Result<&Arc<PipelinePool>, AnalysisError> {
        self.pools.get(pack).ok_or_else(|| {
            let mut loaded: Vec<String> = self.pools.keys().cloned().collect();
            loaded.sort();
            AnalysisError::UnknownPack { pack: pack.to_string(), loaded }
        })
    }

    /// The limits images are decoded within.
    pub(crate) fn limits(&self) -> DecodeLimits {
        self.limits
    }
}

#[async_trait]
impl Analyser for Packs {
    fn calibration(&self, pack: &str) -> Result<&Calibration, AnalysisError> {
        self.pool(pack)?.calibration()
    }

    fn template_version(&self, pack: &str) -> Option<String> {
        self.pools.get(pack).map(|p| p.template_version())
    }

    fn embedding_size(&self, pack: &str) -> Result<u32, AnalysisError> {
        Ok(self.pool(pack)?.embedding_size())
    }

    fn has_liveness(&self, pack: &str) -> Result<bool, AnalysisError> {
        Ok(self.pool(pack)?.has_liveness())
    }

    async fn analyse(&self, pack: &str, image: Bytes, extras: Extras) -> Result<ImageAnalysis, AnalysisError> {
        let pool = self.pool(pack)?;
        if extras.liveness && !pool.has_liveness() {
            return Err(AnalysisError::NoLiveness);
        }
        let reservation = self.decoding.reserve_decoding(&image, &self.limits).await?;
        let (limits, max_faces) = (self.limits, self.max_faces);
        let analysis = pool
            .run(move |pipeline| {
                let _reservation = reservation;
                Ok(pipeline.analyze_encoded(&image, &limits, max_faces, extras)?)
            })
            .await?;
        let metrics = &self.metrics;
        metrics.stage("decode", analysis.decode);
        metrics.stage("detect", analysis.timings.detect);
        metrics.stage("align", analysis.timings.align);
        metrics.stage("embed", analysis.timings.embed);
        Ok(analysis)
    }

    async fn embed_kept(&self, pack: &str, faces: Vec<KeptFace>) -> Result<Vec<Embedding>, AnalysisError> {
        self.pool(pack)?
            .run(move |pipeline| {
                let refs: Vec<&KeptFace> = faces.iter().collect();
                Ok(pipeline.embed_kept(&refs)?)
            })
            .await
    }
}
