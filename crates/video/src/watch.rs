//! A watch: every face of every frame tracked, each track's best observations embedded and fused (the
//! mean of unit templates), and one calibrated decision per track, asked of the gallery as soon as
//! enough good observations are in; unknown tracks grouped. What happens is told as [`WatchEvent`]s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use facegate_core::{
    BoundingBox, DetectedFace, DetectorConfig, Embedding, Pipeline, face_sharpness, face_shot, face_yaw, jpeg,
};
use facegate_gallery::{
    Access, Actor, CameraEvent, Gallery, Identification, MatchResult, OperatingPoint, TrackEvidence, door_extras,
};
use facegate_store::{Collection, DoorId, DoorReason, EventType, NewSighting, SightingDecision, SubjectId, Zone};
use serde::Serialize;

use crate::VideoError;
use crate::source::Frame;
use crate::track::{TrackId, Tracked, Tracker, TrackerConfig};

/// How a watch sees and decides.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// The camera's (or file's) name in events.
    pub camera: String,
    /// A face smaller than this (the shorter side of its box, pixels) is never named: `too_small`.
    pub min_face_px: f32,
    /// Only enrolled people are reported and kept: an unknown track gives no `identity.unknown`
    /// event, joins no group and leaves no sighting (nobody unenrolled is recorded).
    pub known_only: bool,
    /// A person named on this camera less than this many seconds (stream time) after their last
    /// `identity.sighted` is not announced again (the track is still named and kept as a sighting).
    pub cooldown_s: f64,
    /// Most pixels the detector looks at per frame: a frame within it is searched at its native
    /// resolution (small faces stay findable), a larger one is scaled down to it.
    pub detect_pixels: u64,
    /// Good observations a track needs before it is decided.
    pub decide_after: usize,
    /// Most observations a track keeps embedded (the best by quality).
    pub keep_best: usize,
    /// Once a track has `decide_after` observations, at most one more is embedded per this many frames.
    pub embed_every: u32,
    /// Parts of the frame where faces are ignored (fractions of the frame; a face whose box centre is
    /// inside one is never tracked).
    pub masks: Vec<Zone>,
    /// How tracks are made and ended.
    pub tracker: TrackerConfig,
    /// The door this camera watches: a track with enough good observations is a door attempt on its
    /// best frames (see [`DOOR_FRAMES`], [`DOOR_TRIES`]).
    pub door: Option<DoorId>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            camera: "camera".into(),
            min_face_px: 32.0,
            detect_pixels: DEFAULT_DETECT_PIXELS,
            known_only: false,
            cooldown_s: 0.0,
            decide_after: 3,
            keep_best: 6,
            embed_every: 3,
            masks: Vec::new(),
            tracker: TrackerConfig::default(),
            door: None,
        }
    }
}

/// The detector's default pixel budget per frame: 1920×1080, so up to full HD every frame is searched
/// at its native resolution.
pub const DEFAULT_DETECT_PIXELS: u64 = 1920 * 1080;

/// The detection settings for a `width`×`height` frame within `budget` pixels: the longest side the
/// detector may see, scaled so that the frame's area stays within the budget (never upscaled).
pub fn detection_side(width: u32, height: u32, budget: u64) -> u32 {
    let (longest, area) = (width.max(height), u64::from(width) * u64::from(height));
    if area <= budget {
        return longest;
    }
    let scale = (budget as f64 / area as f64).sqrt();
    ((f64::from(longest) * scale).floor() as u32).max(32)
}

