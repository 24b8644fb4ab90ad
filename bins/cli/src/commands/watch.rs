//! `facegate watch SOURCE...`: every face of a video file or a camera's RTSP stream tracked and each
//! track named once at the collection's false-match rate, or told unknown and grouped
//! (`facegate-video`), through the same gallery as `enroll` and `identify`: decisions go to the
//! collection's audit trail.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use facegate_core::Pipeline;
use facegate_gallery::OperatingPoint;
use facegate_host::Settings;
use facegate_store::{Collection, SightingFilter};
use facegate_video::{EventKind, LiveOptions, Watch, WatchConfig, WatchEvent, WatchStats, decode_file, watch_camera};

use super::people::{LocalGallery, pipelines};
use crate::args::{SightingsArgs, WatchArgs};
use crate::context::Context;

/// What every source of one run shares.
struct Run<'a> {
    args: &'a WatchArgs,
    local: &'a LocalGallery,
    pipeline: &'a Pipeline,
    collection: &'a Collection,
    operating: OperatingPoint,
}

impl Run<'_> {
    fn watch(&self, camera: String) -> Watch<'_> {
        let config = WatchConfig {
            camera,
            min_face_px: self.args.min_face,
            detect_pixels: self.args.detect_pixels,
            known_only: self.args.known_only,
            cooldown_s: self.args.cooldown.max(0.0),
            ..WatchConfig::default()
        };
        let (local, collection) = (self.local, self.collection.clone());
        Watch::new(self.pipeline, &local.gallery, &local.actor, collection, self.operating, config)
    }
}

