//! Faces on video, the third use facegate exists for (after doors and attendance): a video file's
//! frames decoded in process ([`VideoFile`], [`Frames`]: MP4/MOV with H.264, MKV/WebM with H.264 or
//! MJPEG; OpenH264 built from source, no ffmpeg) or a camera's RTSP stream ([`watch_camera`]: reconnection, stalls, a queue that
//! drops the oldest frames), every face tracked ([`Tracker`]), each track's best observations embedded and
//! fused, and one calibrated decision per track asked of the gallery ([`Watch`]), told as
//! [`WatchEvent`]s. The gallery decides and records; this crate sees.

mod avi;
mod cameras;
mod events;
mod job;
mod live;
mod mkv;
mod source;
mod track;
mod watch;

pub use avi::AviSource;
pub use cameras::{LoadPipeline, run_cameras};
pub use events::{LiveEvent, LiveEvents};
pub use job::{FrameLimits, JobOutcome, watch_video};
pub use live::{LiveFrames, LiveOptions, LiveStats, watch_camera};
pub use mkv::MkvSource;
pub use source::{Codec, Frame, Frames, Input, Mp4Source, Packet, VideoFile, decode_file};
pub use track::{TrackId, Tracked, Tracker, TrackerConfig, Update, iou};
pub use watch::{
    DEFAULT_DETECT_PIXELS, EventKind, SubjectRef, TrackDecision, Watch, WatchConfig, WatchEvent, WatchStats,
    detection_side,
};

/// Why a video could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The file cannot be read.
    #[error("cannot open the video: {0}")]
    Open(String),
    /// The container cannot be read (not MP4/MOV, or damaged).
    #[error("cannot read the container: {0}")]
    Container(String),
    /// No video track facegate decodes (H.264, or Motion JPEG in Matroska or AVI).
    #[error("the file has no H.264 or Motion JPEG video track")]
    NoVideo,
    /// The decoder refused the stream.
    #[error("cannot decode the video: {0}")]
    Codec(String),
    /// A model failed.
    #[error(transparent)]
    Pipeline(#[from] facegate_core::PipelineError),
    /// The gallery could not decide or record.
    #[error(transparent)]
    Gallery(#[from] facegate_gallery::GalleryError),
    /// The video is larger than the caller allows.
    #[error("the video is {width}x{height}; at most {max_pixels} pixels a frame and {max_side} a side")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The most pixels a frame may have.
        max_pixels: u64,
        /// The longest side allowed.
        max_side: u32,
    },
    /// The caller stopped waiting.
    #[error("the watch was cancelled")]
    Cancelled,
}

impl VideoError {
    /// The same error naming the file it is about (messages about the container and the file).
    pub(crate) fn about(self, file: &str) -> Self {
        match self {
            Self::Open(message) => Self::Open(format!("{file}: {message}")),
            Self::Container(message) => Self::Container(format!("{file}: {message}")),
            other => other,
        }
    }
}