/// Seconds to the millisecond, as events tell times.
fn milliseconds(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// What happened, as a watch tells it (one JSON object per line with `facegate watch --json`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WatchEvent {
    /// What.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// Where.
    pub camera: String,
    /// Which track.
    pub track_id: TrackId,
    /// When, seconds from the stream's first frame.
    pub stream_time_s: f64,
    /// When, by the gallery's clock (RFC 3339).
    pub wall_time: String,
    /// The face's box at that time (the best shot's on decisions and at the end).
    pub bbox: BoundingBox,
    /// Who, on `identity.sighted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectRef>,
    /// The fused template's best score, on decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The threshold at the collection's false-match rate, on decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The false-match rate the threshold is calibrated for, on decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_fmr: Option<f64>,
    /// The group of unknown tracks this one joined, on `identity.unknown` (and at its end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<u64>,
    /// The track's first and last sighting, seconds, at its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen_s: Option<f64>,
    /// See `first_seen_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_s: Option<f64>,
    /// How the track was decided, at its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<TrackDecision>,
    /// The sighting the track left, at its end (`seq` in the collection's sightings; its best shot at
    /// `/v1/collections/{collection}/sightings/{seq}/best-shot`), where one was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sighting_seq: Option<i64>,
    /// What the watched door decided, on `door.decision` (the person and score only where the door
    /// would tell them to whoever stands at it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub door: Option<DoorOutcome>,
}

/// A door's decision on a track's best frames.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DoorOutcome {
    /// The door.
    pub door_id: DoorId,
    /// Open or not.
    pub access: Access,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DoorReason>,
    /// Which try of the track this was (from 1).
    pub attempt: usize,
}

/// The kinds of [`WatchEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum EventKind {
    /// A face appeared.
    #[serde(rename = "face.track.started")]
    TrackStarted,
    /// A track was named (once per track).
    #[serde(rename = "identity.sighted")]
    Sighted,
    /// A track matched nobody enrolled (once per track, at its end).
    #[serde(rename = "identity.unknown")]
    Unknown,
    /// A face left (or the shot changed, or the video ended).
    #[serde(rename = "face.track.ended")]
    TrackEnded,
    /// The camera's door decided on the track's best frames.
    #[serde(rename = "door.decision")]
    DoorDecision,
}

/// How a track ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackDecision {
    /// Named at the collection's false-match rate.
    Named,
    /// Nobody enrolled matched.
    Unknown,
    /// The face never reached the minimum size.
    TooSmall,
}

/// A named subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubjectRef {
    /// Identifier.
    pub id: SubjectId,
    /// Display name.
    pub name: String,
}

/// Figures of a watch so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WatchStats {
    /// Frames analysed.
    pub frames: u64,
    /// Faces detected over all frames.
    pub faces: u64,
    /// Observations embedded.
    pub embedded: u64,
    /// Tracks ended.
    pub tracks: u64,
    /// Time spent detecting.
    pub detect: Duration,
    /// Time spent embedding.
    pub embed: Duration,
}

/// One observation of a track: a face, how good it is, its template.
struct Observation {
    quality: f32,
    embedding: Embedding,
    bbox: BoundingBox,
}

/// The longest side of a best shot kept with a sighting, pixels.
pub const BEST_SHOT_SIDE: u32 = 320;

/// Frames of a track a door decides on: its best few by quality.
pub const DOOR_FRAMES: usize = 3;

/// Door attempts a track may make: a denial the next frames may undo (no usable face, low quality, an
/// unknown person, several faces) is tried again on better frames, after as many new observations as
/// the first try needed; a grant, or a denial for liveness or by the door's policy, is final.
pub const DOOR_TRIES: usize = 3;

/// A track's attempts at the camera's door.
#[derive(Default)]
struct DoorState {
    /// The best frames so far, with their quality.
    frames: Vec<(f32, image::RgbImage)>,
    tries: usize,
    /// Observations since the last try.
    since: usize,
    done: bool,
}

/// What a track has gathered.
struct TrackState {
    observations: Vec<Observation>,
    door: DoorState,
    /// The best observation's face with its surroundings, and its quality.
    best_shot: Option<(f32, image::RgbImage)>,
    decision: Option<Decided>,
    largest_px: f32,
    last_embedded_frame: Option<u64>,
    last_bbox: BoundingBox,
    /// When the face was first and last seen, by the gallery's clock.
    first_seen_ms: i64,
    last_seen_ms: i64,
}

