//! Doors: the decision a door can act on. A burst of 1..n frames from the door's camera becomes
//! `granted` or `denied` with one [`DoorReason`], after the same checks in the same order every time:
//! a face in the frames (the largest face of a frame is the person at the door; another face at least
//! half its size, and big enough for the quality gate, makes the frame ambiguous), quality, liveness
//! (fused over the frames), identity (every usable frame must name the same subject at the door's
//! operating point, and the subject's ignore list must not overrule it), then the door's policy: who is
//! allowed, its weekly schedule in its time zone, anti-passback. Every decision is written to the
//! audit trail before it is answered.

use bytes::Bytes;
use facegate_core::{Extras, FaceAnalysis, LivenessScore, largest_face};
use facegate_store::{
    AntiPassback, AntiPassbackCheck, AuditAction, AuditReason, AuditResult, ChangeAction, Collection, Door, DoorId,
    DoorPolicy, DoorReason, NewDoor, NewEvent, StoreError, Subject, SubjectId, TimeWindow, Weekday,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::collections::{Actor, Missing, missing};
use crate::readers::PanelAnswer;
use crate::recognition::OperatingPoint;
use crate::{Gallery, GalleryError, PanelVerdict};

/// Whether a denial for `reason` may name the person on the wire: only once a live face was identified
/// (the policy said no). A denial for liveness, an unknown person or several faces names nobody and gives
/// no score, so a photo cannot learn whether, and as whom, it is enrolled; the audit trail keeps both for
/// administrators.
pub fn discloses_identity(reason: DoorReason) -> bool {
    matches!(
        reason,
        DoorReason::NotAllowed
            | DoorReason::OutsideSchedule
            | DoorReason::AntiPassback
            | DoorReason::NoCredential
            | DoorReason::PanelGranted
            | DoorReason::PanelDenied
            | DoorReason::PanelOffline
    )
}

/// What the door does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Open.
    Granted,
    /// Stay closed.
    Denied,
}

/// A door's decision on a burst of frames, as it may be told to whoever stands at the door: the person
/// and the scores only where [`DoorReason::discloses_identity`] allows (the audit trail keeps them all).
#[derive(Debug, Clone, PartialEq)]
pub struct DoorDecision {
    /// Open or not.
    pub access: Access,
    /// Why not (none when granted).
    pub reason: Option<DoorReason>,
    /// The person identified, when granted or denied by the policy.
    pub subject: Option<Subject>,
    /// The lowest of the frames' scores for that person, when the person is named.
    pub score: Option<f32>,
    /// The identity threshold applied.
    pub threshold: f32,
    /// The fused liveness score (mean over the frames), where the door requires liveness, when the
    /// person is named.
    pub liveness: Option<f32>,
    /// The liveness threshold applied.
    pub liveness_threshold: Option<f32>,
    /// The false-match rate the threshold was calibrated for.
    pub target_fmr: f64,
    /// Frames received.
    pub frames: usize,
    /// Frames whose face was used.
    pub frames_used: usize,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// What the door's panel said, where the door has a reader and facegate would have let the person in.
    pub panel: Option<crate::PanelVerdict>,
    /// How long the panel took to answer, ms.
    pub panel_ms: Option<u32>,
    /// The text the panel put on the reader's display with its answer (for whoever stands at the door).
    pub panel_text: Option<String>,
}

/// A door policy or door that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DoorProblem {
    /// The time zone is not an IANA name.
    #[error("unknown time zone `{0}` (use an IANA name such as Europe/Paris)")]
    TimeZone(String),
    /// A schedule window is malformed.
    #[error("schedule window {index}: {message}")]
    Window {
        /// Position of the window.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Nobody could ever pass.
    #[error("the door allows nobody: set allow_everyone, allowed_subjects or allowed_groups")]
    NobodyAllowed,
    /// The paired door does not exist, is this door, or decides against another collection.
    #[error("the paired door must be another door of the same collection")]
    Pairing,
    /// An allowed subject is not in the door's collection.
    #[error("allowed subject {0} is not in the door's collection")]
    UnknownSubject(SubjectId),
    /// A target false-match rate that is not a rate.
    #[error("`target_fmr` must be between 0 and 1")]
    TargetFmr,
    /// An attempt without a frame, or with more than [`MAX_DOOR_FRAMES`].
    #[error("a door attempt takes 1 to {MAX_DOOR_FRAMES} frames, not {0}")]
    Frames(usize),
    /// Liveness is required of a collection whose pack has no liveness models.
    #[error("the collection's pack `{0}` has no liveness models: set liveness_required to false")]
    NoLiveness(String),
    /// A door camera's frames were analysed for another collection than the door's.
    #[error("the camera watching this door names faces from another collection than the door's")]
    CameraCollection,
    /// An attendance period that ends before it starts or is too long.
    #[error("the period must end on or after its first day, at most {MAX_ATTENDANCE_DAYS} days in all")]
    Period,
}

