//! `facegate watch VIDEO...`: every face of a video tracked and each track named once at the
//! collection's false-match rate, or told unknown and grouped (`facegate-video`), through the same
//! gallery as `enroll` and `identify`: decisions go to the collection's audit trail.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use facegate_host::Settings;
use facegate_video::{EventKind, Watch, WatchConfig, WatchEvent, decode_file};

use super::people::{LocalGallery, pipelines};
use crate::args::WatchArgs;
use crate::context::Context;

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
        let mut out = std::io::stdout().lock();
        for source in &args.sources {
            let camera = source.file_name().map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into());
            let config = WatchConfig { camera, min_face_px: args.min_face, ..WatchConfig::default() };
            let mut watch = Watch::new(&pipeline, &local.gallery, &local.actor, collection.clone(), operating, config);
            let (started, mut stream_s) = (Instant::now(), 0.0f64);
            // Decoding runs on its own thread, a few frames ahead of the analysis.
            for frame in decode_file(source, args.fps, 4)? {
                let frame = frame.with_context(|| format!("{}", source.display()))?;
                stream_s = frame.stream_time_s;
                for event in watch.frame(&frame).await? {
                    write_event(&mut out, &event, args.json)?;
                }
            }
            for event in watch.finish().await? {
                write_event(&mut out, &event, args.json)?;
            }
            let (stats, seconds) = (watch.stats(), started.elapsed().as_secs_f64());
            eprintln!(
                "{}: {} frames ({stream_s:.2} s of video) in {seconds:.2} s: {:.1} frames/s, {:.2}x real time; {} tracks, {} faces embedded (detection {:.2} s, embedding {:.2} s)",
                source.display(),
                stats.frames,
                stats.frames as f64 / seconds.max(1e-9),
                stream_s / seconds.max(1e-9),
                stats.tracks,
                stats.embedded,
                stats.detect.as_secs_f64(),
                stats.embed.as_secs_f64(),
            );
        }
        Ok(ExitCode::SUCCESS)
    })
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
        };
        writeln!(out, "{:>8.2} s  {}  track {:>3}  {what}", event.stream_time_s, event.camera, event.track_id)?;
    }
    out.flush()?;
    Ok(())
}
