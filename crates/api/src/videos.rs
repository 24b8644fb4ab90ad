//! Stored videos watched as one job (`POST /v1/collections/{c}/videos`): where a camera's stream does
//! not fit (a Lambda function's time limit), a recorded clip is uploaded, watched on a pipeline of the
//! collection's pack like a camera's frames, and its decisions and sightings recorded in the
//! collection. The job holds its pipeline until it ends, and stops at its next frame when the request
//! goes (a timeout, a client that hangs up).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use facegate_gallery::{Actor, OperatingPoint};
use facegate_store::CollectionId;
use facegate_video::{FrameLimits, JobOutcome, VideoError, VideoFile, Watch, WatchConfig, watch_video};

use crate::{ApiError, AppState};

/// How an uploaded video is watched.
pub(crate) struct VideoJob {
    /// The collection faces are named from.
    pub(crate) collection_id: CollectionId,
    /// The encoded video.
    pub(crate) video: Bytes,
    /// Frames a second of video analysed.
    pub(crate) per_second: f64,
    /// The target false-match rate (default: the collection's).
    pub(crate) fmr: Option<f64>,
    /// How the watch sees and decides (its camera name among them).
    pub(crate) config: WatchConfig,
}

/// Sets its flag when dropped: the job stops when the request that started it goes.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Watches an uploaded video for `actor`: every face tracked, each track decided once at the
/// collection's operating point, decisions and sightings recorded.
///
/// # Errors
/// 404 for a missing collection; 400 for a video that cannot be read or is too large a frame; the
/// errors of analysis and of the store.
pub(crate) async fn watch_upload(
    state: &AppState,
    actor: Actor,
    job: VideoJob,
) -> Result<(JobOutcome, OperatingPoint), ApiError> {
    let gallery = state.gallery.clone();
    let collection = gallery.collection(&actor, &job.collection_id).await?;
    let operating = gallery.operating_point(&collection, job.fmr)?;
    let pool = state.analyser.pool(&collection.pack)?.clone();
    let video = VideoFile::from_bytes(job.video)?;
    let decode = state.analyser.limits();
    let limits = FrameLimits { max_pixels: decode.max_pixels, max_side: decode.max_side };
    let (width, height) = video.size();
    // Decoded frames in flight: the decoder's picture and the analysed one, in RGB.
    let frame_bytes = u64::from(width) * u64::from(height) * 3 * 2;
    let reservation = state.analyser.decoding.reserve(frame_bytes).await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop_when_dropped = CancelOnDrop(cancel.clone());
    let handle = tokio::runtime::Handle::current();
    let (per_second, config) = (job.per_second, job.config);
    let outcome = pool
        .run(move |pipeline| {
            let _reservation = reservation;
            let mut watch = Watch::new(pipeline, &gallery, &actor, collection, operating, config);
            Ok(watch_video(video, per_second, limits, &handle, &mut watch, &cancel))
        })
        .await??;
    Ok((outcome, operating))
}

impl From<VideoError> for ApiError {
    fn from(error: VideoError) -> Self {
        match error {
            VideoError::Pipeline(pipeline) => pipeline.into(),
            VideoError::Gallery(gallery) => gallery.into(),
            VideoError::Cancelled => ApiError::internal(error),
            other => ApiError::invalid(format!("the video: {other}")),
        }
    }
}