/// Longest attendance period, days.
pub const MAX_ATTENDANCE_DAYS: i32 = 366;

/// Most frames of one door attempt (a camera's burst).
pub const MAX_DOOR_FRAMES: usize = 5;

/// A weekly schedule in a time zone, checked once when a door is stored.
struct Schedule {
    zone: jiff::tz::TimeZone,
    /// (days, from minute, to minute) per window.
    windows: Vec<(Vec<Weekday>, u16, u16)>,
}

/// Minutes after midnight of `HH:MM`, two digits each (`24:00`, the end of the day, only where
/// `end_of_day` is allowed: as a window's `to`).
fn minutes(text: &str, end_of_day: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (end_of_day && h == 24 && m == 0))).then_some(h * 60 + m)
}

fn weekday(day: jiff::civil::Weekday) -> Weekday {
    use jiff::civil::Weekday as W;
    match day {
        W::Monday => Weekday::Mon,
        W::Tuesday => Weekday::Tue,
        W::Wednesday => Weekday::Wed,
        W::Thursday => Weekday::Thu,
        W::Friday => Weekday::Fri,
        W::Saturday => Weekday::Sat,
        W::Sunday => Weekday::Sun,
    }
}

/// A time zone by IANA name.
///
/// # Errors
/// [`DoorProblem::TimeZone`] for an unknown name.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, DoorProblem> {
    jiff::tz::TimeZone::get(name).map_err(|_| DoorProblem::TimeZone(name.to_string()))
}

/// The local date and time of `at_ms` in `zone`.
pub fn local_time(zone: &jiff::tz::TimeZone, at_ms: i64) -> jiff::civil::DateTime {
    jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_zoned(zone.clone()).datetime()
}

impl Schedule {
    fn of(timezone: &str, windows: &[TimeWindow]) -> Result<Self, DoorProblem> {
        let zone = time_zone(timezone)?;
        let windows = windows
            .iter()
            .enumerate()
            .map(|(index, w)| {
                let bad = |message: &str| DoorProblem::Window { index, message: message.to_string() };
                let from = minutes(&w.from, false).ok_or_else(|| bad("`from` must be HH:MM, 00:00 to 23:59"))?;
                let to = minutes(&w.to, true).ok_or_else(|| bad("`to` must be HH:MM, 00:00 to 24:00"))?;
                if w.days.is_empty() {
                    return Err(bad("`days` is empty"));
                }
                if from == to {
                    return Err(bad("`from` and `to` are the same time"));
                }
                Ok((w.days.clone(), from, to))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { zone, windows })
    }

    /// Whether the door is open at `at_ms` (always, without windows).
    fn is_open(&self, at_ms: i64) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local = local_time(&self.zone, at_ms);
        let (today, yesterday) = (weekday(local.weekday()), weekday(local.weekday().previous()));
        let minute = u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        self.windows.iter().any(|(days, from, to)| {
            if from < to {
                days.contains(&today) && (*from..*to).contains(&minute)
            } else {
                // Past midnight: the evening of an opening day, or the small hours after one.
                (days.contains(&today) && minute >= *from) || (days.contains(&yesterday) && minute < *to)
            }
        })
    }
}

/// Checks a policy on its own (time zone, windows, someone allowed).
///
/// # Errors
/// The first [`DoorProblem`] found.
pub fn check_policy(policy: &DoorPolicy) -> Result<(), DoorProblem> {
    Schedule::of(&policy.timezone, &policy.schedule)?;
    if !policy.allow_everyone && policy.allowed_subjects.is_empty() && policy.allowed_groups.is_empty() {
        return Err(DoorProblem::NobodyAllowed);
    }
    if policy.target_fmr.is_some_and(|r| !(r > 0.0 && r < 1.0)) {
        return Err(DoorProblem::TargetFmr);
    }
    Ok(())
}

/// Refuses an attempt without a frame or with more than [`MAX_DOOR_FRAMES`].
fn check_frame_count(frames: usize) -> Result<(), DoorProblem> {
    if frames == 0 || frames > MAX_DOOR_FRAMES {
        return Err(DoorProblem::Frames(frames));
    }
    Ok(())
}