/// `facegate watch`.
pub fn run(context: &Context, settings: &Settings, args: &WatchArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}`: enrol people first with `facegate enroll`", args.gallery.collection);
        };
        let pipeline = Arc::new(context.load(&collection.pack, context.threads)?);
        let local = local.analysing(pipelines(settings, &collection.pack, pipeline.clone()));
        let operating = local.gallery.operating_point(&collection, args.fmr)?;
        let run = Run { args, local: &local, pipeline: &pipeline, collection: &collection, operating };
        let (urls, files): (Vec<&str>, Vec<&str>) =
            args.sources.iter().map(String::as_str).partition(|s| s.starts_with("rtsp://"));
        for path in files {
            file(&run, Path::new(path)).await?;
        }
        if !urls.is_empty() {
            cameras(&run, &urls).await?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A video file, as fast as the CPU allows (decoding on a thread of its own, a few frames ahead).
async fn file(run: &Run<'_>, path: &Path) -> Result<()> {
    let camera = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
    let mut watch = run.watch(camera);
    let mut out = std::io::stdout().lock();
    let (started, mut stream_s) = (Instant::now(), 0.0f64);
    for frame in decode_file(path, run.args.fps, 4)? {
        let frame = frame.with_context(|| path.display().to_string())?;
        stream_s = frame.stream_time_s;
        for event in watch.frame(&frame).await? {
            write_event(&mut out, &event, run.args.json)?;
        }
    }
    for event in watch.finish().await? {
        write_event(&mut out, &event, run.args.json)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {stream_s:.2} s of video in {seconds:.2} s, {:.2}x real time; {}",
        path.display(),
        stream_s / seconds.max(1e-9),
        figures(&watch.stats(), seconds)
    );
    Ok(())
}

/// The cameras, together (a frame of each in turn, each camera's queue dropping what the analysis
/// cannot keep up with), until `--duration` has passed or the process is interrupted.
async fn cameras(run: &Run<'_>, urls: &[&str]) -> Result<()> {
    let options = LiveOptions { udp: run.args.udp, per_second: run.args.fps, ..LiveOptions::default() };
    let mut cameras = Vec::with_capacity(urls.len());
    for url in urls {
        let name = camera_name(url);
        let live = watch_camera(url, options.clone()).with_context(|| name.clone())?;
        cameras.push((live, run.watch(name.clone()), name));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let signal = tokio::spawn({
        let stop = stop.clone();
        async move {
            super::serve::shutdown_signal().await;
            stop.store(true, Ordering::Relaxed);
        }
    });
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let deadline = run.args.duration.map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let mut idle = true;
        for (live, watch, _) in &mut cameras {
            let Some(frame) = live.next(Duration::ZERO) else { continue };
            idle = false;
            for event in watch.frame(&frame).await? {
                write_event(&mut out, &event, run.args.json)?;
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(10)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    signal.abort();
    let seconds = started.elapsed().as_secs_f64();
    for (live, mut watch, name) in cameras {
        for event in watch.finish().await? {
            write_event(&mut out, &event, run.args.json)?;
        }
        let stats = live.stats();
        eprintln!(
            "{name}: {} sessions, {} interruptions, longest gap {} ms, {} frames decoded, {} dropped; {}",
            stats.sessions.load(Ordering::Relaxed),
            stats.interruptions.load(Ordering::Relaxed),
            stats.longest_gap_ms.load(Ordering::Relaxed),
            stats.frames.load(Ordering::Relaxed),
            stats.dropped.load(Ordering::Relaxed),
            figures(&watch.stats(), seconds)
        );
    }
    Ok(())
}

/// `facegate sightings`.
pub fn sightings(settings: &Settings, args: &SightingsArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let local = LocalGallery::open(settings, &args.gallery).await?;
        let Some(collection) = local.collection(&args.gallery.collection).await? else {
            bail!("no collection `{}` in tenant `{}`", args.gallery.collection, args.gallery.tenant);
        };
        let subject_id = match &args.subject {
            None => None,
            Some(who) => {
                let subjects = local.gallery.subjects(&local.actor, &collection.id).await?;
                let found = subjects.into_iter().find(|s| s.name == *who || s.id.as_str() == who);
                Some(found.with_context(|| format!("nobody called `{who}` in `{}`", collection.name))?.id)
            }
        };
        let time = |text: &Option<String>| -> Result<Option<i64>> {
            text.as_deref()
                .map(|t| {
                    t.parse::<jiff::Timestamp>()
                        .map(|t| t.as_millisecond())
                        .with_context(|| format!("`{t}` is not RFC 3339"))
                })
                .transpose()
        };
        let filter = SightingFilter {
            subject_id,
            camera: args.camera.clone(),
            decision: None,
            cluster_id: None,
            from_ms: time(&args.from)?,
            until_ms: time(&args.until)?,
            after_seq: None,
            limit: args.limit,
        };
        let mut out = std::io::stdout().lock();
        for seen in local.gallery.sightings(&local.actor, &collection.id, &filter).await? {
            if args.json {
                serde_json::to_writer(&mut out, &seen)?;
                writeln!(out)?;
                continue;
            }
            let s = &seen.sighting;
            let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default();
            let who = match (&seen.subject_name, s.cluster_id) {
                (Some(name), _) => name.clone(),
                (None, Some(cluster)) => format!("unknown #{cluster}"),
                (None, None) => "unknown".into(),
            };
            writeln!(
                out,
                "{} .. {}  {}  track {:>3} ({:.2}-{:.2} s)  {who}",
                at(s.first_seen_ms),
                at(s.last_seen_ms),
                s.camera,
                s.track_id,
                s.stream_first_s,
                s.stream_last_s
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A camera's name in events and messages: its URL without credentials.
fn camera_name(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| "camera".into(), |parsed| facegate_gallery::without_login(&parsed).to_string())
}

fn figures(stats: &WatchStats, seconds: f64) -> String {
    format!(
        "{} frames analysed ({:.1}/s), {} tracks, {} faces embedded (detection {:.2} s, embedding {:.2} s)",
        stats.frames,
        stats.frames as f64 / seconds.max(1e-9),
        stats.tracks,
        stats.embedded,
        stats.detect.as_secs_f64(),
        stats.embed.as_secs_f64(),
    )
}

fn write_event(out: &mut impl std::io::Write, event: &WatchEvent, json: bool) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, event)?;
        writeln!(out)?;
    } else {
        let what = match (event.kind, &event.subject) {
            (EventKind::TrackStarted, _) => "face appears".to_string(),
            (EventKind::Sighted, Some(subject)) => format!("{} ({:.3})", subject.name, event.score.unwrap_or_default()),
            (EventKind::Sighted, None) => "named".to_string(),
            (EventKind::Unknown, _) => format!("unknown #{}", event.cluster_id.unwrap_or_default()),
            (EventKind::TrackEnded, _) => format!("face leaves ({:?})", event.decision),
            (EventKind::DoorDecision, _) => match &event.door {
                Some(door) => format!("door {:?} {:?}", door.access, door.reason),
                None => "door".to_string(),
            },
        };
        writeln!(out, "{:>8.2} s  {}  track {:>3}  {what}", event.stream_time_s, event.camera, event.track_id)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_is_named_without_its_credentials() {
        assert_eq!(camera_name("rtsp://admin:secret@10.0.0.7:554/stream1"), "rtsp://10.0.0.7:554/stream1");
        assert_eq!(camera_name("rtsp://127.0.0.1:8554/clip"), "rtsp://127.0.0.1:8554/clip");
    }
}
