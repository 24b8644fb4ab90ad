//! A server's cameras: every enabled camera of every tenant (the gallery's camera resources) watched on
//! a thread of its own, with a pipeline per pack loaded for cameras alone (requests keep their pool),
//! its decisions and sightings recorded in its tenant's gallery. The list is read again every few
//! seconds: a camera added, changed, disabled or deleted is started, restarted or stopped without a
//! restart of the server. Every event of every camera is also published to [`LiveEvents`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use facegate_core::Pipeline;
use facegate_gallery::{CameraToRun, Gallery};
use facegate_store::{CameraId, CollectionId};
use tokio::runtime::Handle;

use crate::events::LiveEvents;
use crate::live::{LiveOptions, watch_camera};
use crate::watch::{Watch, WatchConfig};

/// Loads a pipeline of a pack (the host knows where models live).
pub type LoadPipeline = Arc<dyn Fn(&str) -> Result<Pipeline, String> + Send + Sync>;

/// What makes a running camera out of date: a replacement (any change of URL or settings bumps
/// `updated_at_ms`).
type Fingerprint = (i64, CollectionId);

fn fingerprint(to_run: &CameraToRun) -> Fingerprint {
    (to_run.camera.updated_at_ms, to_run.camera.collection_id.clone())
}

struct Running {
    fingerprint: Fingerprint,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    started: std::time::Instant,
}

/// A camera whose watch ended by itself (its collection or pack cannot be used) is started again only
/// after this long, so a broken camera costs a log line every half minute, not every reading.
const RESTART_AFTER: Duration = Duration::from_secs(30);

/// The pipelines cameras share, one per pack, loaded when a camera first needs it.
#[derive(Clone)]
struct CameraPipelines {
    load: LoadPipeline,
    loaded: Arc<Mutex<HashMap<String, Arc<Pipeline>>>>,
}

impl CameraPipelines {
    fn get(&self, pack: &str) -> Result<Arc<Pipeline>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pipeline) = loaded.get(pack) {
            return Ok(pipeline.clone());
        }
        let pipeline = Arc::new((self.load)(pack)?);
        loaded.insert(pack.to_string(), pipeline.clone());
        Ok(pipeline)
    }
}

/// Runs the enabled cameras until `shutdown` completes, reading the list again every `every`; then
/// ends every camera's open tracks (recording their sightings) and returns.
pub async fn run_cameras(
    gallery: Arc<Gallery>,
    live: LiveEvents,
    load: LoadPipeline,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let pipelines = CameraPipelines { load, loaded: Arc::default() };
    let mut running: HashMap<CameraId, Running> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        reconcile(&gallery, &live, &pipelines, &mut running).await;
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    stop_all(running.into_values()).await;
}

/// Starts, restarts and stops cameras so that exactly the enabled ones run, each as last stored.
async fn reconcile(
    gallery: &Arc<Gallery>,
    live: &LiveEvents,
    pipelines: &CameraPipelines,
    running: &mut HashMap<CameraId, Running>,
) {
    let wanted = match gallery.running_cameras().await {
        Ok((opened, failed)) => {
            for (tenant, camera) in failed {
                tracing::warn!(%tenant, %camera, "a camera's URL cannot be opened; it is not watched");
            }
            opened
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the cameras to watch; keeping those running");
            return;
        }
    };
    let fingerprints: HashMap<&CameraId, Fingerprint> = wanted.iter().map(|c| (&c.camera.id, fingerprint(c))).collect();
    let stale: Vec<CameraId> = running
        .iter()
        .filter(|(id, r)| {
            let gave_up = r.thread.is_finished() && r.started.elapsed() >= RESTART_AFTER;
            fingerprints.get(id) != Some(&r.fingerprint) || gave_up
        })
        .map(|(id, _)| id.clone())
        .collect();
    stop_all(stale.iter().filter_map(|id| running.remove(id))).await;
    for to_run in wanted {
        if running.contains_key(&to_run.camera.id) {
            continue;
        }
        let (id, fingerprint) = (to_run.camera.id.clone(), fingerprint(&to_run));
        let stop = Arc::new(AtomicBool::new(false));
        let (gallery, pipelines, handle, flag) = (gallery.clone(), pipelines.clone(), Handle::current(), stop.clone());
        let live = live.clone();
        let name = format!("facegate-camera-{}", to_run.camera.name.chars().take(16).collect::<String>());
        let camera = to_run.camera.name.clone();
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || watch(&handle, &gallery, &live, &pipelines, to_run, &flag))
        {
            Ok(thread) => {
                tracing::info!(%id, %camera, "watching a camera");
                running.insert(id, Running { fingerprint, stop, thread, started: std::time::Instant::now() });
            }
            Err(error) => tracing::warn!(%id, %error, "cannot start a camera's thread"),
        }
    }
}

