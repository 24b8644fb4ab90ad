//! A stored video watched as one job: an upload to the API, where a stream would not fit (a Lambda
//! function's time limit). The video is held in memory, decoded and analysed on the caller's thread (a
//! blocking one), the watch's gallery calls run on the async runtime through `handle`; the caller can
//! stop it between two frames.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Handle;

use crate::VideoError;
use crate::source::{Frames, VideoFile};
use crate::watch::{Watch, WatchEvent, WatchStats};

/// The largest frames a job decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Width × height.
    pub max_pixels: u64,
    /// Width or height on its own.
    pub max_side: u32,
}

/// What a job saw.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// Every event of the watch, in order.
    pub events: Vec<WatchEvent>,
    /// Figures of the watch.
    pub stats: WatchStats,
    /// Seconds of video (the last analysed frame's stream time).
    pub duration_s: f64,
    /// Width and height of the video.
    pub size: (u32, u32),
}

/// Watches all of `video` with `watch`, `per_second` frames a second of video analysed, refusing
/// frames over `limits` (as declared by the container, and as decoded), until its end or `cancel`.
///
/// # Errors
/// [`VideoError::TooLarge`], [`VideoError::Cancelled`], and the errors of decoding and of the watch.
pub fn watch_video(
    mut video: VideoFile,
    per_second: f64,
    limits: FrameLimits,
    handle: &Handle,
    watch: &mut Watch<'_>,
    cancel: &AtomicBool,
) -> Result<JobOutcome, VideoError> {
    let check = |(width, height): (u32, u32)| {
        let over = u64::from(width) * u64::from(height) > limits.max_pixels || width.max(height) > limits.max_side;
        if over {
            return Err(VideoError::TooLarge {
                width,
                height,
                max_pixels: limits.max_pixels,
                max_side: limits.max_side,
            });
        }
        Ok((width, height))
    };
    let mut size = check(video.size())?;
    let mut frames = Frames::at_most(per_second)?;
    let (mut events, mut duration_s) = (Vec::new(), 0.0f64);
    let mut analyse = |frame: crate::Frame, events: &mut Vec<WatchEvent>| -> Result<(), VideoError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(VideoError::Cancelled);
        }
        size = check(frame.image.dimensions())?;
        duration_s = frame.stream_time_s;
        events.extend(handle.block_on(watch.frame(&frame))?);
        Ok(())
    };
    while let Some(packet) = video.next_packet()? {
        if let Some(frame) = frames.decode(&packet)? {
            analyse(frame, &mut events)?;
        }
    }
    for frame in frames.finish()? {
        analyse(frame, &mut events)?;
    }
    events.extend(handle.block_on(watch.finish())?);
    Ok(JobOutcome { events, stats: watch.stats(), duration_s, size })
}
