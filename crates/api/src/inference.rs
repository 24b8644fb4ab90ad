//! Running the CPU-bound pipeline off the async runtime: a pool of loaded pipelines (one per worker),
//! each run on tokio's blocking threads while holding a permit, so at most `workers` images are
//! analysed at once and the rest wait in line.

use std::sync::{Arc, Mutex};

use facegate_core::{AnalyzedFace, DecodeLimits, Pipeline, StageTimings, decode_image};
use image::RgbImage;
use tokio::sync::Semaphore;

use crate::ApiError;

/// Loaded pipelines of one pack.
pub struct PipelinePool {
    pipelines: Vec<Arc<Pipeline>>,
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
}

/// An analysed image.
pub struct Analysis {
    /// Decoded image size.
    pub width: u32,
    /// Decoded image height.
    pub height: u32,
    /// Faces found, best detection score first, at most the configured number.
    pub faces: Vec<AnalyzedFace>,
    /// Sharpness of each face's aligned crop (same order), when asked for.
    pub sharpness: Vec<f32>,
    /// Time per stage.
    pub timings: StageTimings,
    /// Time spent decoding.
    pub decode: std::time::Duration,
}

impl PipelinePool {
    /// A pool over pipelines of one pack (at least one).
    pub fn new(pipelines: Vec<Pipeline>) -> Self {
        let count = pipelines.len();
        Self {
            pipelines: pipelines.into_iter().map(Arc::new).collect(),
            free: Mutex::new((0..count).collect()),
            permits: Semaphore::new(count),
        }
    }

    /// Any pipeline of the pool, for its manifest and calibration.
    pub fn first(&self) -> Option<&Arc<Pipeline>> {
        self.pipelines.first()
    }

    /// Runs `work` on a free pipeline on the blocking pool.
    ///
    /// # Errors
    /// [`ApiError`] from `work`, or 503 if the pool is closed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Pipeline) -> Result<T, ApiError> + Send + 'static,
    {
        let _permit =
            self.permits.acquire().await.map_err(|_| {
                ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable", "shutting down")
            })?;
        let slot = self
            .free
            .lock()
            .map_err(ApiError::internal)?
            .pop()
            .ok_or_else(|| ApiError::internal("no free pipeline"))?;
        let pipeline = self.pipelines[slot].clone();
        let result = tokio::task::spawn_blocking(move || work(&pipeline)).await;
        self.free.lock().map_err(ApiError::internal)?.push(slot);
        result.map_err(ApiError::internal)?
    }

    /// Decodes and analyses an image: every face (at most `max_faces`) with its embedding.
    ///
    /// # Errors
    /// Typed 4xx errors for bad images.
    pub async fn analyze(
        &self,
        bytes: Vec<u8>,
        limits: DecodeLimits,
        max_faces: usize,
        with_sharpness: bool,
    ) -> Result<Analysis, ApiError> {
        self.run(move |pipeline| {
            let started = std::time::Instant::now();
            let image: RgbImage = decode_image(&bytes, &limits)?;
            let decode = started.elapsed();
            let (faces, aligned, timings) = pipeline.analyze_limited(&image, max_faces)?;
            let sharpness = if with_sharpness {
                aligned.iter().map(|crop| crate::quality::sharpness(&crop.image)).collect()
            } else {
                Vec::new()
            };
            Ok(Analysis { width: image.width(), height: image.height(), faces, sharpness, timings, decode })
        })
        .await
    }
}