/// A track's decision.
#[derive(Clone)]
enum Decided {
    Named { subject: SubjectRef, score: f32 },
    Unknown { score: Option<f32>, cluster: Option<u64> },
}

/// A watch of one video against one collection.
pub struct Watch<'a> {
    pipeline: &'a Pipeline,
    gallery: &'a Gallery,
    actor: &'a Actor,
    collection: Collection,
    operating: OperatingPoint,
    config: WatchConfig,
    tracker: Tracker,
    tracks: HashMap<TrackId, TrackState>,
    /// When each person was last announced (`identity.sighted`), stream seconds.
    announced: HashMap<SubjectId, f64>,
    stats: WatchStats,
    frame_index: u64,
}

impl<'a> Watch<'a> {
    /// A watch deciding with `pipeline` (the collection's pack) at `operating`, recording in `gallery`
    /// for `actor`.
    pub fn new(
        pipeline: &'a Pipeline,
        gallery: &'a Gallery,
        actor: &'a Actor,
        collection: Collection,
        operating: OperatingPoint,
        config: WatchConfig,
    ) -> Self {
        let tracker = Tracker::new(config.tracker);
        Self {
            pipeline,
            gallery,
            actor,
            collection,
            operating,
            config,
            tracker,
            tracks: HashMap::new(),
            announced: HashMap::new(),
            stats: WatchStats::default(),
            frame_index: 0,
        }
    }

    /// Figures so far.
    pub fn stats(&self) -> WatchStats {
        self.stats
    }

    /// Analyses one frame: detection, tracking, embedding of good observations, decisions.
    ///
    /// # Errors
    /// [`VideoError::Pipeline`] when a model fails; [`VideoError::Gallery`] when a decision cannot be
    /// made or recorded.
    pub async fn frame(&mut self, frame: &Frame) -> Result<Vec<WatchEvent>, VideoError> {
        let (t, image) = (frame.stream_time_s, &frame.image);
        self.frame_index += 1;
        self.stats.frames += 1;
        let started = Instant::now();
        let max_side = detection_side(image.width(), image.height(), self.config.detect_pixels);
        let detector = DetectorConfig { max_side, ..self.pipeline.config().detector };
        let mut faces = self.pipeline.detect_with(image, &detector)?;
        self.stats.detect += started.elapsed();
        if !self.config.masks.is_empty() {
            let (width, height) = (image.width() as f32, image.height() as f32);
            faces.retain(|f| {
                let (x, y) = ((f.bbox.x + f.bbox.width / 2.0) / width, (f.bbox.y + f.bbox.height / 2.0) / height);
                !self.config.masks.iter().any(|mask| mask.contains(x, y))
            });
        }
        self.stats.faces += faces.len() as u64;
        let update = self.tracker.update(image, t, faces);
        let now_ms = self.gallery.now();
        let mut events = Vec::new();
        for ended in update.ended {
            self.end(ended, &mut events).await?;
        }
        for (id, face, started) in update.seen {
            let side = face.bbox.width.min(face.bbox.height);
            if started {
                events.push(self.event(EventKind::TrackStarted, id, t, face.bbox));
                let state = TrackState {
                    observations: Vec::new(),
                    door: DoorState::default(),
                    best_shot: None,
                    decision: None,
                    largest_px: 0.0,
                    last_embedded_frame: None,
                    last_bbox: face.bbox,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                };
                self.tracks.insert(id, state);
            }
            let Some(state) = self.tracks.get_mut(&id) else { continue };
            state.largest_px = state.largest_px.max(side);
            state.last_bbox = face.bbox;
            state.last_seen_ms = now_ms;
            let door_open = self.config.door.is_some() && !state.door.done;
            if (state.decision.is_some() && !door_open) || side < self.config.min_face_px {
                continue;
            }
            let quality = quality(image, &face);
            let full = state.observations.len() >= self.config.keep_best;
            let worst = state.observations.iter().map(|o| o.quality).fold(f32::INFINITY, f32::min);
            let due = state.observations.len() < self.config.decide_after
                || state.last_embedded_frame.is_none_or(|f| self.frame_index - f >= u64::from(self.config.embed_every));
            if !due || (full && quality <= worst) {
                continue;
            }
            let started = Instant::now();
            // A track's fused template is kept (its sighting's: grouped, searched): the best templates.
            let embedding = self.pipeline.embed_faces_with(image, std::slice::from_ref(&face), true)?.pop();
            self.stats.embed += started.elapsed();
            let Some(embedding) = embedding else { continue };
            self.stats.embedded += 1;
            state.last_embedded_frame = Some(self.frame_index);
            if let Some(at) = state.observations.iter().position(|o| o.quality == worst).filter(|_| full) {
                state.observations.swap_remove(at);
            }
            if state.best_shot.as_ref().is_none_or(|(best, _)| quality > *best) {
                state.best_shot = face_shot(image, &face.bbox, BEST_SHOT_SIDE).map(|shot| (quality, shot));
            }
            state.observations.push(Observation { quality, embedding, bbox: face.bbox });
            if door_open {
                keep_door_frame(&mut state.door, quality, image);
            }
            if state.observations.len() >= self.config.decide_after {
                if state.decision.is_none() {
                    self.try_to_name(id, t, &mut events).await?;
                }
                if door_open && let Err(error) = self.try_the_door(id, t, &mut events).await {
                    // A door gone or a store hiccup costs this track its door, not the camera its frame.
                    tracing::warn!(camera = %self.config.camera, track = id, %error, "a door attempt failed");
                    if let Some(state) = self.tracks.get_mut(&id) {
                        state.door.done = true;
                        state.door.frames = Vec::new();
                    }
                }
            }
        }
        self.publish(&events).await?;
        Ok(events)
    }