/// What a door needs analysed of each frame of an attempt: sharpness (the quality gate), and liveness
/// where the door requires it.
pub fn door_extras(door: &Door) -> Extras {
    Extras { sharpness: true, liveness: door.policy.liveness_required, ..Extras::default() }
}

/// Whether `subject` may pass a door of `policy`.
fn allows(policy: &DoorPolicy, subject: &Subject) -> bool {
    policy.allow_everyone
        || policy.allowed_subjects.contains(&subject.id)
        || subject.groups.iter().any(|g| policy.allowed_groups.contains(g))
}

/// The usable face of each frame, or the reason there is none.
fn usable_faces(frames: Vec<Vec<FaceAnalysis>>, gate: &crate::QualityGate) -> Result<Vec<FaceAnalysis>, DoorReason> {
    let mut faces = Vec::new();
    let mut any_face = false;
    let side = |f: &FaceAnalysis| f.face.bbox.width.min(f.face.bbox.height);
    for frame in frames {
        // Another face counts when it could be someone at the door too: at least half the size of the
        // largest (a bystander far behind, or a false detection in the background, does not).
        let largest = frame.iter().map(side).fold(0.0, f32::max);
        let close = frame.iter().filter(|f| side(f) >= gate.min_face_size.max(largest * 0.5)).count();
        if close > 1 {
            return Err(DoorReason::MultipleFaces);
        }
        let Some(face) = largest_face(frame) else { continue };
        any_face = true;
        if gate.reject_reason(side(&face), face.face.score, face.sharpness.unwrap_or(0.0)).is_none() {
            faces.push(face);
        }
    }
    match (faces.is_empty(), any_face) {
        (false, _) => Ok(faces),
        (true, false) => Err(DoorReason::NoFace),
        (true, true) => Err(DoorReason::LowQuality),
    }
}

/// What a decision found before the policy was applied.
struct Finding {
    subject_id: Option<SubjectId>,
    score: Option<f32>,
    liveness: Option<LivenessScore>,
    frames_used: usize,
}