/// Stops cameras and waits for each to record the end of its tracks.
async fn stop_all(cameras: impl Iterator<Item = Running>) {
    let threads: Vec<JoinHandle<()>> = cameras
        .map(|r| {
            r.stop.store(true, Ordering::Relaxed);
            r.thread
        })
        .collect();
    if threads.is_empty() {
        return;
    }
    let joined = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    if let Err(error) = joined {
        tracing::warn!(%error, "a camera's thread ended badly");
    }
}

/// One camera, on its own thread, until `stop`: frames from its stream through a watch against its
/// collection; the gallery's async calls run on the server's runtime through `handle`.
fn watch(
    handle: &Handle,
    gallery: &Gallery,
    hub: &LiveEvents,
    pipelines: &CameraPipelines,
    to_run: CameraToRun,
    stop: &AtomicBool,
) {
    let CameraToRun { actor, camera, url } = to_run;
    let settings = &camera.settings;
    let collection = match handle.block_on(gallery.collection(&actor, &camera.collection_id)) {
        Ok(collection) => collection,
        Err(error) => return tracing::warn!(camera = %camera.id, %error, "the camera's collection cannot be read"),
    };
    let pipeline = match pipelines.get(&collection.pack) {
        Ok(pipeline) => pipeline,
        Err(error) => return tracing::warn!(camera = %camera.id, %error, "the camera's pack cannot be loaded"),
    };
    let operating = match gallery.operating_point(&collection, None) {
        Ok(operating) => operating,
        Err(error) => return tracing::warn!(camera = %camera.id, %error, "the collection has no operating point"),
    };
    let options = LiveOptions {
        udp: settings.udp,
        per_second: settings.detections_per_second,
        egress: Some(gallery.camera_egress().clone()),
        ..LiveOptions::default()
    };
    let live = match watch_camera(&url, options) {
        Ok(live) => live,
        Err(error) => return tracing::warn!(camera = %camera.id, %error, "the camera cannot be read"),
    };
    drop(url);
    let config = WatchConfig {
        camera: camera.name.clone(),
        min_face_px: settings.min_face_px,
        detect_pixels: settings.detect_pixels,
        known_only: settings.known_only,
        cooldown_s: settings.cooldown_s,
        masks: settings.masks.clone(),
        door: settings.door_id.clone(),
        ..WatchConfig::default()
    };
    let mut watching = Watch::new(&pipeline, gallery, &actor, collection, operating, config);
    while !stop.load(Ordering::Relaxed) {
        let Some(frame) = live.next(Duration::from_millis(200)) else { continue };
        match handle.block_on(watching.frame(&frame)) {
            Ok(events) => events.into_iter().for_each(|e| hub.publish(&actor.tenant_id, e)),
            Err(error) => tracing::warn!(camera = %camera.id, %error, "a frame could not be analysed"),
        }
    }
    match handle.block_on(watching.finish()) {
        Ok(events) => events.into_iter().for_each(|e| hub.publish(&actor.tenant_id, e)),
        Err(error) => tracing::warn!(camera = %camera.id, %error, "the camera's last tracks could not be recorded"),
    }
    let stats = watching.stats();
    tracing::info!(camera = %camera.id, frames = stats.frames, tracks = stats.tracks, "stopped watching a camera");
}