    /// Sends `events` to the tenant's webhooks subscribed to their types (through the outbox).
    async fn publish(&self, events: &[WatchEvent]) -> Result<(), VideoError> {
        let decisions: Vec<CameraEvent> = events
            .iter()
            .filter_map(|event| {
                let event_type = match event.kind {
                    EventKind::Sighted => EventType::IdentitySighted,
                    EventKind::Unknown => EventType::IdentityUnknown,
                    EventKind::TrackStarted => EventType::FaceTrackStarted,
                    EventKind::TrackEnded => EventType::FaceTrackEnded,
                    // A door's decisions reach webhooks from the door's trail, as every door's do.
                    EventKind::DoorDecision => return None,
                };
                let subject_id = event.subject.as_ref().map(|s| s.id.clone());
                Some(CameraEvent { event_type, subject_id, data: serde_json::to_value(event).ok()? })
            })
            .collect();
        Ok(self.gallery.publish(self.actor, &self.collection.id, decisions).await?)
    }

    /// Ends every open track (the end of the video or stream).
    ///
    /// # Errors
    /// As [`Watch::frame`].
    pub async fn finish(&mut self) -> Result<Vec<WatchEvent>, VideoError> {
        let mut events = Vec::new();
        for ended in self.tracker.finish() {
            self.end(ended, &mut events).await?;
        }
        self.publish(&events).await?;
        Ok(events)
    }