impl Gallery {
    /// Checks a door against the tenant's data: its collection exists, allowed subjects are in it, the
    /// paired door is another door of the same collection.
    async fn check_door(&self, actor: &Actor, id: Option<&DoorId>, new: &NewDoor) -> Result<(), GalleryError> {
        let collection = self.collection(actor, &new.collection_id).await?;
        // Every attempt decides at the door's operating point: one the collection's pack cannot give is
        // refused now rather than at each attempt.
        if new.policy.liveness_required && !self.analyser.has_liveness(&collection.pack)? {
            return Err(DoorProblem::NoLiveness(collection.pack).into());
        }
        self.operating_point(&collection, new.policy.target_fmr)?;
        check_policy(&new.policy)?;
        if !new.policy.allowed_subjects.is_empty() {
            let found =
                self.store.subjects_by_id(&actor.tenant_id, &new.collection_id, &new.policy.allowed_subjects).await?;
            if let Some(absent) = new.policy.allowed_subjects.iter().find(|s| !found.iter().any(|f| f.id == **s)) {
                return Err(DoorProblem::UnknownSubject(absent.clone()).into());
            }
        }
        if let Some(AntiPassback { paired_door, .. }) = &new.policy.anti_passback {
            let paired = self.store.door(&actor.tenant_id, paired_door).await;
            match paired {
                Ok(p) if Some(&p.id) != id && p.collection_id == new.collection_id => {}
                Ok(_) | Err(StoreError::NotFound) => return Err(DoorProblem::Pairing.into()),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    /// Creates a door.
    ///
    /// # Errors
    /// [`GalleryError::Door`] for a policy that cannot work; [`GalleryError::NotFound`] for a missing
    /// collection; [`StoreError::Conflict`] for a name taken.
    pub async fn create_door(&self, actor: &Actor, new: &NewDoor) -> Result<Door, GalleryError> {
        self.check_door(actor, None, new).await?;
        let audit = self.change(actor, ChangeAction::DoorCreated, "", described(new));
        let new = NewDoor { created_at_ms: audit.at_ms, ..new.clone() };
        Ok(self.store.create_door(&actor.tenant_id, &new, &audit).await?)
    }

    /// Replaces a door's name, collection and policy.
    ///
    /// # Errors
    /// As [`Gallery::create_door`]; [`GalleryError::NotFound`] for a missing door.
    pub async fn replace_door(&self, actor: &Actor, door_id: &DoorId, new: &NewDoor) -> Result<Door, GalleryError> {
        let before = self.door(actor, door_id).await?;
        self.check_door(actor, Some(door_id), new).await?;
        let was = NewDoor {
            collection_id: before.collection_id,
            name: before.name,
            policy: before.policy,
            created_at_ms: before.created_at_ms,
        };
        let details = crate::changes::diff(&described(&was), &described(new));
        let audit = self.change(actor, ChangeAction::DoorReplaced, door_id, details);
        self.store.replace_door(&actor.tenant_id, door_id, new, &audit).await.map_err(missing(Missing::Door))
    }

    /// The tenant's doors.
    ///
    /// # Errors
    /// Store failures.
    pub async fn doors(&self, actor: &Actor) -> Result<Vec<Door>, GalleryError> {
        Ok(self.store.list_doors(&actor.tenant_id).await?)
    }

    /// One door.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn door(&self, actor: &Actor, door_id: &DoorId) -> Result<Door, GalleryError> {
        self.store.door(&actor.tenant_id, door_id).await.map_err(missing(Missing::Door))
    }

    /// Deletes a door; its decisions stay in the trail.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn delete_door(&self, actor: &Actor, door_id: &DoorId) -> Result<(), GalleryError> {
        let before = self.door(actor, door_id).await?;
        let audit = self.change(actor, ChangeAction::DoorDeleted, door_id, serde_json::json!({ "name": before.name }));
        self.store.delete_door(&actor.tenant_id, door_id, &audit).await.map_err(missing(Missing::Door))
    }

    /// Forgets anti-passback presence at a door and its paired door, of one subject or of everyone (a
    /// person let out another way, or everyone at midnight), as an audited change; returns how many
    /// presence records went.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing door.
    pub async fn reset_presence(
        &self,
        actor: &Actor,
        door_id: &DoorId,
        subject_id: Option<&SubjectId>,
    ) -> Result<u64, GalleryError> {
        let door = self.door(actor, door_id).await?;
        let mut doors = vec![door.id.clone()];
        doors.extend(door.policy.anti_passback.map(|a| a.paired_door));
        let details = serde_json::json!({ "doors": doors, "subject_id": subject_id });
        let audit = self.change(actor, ChangeAction::PresenceReset, door_id, details);
        Ok(self.store.reset_presence(&actor.tenant_id, &doors, subject_id, &audit).await?)
    }

    /// Decides a door attempt on a burst of frames (1 to [`MAX_DOOR_FRAMES`] encoded images): reads the
    /// door, its collection and its operating point, has each frame analysed (sharpness, and liveness
    /// where the door requires it), applies the module's order of checks, and records the decision in
    /// the trail before answering it.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing door or collection; [`DoorProblem::Frames`] for no frame
    /// or too many; analysis failures (a bad frame); store and crypto failures.
    pub async fn door_attempt(
        &self,
        actor: &Actor,
        door_id: &DoorId,
        frames: Vec<Bytes>,
    ) -> Result<DoorDecision, GalleryError> {
        let door = self.door(actor, door_id).await?;
        let collection = self.collection(actor, &door.collection_id).await?;
        let operating = self.operating_point(&collection, door.policy.target_fmr)?;
        check_frame_count(frames.len())?;
        let mut analysed = Vec::with_capacity(frames.len());
        for frame in frames {
            analysed.push(self.analyse(&collection, frame, door_extras(&door)).await?.faces);
        }
        self.decide_door(actor, &door, &collection, operating, analysed).await
    }

    /// Decides a door attempt on frames a door camera analysed itself, with the pack of `collection`
    /// (the camera's) and [`door_extras`]: the same checks, the same trail, as [`Gallery::door_attempt`].
    ///
    /// # Errors
    /// [`DoorProblem::CameraCollection`] when the door decides against another collection;
    /// [`DoorProblem::Frames`] for no frame or too many; store and crypto failures.
    pub async fn door_attempt_analysed(
        &self,
        actor: &Actor,
        door: &Door,
        collection: &Collection,
        frames: Vec<Vec<FaceAnalysis>>,
    ) -> Result<DoorDecision, GalleryError> {
        if door.collection_id != collection.id {
            return Err(DoorProblem::CameraCollection.into());
        }
        let operating = self.operating_point(collection, door.policy.target_fmr)?;
        check_frame_count(frames.len())?;
        self.decide_door(actor, door, collection, operating, frames).await
    }

    /// The module's order of checks on analysed frames at the door's operating point, recorded in the
    /// trail before it is answered.
    async fn decide_door(
        &self,
        actor: &Actor,
        door: &Door,
        collection: &Collection,
        operating: OperatingPoint,
        analysed: Vec<Vec<FaceAnalysis>>,
    ) -> Result<DoorDecision, GalleryError> {
        let frame_count = analysed.len();
        let at_ms = self.now();
        let mut finding = Finding { subject_id: None, score: None, liveness: None, frames_used: 0 };
        let reason = match usable_faces(analysed, &self.gate) {
            Err(reason) => Some(reason),
            Ok(faces) => {
                finding.frames_used = faces.len();
                finding.liveness = fused_liveness(faces.iter().map(|f| f.liveness));
                (finding.subject_id, finding.score) =
                    self.identify_frames(&actor.tenant_id, collection, &faces, operating).await?;
                if door.policy.liveness_required && !finding.liveness.is_some_and(|l| l.live) {
                    Some(DoorReason::NotLive)
                } else if finding.subject_id.is_none() {
                    Some(DoorReason::UnknownPerson)
                } else {
                    None
                }
            }
        };
        let subject = match &finding.subject_id {
            Some(id) => {
                self.store.subjects_by_id(&actor.tenant_id, &collection.id, std::slice::from_ref(id)).await?.pop()
            }
            None => None,
        };
        let mut reason = match (reason, &subject) {
            (Some(reason), _) => Some(reason),
            (None, None) => Some(DoorReason::UnknownPerson),
            (None, Some(subject)) => self.policy_reason(door, subject, at_ms),
        };
        // Where the door has a reader, its panel has the last word on whom facegate would let in; a person
        // anti-passback denies is never presented (the panel would open the door).
        let (mut panel, mut panel_ms, mut panel_text) = (None, None, None);
        if let (None, Some(subject)) = (reason, &subject) {
            match self.ask_panel(&actor.tenant_id, door, &subject.id).await? {
                None => {}
                Some(PanelAnswer::StillInside) => reason = Some(DoorReason::AntiPassback),
                Some(PanelAnswer::NoCredential) => reason = Some(DoorReason::NoCredential),
                Some(PanelAnswer::Verdict(reply, ms)) => {
                    (panel, panel_ms, panel_text) = (Some(reply.verdict), Some(ms), reply.text);
                    match reply.verdict {
                        PanelVerdict::Granted => {}
                        PanelVerdict::Denied => reason = Some(DoorReason::PanelDenied),
                        PanelVerdict::Offline => reason = Some(DoorReason::PanelOffline),
                    }
                }
            }
        }
        let granted_by_panel = panel == Some(PanelVerdict::Granted);
        let event = |reason: Option<DoorReason>| {
            let result = if reason.is_none() { AuditResult::Granted } else { AuditResult::Denied };
            // A panel's grant is recorded as such beside facegate's own.
            let reason = reason.or(granted_by_panel.then_some(DoorReason::PanelGranted));
            NewEvent {
                door_id: Some(door.id.clone()),
                reason: reason.map(AuditReason::from),
                liveness: finding.liveness.map(|l| l.score),
                score: finding.score,
                at_ms,
                ..self.event(actor, &collection.id, AuditAction::Door, result, subject.as_ref().map(|s| &s.id))
            }
        };
        if reason.is_none() {
            // A grant is a passage: anti-passback is checked and presence kept in the same transaction.
            let denied = event(Some(DoorReason::AntiPassback));
            let check = door
                .policy
                .anti_passback
                .as_ref()
                .map(|a| AntiPassbackCheck { paired_door: &a.paired_door, denied: &denied });
            if !self.store.record_passage(&actor.tenant_id, &event(None), check).await? {
                reason = Some(DoorReason::AntiPassback);
            }
        } else {
            self.store.append_events(&actor.tenant_id, &[event(reason)]).await?;
        }
        let disclosed = reason.is_none_or(discloses_identity);
        Ok(DoorDecision {
            access: if reason.is_none() { Access::Granted } else { Access::Denied },
            reason,
            subject: subject.filter(|_| disclosed),
            score: finding.score.filter(|_| disclosed),
            threshold: operating.threshold,
            liveness: finding.liveness.map(|l| l.score).filter(|_| disclosed),
            liveness_threshold: finding.liveness.map(|l| l.threshold),
            target_fmr: operating.target_fmr,
            frames: frame_count,
            frames_used: finding.frames_used,
            at_ms,
            panel,
            panel_ms,
            panel_text,
        })
    }

    /// The subject every frame names at or above the threshold (none when they disagree, or when the
    /// subject's ignore list overrules a frame), with the lowest of those scores; or none, with the best
    /// score seen.
    async fn identify_frames(
        &self,
        tenant_id: &facegate_store::TenantId,
        collection: &facegate_store::Collection,
        faces: &[FaceAnalysis],
        operating: OperatingPoint,
    ) -> Result<(Option<SubjectId>, Option<f32>), GalleryError> {
        let probes: Vec<&[f32]> = faces.iter().map(|f| f.embedding.as_slice()).collect();
        let mut best: Vec<Option<crate::Candidate>> = self
            .search_all(tenant_id, collection, &probes, 1)
            .await?
            .into_iter()
            .map(|c| c.into_iter().next())
            .collect();
        let matches: Vec<(&[f32], Option<&crate::Candidate>)> = probes
            .iter()
            .zip(&best)
            .map(|(p, c)| (*p, c.as_ref().filter(|c| c.score >= operating.threshold)))
            .collect();
        let overruled = self.overruled(tenant_id, collection, &matches).await?;
        for (candidate, overruled) in best.iter_mut().zip(overruled) {
            if overruled {
                *candidate = None;
            }
        }
        Ok(match agreed_subject(&best, operating.threshold) {
            Some((subject, score)) => (Some(subject), Some(score)),
            None => (None, best.iter().flatten().map(|c| c.score).reduce(f32::max)),
        })
    }

    /// The policy's reason to deny an identified, live person (anti-passback aside: the store checks it
    /// with the passage), if any. A schedule that no longer reads (a time zone gone from the database)
    /// keeps the door closed.
    fn policy_reason(&self, door: &Door, subject: &Subject, at_ms: i64) -> Option<DoorReason> {
        if !allows(&door.policy, subject) {
            return Some(DoorReason::NotAllowed);
        }
        let open = Schedule::of(&door.policy.timezone, &door.policy.schedule).is_ok_and(|s| s.is_open(at_ms));
        (!open).then_some(DoorReason::OutsideSchedule)
    }
}

/// One person's day at the doors of a collection: what an attendance sheet lists.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttendanceDay {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// The person.
    pub subject_id: SubjectId,
    /// Their name (empty when the subject was erased since).
    pub name: String,
    /// First door passage of the day, local time with its offset (RFC 3339).
    pub first_seen: String,
    /// Last door passage of the day.
    pub last_seen: String,
    /// The doors passed, by name, in order of first passage.
    pub doors: Vec<String>,
    /// Door passages that day.
    pub count: u32,
}

