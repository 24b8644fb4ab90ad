//! Uploaded videos watched as one job: the way to watch recorded video where a stream does not fit
//! (a Lambda function). The watching is the video crate's, decisions and sightings the gallery's.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use facegate_gallery::{ANALYSED_PER_SECOND, MIN_FACE_PX};
use facegate_store::{CollectionId, Scope};
use facegate_video::WatchConfig;
use serde::Deserialize;

use crate::auth::Caller;
use crate::contract::VideoResponse;
use crate::images::read_video;
use crate::videos::{VideoJob, watch_upload};
use crate::{ApiError, AppState};

/// Query of a video upload.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VideoQuery {
    /// The name its events and sightings carry (default `upload`; 1 to 200 characters).
    pub camera: Option<String>,
    /// Frames a second of video analysed (0.1 to 30, default 10).
    #[param(minimum = 0.1, maximum = 30)]
    pub fps: Option<f64>,
    /// Target false-match rate (default: the collection's), within the calibrated range.
    #[param(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
    /// The smallest face ever named (the shorter side of its box, pixels; default 32).
    #[param(minimum = 8, maximum = 1024)]
    pub min_face_px: Option<f32>,
    /// Keep nothing about people who are not enrolled.
    pub known_only: Option<bool>,
}

fn video_job(collection_id: CollectionId, video: axum::body::Bytes, query: VideoQuery) -> Result<VideoJob, ApiError> {
    let camera = crate::contract::display_name(query.camera.as_deref().unwrap_or("upload"))?;
    let per_second = query.fps.unwrap_or(10.0);
    if !ANALYSED_PER_SECOND.contains(&per_second) {
        return Err(ApiError::invalid("`fps` must be between 0.1 and 30"));
    }
    let min_face_px = query.min_face_px.unwrap_or(32.0);
    if !MIN_FACE_PX.contains(&min_face_px) {
        return Err(ApiError::invalid("`min_face_px` must be between 8 and 1024"));
    }
    let known_only = query.known_only.unwrap_or(false);
    let config = WatchConfig { camera, min_face_px, known_only, ..WatchConfig::default() };
    Ok(VideoJob { collection_id, video, per_second, fmr: query.fmr, config })
}

/// Watches an uploaded video (MP4/MOV/MKV/WebM with H.264, or MJPEG in MKV; the raw body, within the
/// body limit): every face tracked, each track named once at the collection's false-match rate or told
/// unknown, decisions and sightings recorded as a camera's are. Answers every event when the video ends.
#[utoipa::path(post, path = "/v1/collections/{collection}/videos", tag = "monitoring",
    params(("collection" = CollectionId, Path), VideoQuery),
    request_body(content((crate::contract::RawVideo = "application/octet-stream")),
        description = "The video file (also accepted as video/mp4, video/quicktime, video/x-matroska, video/webm, video/x-msvideo)"),
    responses((status = 200, description = "What the video showed", body = VideoResponse)), security(("api_key" = [])))]
pub async fn watch_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    Query(query): Query<VideoQuery>,
    request: Request,
) -> Result<Json<VideoResponse>, ApiError> {
    caller.require(Scope::Search)?;
    // The upload keeps its place in the admission budget until the job ends.
    let upload = read_video(request, &state, &caller).await?;
    let job = video_job(collection_id.clone(), upload.video.clone(), query)?;
    let camera = job.config.camera.clone();
    let (outcome, operating) = watch_upload(&state, caller.actor(), job).await?;
    Ok(Json(VideoResponse {
        collection_id,
        camera,
        duration_s: outcome.duration_s,
        width: outcome.size.0,
        height: outcome.size.1,
        frames_analysed: outcome.stats.frames,
        tracks: outcome.stats.tracks,
        threshold: operating.threshold,
        target_fmr: operating.target_fmr,
        events: outcome.events,
    }))
}