    /// Names the track if its fused template matches someone now.
    async fn try_to_name(&mut self, id: TrackId, t: f64, events: &mut Vec<WatchEvent>) -> Result<(), VideoError> {
        let Some(state) = self.tracks.get(&id) else { return Ok(()) };
        let Some(fused) = fuse(&state.observations) else { return Ok(()) };
        let identity = self.gallery.identity(self.actor, &self.collection, fused.as_slice(), self.operating).await?;
        if identity.result != MatchResult::Match {
            return Ok(());
        }
        let (bbox, score) = (best_shot(&state.observations), best_score(&identity));
        self.gallery.record_identity(self.actor, &self.collection, &identity).await?;
        let Some(subject) = identity.subject else { return Ok(()) };
        let decided = self.sighted(id, t, bbox, subject, score, events);
        if let Some(state) = self.tracks.get_mut(&id) {
            state.decision = Some(decided);
        }
        Ok(())
    }

    /// Has the camera's door decide on the track's best frames, when it is due: the first time the
    /// track has enough observations, then again (up to [`DOOR_TRIES`]) after as many new ones while
    /// the door's denial is one better frames may undo.
    async fn try_the_door(&mut self, id: TrackId, t: f64, events: &mut Vec<WatchEvent>) -> Result<(), VideoError> {
        let Some(door_id) = self.config.door.clone() else { return Ok(()) };
        let Some(state) = self.tracks.get_mut(&id) else { return Ok(()) };
        if state.door.tries > 0 && state.door.since < self.config.decide_after {
            return Ok(());
        }
        state.door.tries += 1;
        state.door.since = 0;
        let attempt = state.door.tries;
        let door = self.gallery.door(self.actor, &door_id).await?;
        let extras = door_extras(&door);
        let mut frames = Vec::with_capacity(state.door.frames.len());
        for (_, frame) in &state.door.frames {
            frames.push(self.pipeline.analyze_image(frame, DOOR_MAX_FACES, extras)?.faces);
        }
        let decision = self.gallery.door_attempt_analysed(self.actor, &door, &self.collection, frames).await?;
        let retry = matches!(
            decision.reason,
            Some(DoorReason::NoFace | DoorReason::LowQuality | DoorReason::UnknownPerson | DoorReason::MultipleFaces)
        );
        if let Some(state) = self.tracks.get_mut(&id) {
            state.door.done = !retry || attempt >= DOOR_TRIES;
            if state.door.done {
                state.door.frames = Vec::new();
            }
        }
        let bbox = self
            .tracks
            .get(&id)
            .map_or(BoundingBox { x: 0.0, y: 0.0, width: 0.0, height: 0.0 }, |s| best_shot(&s.observations));
        let mut event = self.event(EventKind::DoorDecision, id, t, bbox);
        event.subject = decision.subject.map(|s| SubjectRef { id: s.id, name: s.name });
        event.score = decision.score;
        event.threshold = Some(decision.threshold);
        event.target_fmr = Some(decision.target_fmr);
        event.door = Some(DoorOutcome { door_id, access: decision.access, reason: decision.reason, attempt });
        events.push(event);
        Ok(())
    }

    /// A track was named: its `identity.sighted` event, unless the person was announced on this
    /// camera within the cool-down.
    fn sighted(
        &mut self,
        id: TrackId,
        t: f64,
        bbox: BoundingBox,
        subject: facegate_store::Subject,
        score: Option<f32>,
        events: &mut Vec<WatchEvent>,
    ) -> Decided {
        let subject = SubjectRef { id: subject.id, name: subject.name };
        let recent = self.announced.get(&subject.id).is_some_and(|last| t - last < self.config.cooldown_s);
        if !recent {
            self.announced.insert(subject.id.clone(), t);
            let mut event = self.event(EventKind::Sighted, id, t, bbox);
            event.subject = Some(subject.clone());
            self.decorate(&mut event, score);
            events.push(event);
        }
        Decided::Named { subject, score: score.unwrap_or_default() }
    }