impl Gallery {
    /// Per person and local day in `zone`, the granted door passages of a collection from the day
    /// `from` to the day `to` (included): first and last seen, doors, count. Sorted by date, then name.
    ///
    /// # Errors
    /// [`GalleryError::Door`] for a period that ends first or is too long; [`GalleryError::NotFound`]
    /// for a missing collection.
    pub async fn attendance(
        &self,
        actor: &Actor,
        collection_id: &facegate_store::CollectionId,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
        zone: &jiff::tz::TimeZone,
    ) -> Result<Vec<AttendanceDay>, GalleryError> {
        let days = from.until(to).map_or(-1, |span| span.get_days());
        if !(0..MAX_ATTENDANCE_DAYS).contains(&days) {
            return Err(DoorProblem::Period.into());
        }
        let start = |date: jiff::civil::Date| {
            date.to_zoned(zone.clone()).map(|z| z.timestamp().as_millisecond()).map_err(|_| DoorProblem::Period)
        };
        let (from_ms, to_ms) = (start(from)?, start(to.tomorrow().map_err(|_| DoorProblem::Period)?)?);
        let passages = self
            .store
            .passages(&actor.tenant_id, collection_id, from_ms, to_ms)
            .await
            .map_err(missing(Missing::Collection))?;
        let doors = self.store.list_doors(&actor.tenant_id).await?;
        let door_name = |id: &Option<DoorId>| {
            let id = id.as_ref().map_or("", |d| d.as_str());
            doors.iter().find(|d| d.id == id).map_or_else(|| id.to_string(), |d| d.name.clone())
        };
        let mut ids: Vec<SubjectId> = passages.iter().filter_map(|p| p.event.subject_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let subjects = self.store.subjects_by_id(&actor.tenant_id, collection_id, &ids).await?;
        let mut days: std::collections::BTreeMap<(String, SubjectId), AttendanceDay> = Default::default();
        for passage in passages {
            let Some(subject_id) = passage.event.subject_id.clone() else { continue };
            let local = jiff::Timestamp::from_millisecond(passage.event.at_ms)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                .to_zoned(zone.clone());
            let seen = local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
            let (date, door) = (local.date().to_string(), door_name(&passage.event.door_id));
            let day = days.entry((date.clone(), subject_id.clone())).or_insert_with(|| AttendanceDay {
                date,
                name: subjects.iter().find(|s| s.id == subject_id).map(|s| s.name.clone()).unwrap_or_default(),
                subject_id,
                first_seen: seen.clone(),
                last_seen: seen.clone(),
                doors: Vec::new(),
                count: 0,
            });
            day.last_seen = seen;
            day.count += 1;
            if !day.doors.contains(&door) {
                day.doors.push(door);
            }
        }
        let mut days: Vec<AttendanceDay> = days.into_values().collect();
        days.sort_by(|a, b| (&a.date, &a.name, &a.subject_id).cmp(&(&b.date, &b.name, &b.subject_id)));
        Ok(days)
    }
}

/// An attendance sheet as CSV: `date,subject_id,name,first_seen,last_seen,doors,count`, one row per
/// day (doors joined by `;`).
///
/// # Errors
/// Only if writing to memory fails.
pub fn attendance_csv(days: &[AttendanceDay]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["date", "subject_id", "name", "first_seen", "last_seen", "doors", "count"])?;
    for day in days {
        let (doors, count) = (day.doors.join(";"), day.count.to_string());
        let cells = [&day.date, day.subject_id.as_str(), &day.name, &day.first_seen, &day.last_seen, &doors, &count];
        writer.write_record(cells.map(inert_cell))?;
    }
    let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A CSV cell a spreadsheet will not run: a text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return (what spreadsheets read as a formula) gets a leading `'` (the OWASP advice).
fn inert_cell(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_string() }
}