    /// A track ended: its last decision (unknown, or too small) if it had none, then its end.
    async fn end(&mut self, track: Tracked, events: &mut Vec<WatchEvent>) -> Result<(), VideoError> {
        self.stats.tracks += 1;
        let Some(state) = self.tracks.remove(&track.id) else { return Ok(()) };
        let t = track.last_seen_s;
        let fused = fuse(&state.observations);
        let decided = match state.decision.clone() {
            Some(decided) => Some(decided),
            None => match &fused {
                // Never large enough to be looked at.
                None => None,
                Some(fused) => Some(self.decide_at_end(track.id, t, &state, fused, events).await?),
            },
        };
        let bbox = if state.observations.is_empty() { state.last_bbox } else { best_shot(&state.observations) };
        let mut end = self.event(EventKind::TrackEnded, track.id, t, bbox);
        end.first_seen_s = Some(milliseconds(track.first_seen_s));
        end.last_seen_s = Some(milliseconds(track.last_seen_s));
        end.decision = Some(match &decided {
            Some(Decided::Named { subject, score }) => {
                end.subject = Some(subject.clone());
                self.decorate(&mut end, Some(*score));
                TrackDecision::Named
            }
            Some(Decided::Unknown { score, cluster }) => {
                end.cluster_id = *cluster;
                self.decorate(&mut end, *score);
                TrackDecision::Unknown
            }
            None => TrackDecision::TooSmall,
        });
        if let Some(sighting) = decided.as_ref().and_then(|d| self.sighting(track.id, &state, d, &end)) {
            let evidence = fused.map(|fused| TrackEvidence {
                template: fused.as_slice().to_vec(),
                best_shot: state.best_shot.as_ref().and_then(|(_, shot)| jpeg(shot)),
            });
            end.sighting_seq = Some(self.gallery.record_sighting(self.actor, &sighting, evidence.as_ref()).await?);
        }
        events.push(end);
        Ok(())
    }

    /// The sighting a decided track leaves: none for a stranger when only the known are kept.
    fn sighting(&self, id: TrackId, state: &TrackState, decided: &Decided, end: &WatchEvent) -> Option<NewSighting> {
        let (decision, subject_id, cluster_id, score) = match decided {
            Decided::Named { subject, score } => {
                (SightingDecision::Named, Some(subject.id.clone()), None, Some(*score))
            }
            Decided::Unknown { .. } if self.config.known_only => return None,
            Decided::Unknown { score, cluster } => (SightingDecision::Unknown, None, *cluster, *score),
        };
        Some(NewSighting {
            collection_id: self.collection.id.clone(),
            camera: self.config.camera.clone(),
            track_id: id,
            decision,
            subject_id,
            cluster_id,
            score,
            first_seen_ms: state.first_seen_ms,
            last_seen_ms: state.last_seen_ms,
            stream_first_s: end.first_seen_s.unwrap_or_default(),
            stream_last_s: end.last_seen_s.unwrap_or_default(),
        })
    }

    /// The decision of a track that ends undecided: a last look with everything it gathered, else
    /// unknown (grouped with the unknown tracks it resembles).
    async fn decide_at_end(
        &mut self,
        id: TrackId,
        t: f64,
        state: &TrackState,
        fused: &Embedding,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Decided, VideoError> {
        let identity = self.gallery.identity(self.actor, &self.collection, fused.as_slice(), self.operating).await?;
        self.gallery.record_identity(self.actor, &self.collection, &identity).await?;
        let (bbox, score) = (best_shot(&state.observations), best_score(&identity));
        if let (MatchResult::Match, Some(subject)) = (identity.result, identity.subject) {
            return Ok(self.sighted(id, t, bbox, subject, score, events));
        }
        if self.config.known_only {
            return Ok(Decided::Unknown { score, cluster: None });
        }
        let cluster = self
            .gallery
            .unknown_cluster(self.actor, &self.collection, fused.as_slice(), self.operating.threshold)
            .await?;
        let mut event = self.event(EventKind::Unknown, id, t, bbox);
        event.cluster_id = Some(cluster);
        self.decorate(&mut event, score);
        events.push(event);
        Ok(Decided::Unknown { score, cluster: Some(cluster) })
    }

    fn event(&self, kind: EventKind, track_id: TrackId, stream_time_s: f64, bbox: BoundingBox) -> WatchEvent {
        let wall_time =
            jiff::Timestamp::from_millisecond(self.gallery.now()).map(|t| t.to_string()).unwrap_or_default();
        WatchEvent {
            kind,
            camera: self.config.camera.clone(),
            track_id,
            stream_time_s: milliseconds(stream_time_s),
            wall_time,
            bbox,
            subject: None,
            score: None,
            threshold: None,
            target_fmr: None,
            cluster_id: None,
            first_seen_s: None,
            last_seen_s: None,
            decision: None,
            sighting_seq: None,
            door: None,
        }
    }

    fn decorate(&self, event: &mut WatchEvent, score: Option<f32>) {
        event.score = score;
        event.threshold = Some(self.operating.threshold);
        event.target_fmr = Some(self.operating.target_fmr);
    }
}

/// Most faces a door frame is analysed for (the door's several-faces rule needs them all).
const DOOR_MAX_FACES: usize = 8;

/// Keeps `image` among the door's best frames if it is one of the [`DOOR_FRAMES`] best so far.
fn keep_door_frame(door: &mut DoorState, quality: f32, image: &image::RgbImage) {
    door.since += 1;
    if door.frames.len() < DOOR_FRAMES {
        door.frames.push((quality, image.clone()));
        return;
    }
    let worst = door.frames.iter().enumerate().min_by(|a, b| a.1.0.total_cmp(&b.1.0)).map(|(at, f)| (at, f.0));
    if let Some((at, _)) = worst.filter(|(_, worst)| quality > *worst) {
        door.frames[at] = (quality, image.clone());
    }
}

/// How good an observation is for naming: big, confidently detected, frontal and sharp faces first.
fn quality(image: &image::RgbImage, face: &DetectedFace) -> f32 {
    let [right_eye, left_eye, ..] = face.landmarks;
    let eyes = ((left_eye.x - right_eye.x).powi(2) + (left_eye.y - right_eye.y).powi(2)).sqrt().max(1.0);
    let yaw = face_yaw(face).min(1.0);
    let frontal = 1.0 - yaw.min(0.5) * 1.6;
    let sharp = (face_sharpness(image, face) / 100.0).min(1.0);
    let size = (eyes / 40.0).min(1.0);
    size * face.score * frontal * (0.5 + 0.5 * sharp)
}

/// The mean of a track's unit templates, normalised (never the best single score).
fn fuse(observations: &[Observation]) -> Option<Embedding> {
    let first = observations.first()?;
    let mut sum = vec![0.0f32; first.embedding.len()];
    for observation in observations {
        for (s, v) in sum.iter_mut().zip(observation.embedding.as_slice()) {
            *s += v;
        }
    }
    Embedding::from_raw(sum)
}

/// The box of the track's best observation.
fn best_shot(observations: &[Observation]) -> BoundingBox {
    observations
        .iter()
        .max_by(|a, b| a.quality.total_cmp(&b.quality))
        .map_or(BoundingBox { x: 0.0, y: 0.0, width: 0.0, height: 0.0 }, |o| o.bbox)
}

fn best_score(identity: &Identification) -> Option<f32> {
    identity.candidates.first().map(|c| c.score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_within_the_pixel_budget_are_searched_at_native_size() {
        assert_eq!(detection_side(1920, 1080, DEFAULT_DETECT_PIXELS), 1920);
        assert_eq!(detection_side(640, 360, DEFAULT_DETECT_PIXELS), 640);
        assert_eq!(detection_side(1080, 1920, DEFAULT_DETECT_PIXELS), 1920, "portrait");
        // 4K within a full-HD budget: half each way.
        assert_eq!(detection_side(3840, 2160, DEFAULT_DETECT_PIXELS), 1920);
        assert_eq!(detection_side(1920, 1080, 1280 * 720), 1280);
    }
}