/// What the configuration trail records of a door: its name, collection and policy.
fn described(door: &NewDoor) -> serde_json::Value {
    serde_json::json!({ "name": door.name, "collection_id": door.collection_id, "policy": door.policy })
}

/// The mean of the frames' liveness scores, with their threshold (none when no frame has one).
fn fused_liveness(scores: impl Iterator<Item = Option<LivenessScore>>) -> Option<LivenessScore> {
    let scores: Vec<LivenessScore> = scores.flatten().collect();
    let first = scores.first()?;
    let score = scores.iter().map(|s| s.score).sum::<f32>() / scores.len() as f32;
    Some(LivenessScore { score, threshold: first.threshold, live: score >= first.threshold })
}

/// The subject every frame names at or above `threshold`, with the lowest of those scores.
fn agreed_subject(best: &[Option<crate::Candidate>], threshold: f32) -> Option<(SubjectId, f32)> {
    let first = best.first()?.as_ref()?;
    best.iter().all(|c| c.as_ref().is_some_and(|c| c.subject_id == first.subject_id && c.score >= threshold)).then(
        || {
            let low = best.iter().flatten().map(|c| c.score).fold(f32::INFINITY, f32::min);
            (first.subject_id.clone(), low)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[Weekday], from: &str, to: &str) -> TimeWindow {
        TimeWindow { days: days.to_vec(), from: from.into(), to: to.into() }
    }

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().expect("timestamp").as_millisecond()
    }

    #[test]
    fn schedules_are_read_in_the_door_time_zone() {
        let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
        let office = Schedule::of("Europe/Paris", &[window(&weekdays, "08:00", "18:00")]).expect("schedule");
        // Monday 30 November 2026: Paris is UTC+1.
        assert!(office.is_open(at("2026-11-30T07:00:00Z")), "08:00 in Paris");
        assert!(!office.is_open(at("2026-11-30T06:59:00Z")), "07:59 in Paris");
        assert!(!office.is_open(at("2026-11-30T17:00:00Z")), "18:00 in Paris is closed");
        assert!(!office.is_open(at("2026-11-28T10:00:00Z")), "Saturday");
        // Summer time: UTC+2.
        assert!(office.is_open(at("2026-07-06T06:00:00Z")) && !office.is_open(at("2026-07-06T16:00:00Z")));
        let night = Schedule::of("UTC", &[window(&[Weekday::Fri], "22:00", "06:00")]).expect("schedule");
        assert!(night.is_open(at("2026-12-04T23:00:00Z")), "Friday night");
        assert!(night.is_open(at("2026-12-05T05:59:00Z")), "the small hours of Saturday");
        assert!(!night.is_open(at("2026-12-05T06:00:00Z")) && !night.is_open(at("2026-12-04T05:00:00Z")));
        assert!(Schedule::of("UTC", &[]).expect("always").is_open(0));
    }

    #[test]
    fn schedules_follow_the_wall_clock_through_daylight_saving() {
        let days = [Weekday::Sun];
        // Sunday 29 March 2026 in Paris: 02:00 becomes 03:00 (01:00 UTC).
        let spring = Schedule::of("Europe/Paris", &[window(&days, "02:30", "05:00")]).expect("schedule");
        assert!(!spring.is_open(at("2026-03-29T00:59:00Z")), "01:59 local, before the window");
        assert!(spring.is_open(at("2026-03-29T01:00:00Z")), "the clock jumps to 03:00, past 02:30: open");
        // Sunday 25 October 2026: 03:00 becomes 02:00 again (01:00 UTC); 02:00-02:59 happens twice.
        let autumn = Schedule::of("Europe/Paris", &[window(&days, "00:00", "02:30")]).expect("schedule");
        assert!(autumn.is_open(at("2026-10-25T00:15:00Z")), "02:15 the first time");
        assert!(!autumn.is_open(at("2026-10-25T00:45:00Z")), "02:45 the first time");
        assert!(autumn.is_open(at("2026-10-25T01:15:00Z")), "02:15 the second time: judged by the wall clock");
        assert!(!autumn.is_open(at("2026-10-25T01:45:00Z")), "02:45 the second time");
    }

    #[test]
    fn malformed_policies_are_refused() {
        assert!(matches!(Schedule::of("Mars/Olympus", &[]), Err(DoorProblem::TimeZone(_))));
        for (from, to) in [("8:00", "18:00"), ("08:00", "25:00"), ("08:60", "09:00"), ("08:00", "08:00")] {
            let refused = Schedule::of("UTC", &[window(&[Weekday::Mon], from, to)]);
            assert!(matches!(refused, Err(DoorProblem::Window { index: 0, .. })), "{from}-{to}");
        }
        assert!(matches!(Schedule::of("UTC", &[window(&[], "08:00", "09:00")]), Err(DoorProblem::Window { .. })));
        assert_eq!(minutes("24:00", true), Some(1440));
        for (from, to) in
            [("+8:00", "18:00"), ("24:00", "06:00"), ("08:00", "+9:00"), ("-1:00", "02:00"), ("08:0", "09:00")]
        {
            let refused = Schedule::of("UTC", &[window(&[Weekday::Mon], from, to)]);
            assert!(matches!(refused, Err(DoorProblem::Window { index: 0, .. })), "{from}-{to}");
        }
    }

    #[test]
    fn attendance_cells_never_run_as_formulas() {
        let day = |name: &str| AttendanceDay {
            date: "2026-12-01".into(),
            subject_id: "s1".into(),
            name: name.into(),
            first_seen: "2026-12-01T08:00:00+01:00".into(),
            last_seen: "2026-12-01T18:00:00+01:00".into(),
            doors: vec!["@front".into()],
            count: 2,
        };
        let names = ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "Ann"];
        let csv = attendance_csv(&names.map(day)).expect("csv");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
        for (row, name) in rows.iter().zip(names) {
            let cell = &row[2];
            if name == "Ann" {
                assert_eq!(cell, "Ann");
            } else {
                assert_eq!(cell, format!("'{name}"), "a formula is written as text");
            }
            assert_eq!(&row[5], "'@front", "door names too");
        }
    }

    #[test]
    fn frames_must_agree_on_one_subject_above_the_threshold() {
        let c = |s: &str, score| Some(crate::Candidate { subject_id: s.into(), face_id: "f".into(), score });
        assert_eq!(agreed_subject(&[c("a", 0.6), c("a", 0.5)], 0.4), Some(("a".into(), 0.5)));
        assert_eq!(agreed_subject(&[c("a", 0.6), c("b", 0.7)], 0.4), None, "two people");
        assert_eq!(agreed_subject(&[c("a", 0.6), c("a", 0.3)], 0.4), None, "one frame below");
        assert_eq!(agreed_subject(&[c("a", 0.6), None], 0.4), None, "an empty gallery");
    }
}
