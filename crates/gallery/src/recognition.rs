//! Decisions on images: enrolment (face choice, quality gate, duplicate check), identification with its
//! "unknown" answer, top-k search and 1:1 verification, each at an [`OperatingPoint`] of the collection's
//! pack (the one place a score becomes match or unknown). The gallery reads the collection, its pack's
//! calibration and any running migration itself, and has the images analysed through its
//! [`Analyser`](crate::Analyser), so callers parse, call once and render.

use std::time::{Duration, Instant};

use bytes::Bytes;
use facegate_core::{
    BoundingBox, Calibration, DetectedFace, Embedding, Extras, FaceAnalysis, ImageAnalysis, LivenessScore, largest_face,
};
use facegate_store::{
    AuditAction, AuditResult, Collection, CollectionId, FaceId, NewEvent, PackVersion, Subject, SubjectId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::AnalysisError;
use crate::collections::{Actor, Missing, missing_in};
use crate::{Candidate, FaceToEnroll, Gallery, GalleryError, TemplatePacks};

/// The outcome of an identification: a subject at or above the threshold, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchResult {
    /// The best candidate scored at or above the threshold.
    Match,
    /// Nobody in the gallery scored at or above the threshold.
    Unknown,
}

/// Which face of an enrolment image is the subject's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaceChoice {
    /// The image must hold exactly one face.
    #[default]
    Only,
    /// The largest face is taken; others are ignored.
    Largest,
}

/// Why an enrolment image was not enrolled (besides being unreadable, which the caller decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No face was found.
    NoFace,
    /// Several faces, and [`FaceChoice::Only`] was asked.
    MultipleFaces,
    /// The face fails the [`QualityGate`].
    LowQuality,
    /// The face matches another subject and duplicates are refused.
    Duplicate,
}

/// An enrolment image the gallery refused, with a message for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Position of the image in the request.
    pub image_index: usize,
    /// Why.
    pub reason: RejectReason,
    /// What to change.
    pub message: String,
}

/// Thresholds of the enrolment quality gate: a face must be big enough, confidently detected and sharp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityGate {
    /// Smallest accepted face box side, pixels.
    pub min_face_size: f32,
    /// Smallest accepted detector score.
    pub min_detection_score: f32,
    /// Smallest accepted sharpness (variance of the Laplacian of the aligned grey crop).
    pub min_sharpness: f32,
}

impl Default for QualityGate {
    fn default() -> Self {
        Self { min_face_size: 48.0, min_detection_score: 0.75, min_sharpness: 40.0 }
    }
}

impl QualityGate {
    /// Whether an enrolment image passes: `count` faces were found, `largest` is the largest with its
    /// sharpness, and `choice` says which face is the subject. `Ok` carries the face's size (the
    /// smaller side of its box, pixels); `Err` why the image is refused and what to change. The live
    /// feedback of `POST /v1/detect?quality=true` asks the same.
    pub fn judge(
        &self,
        count: usize,
        largest: Option<(&DetectedFace, f32)>,
        choice: FaceChoice,
    ) -> Result<f32, (RejectReason, String)> {
        if count > 1 && choice == FaceChoice::Only {
            return Err((RejectReason::MultipleFaces, format!("{count} faces found; send one, or set face=largest")));
        }
        let Some((face, sharpness)) = largest else {
            return Err((RejectReason::NoFace, "no face found".into()));
        };
        let size = face.bbox.width.min(face.bbox.height);
        match self.reject_reason(size, face.score, sharpness) {
            Some(message) => Err((RejectReason::LowQuality, message)),
            None => Ok(size),
        }
    }

    /// Why a face fails the gate, or `None` if it passes.
    pub fn reject_reason(&self, face_size: f32, detection_score: f32, sharpness: f32) -> Option<String> {
        if face_size < self.min_face_size {
            Some(format!("face is {face_size:.0} px, at least {:.0} px needed", self.min_face_size))
        } else if detection_score < self.min_detection_score {
            Some(format!("detection score {detection_score:.2} is below {:.2}", self.min_detection_score))
        } else if sharpness < self.min_sharpness {
            Some(format!("face is blurred (sharpness {sharpness:.0}, at least {:.0} needed)", self.min_sharpness))
        } else {
            None
        }
    }
}

/// The decision rule of a collection at a target false-match rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct OperatingPoint {
    /// Scores at or above it are a match.
    pub threshold: f32,
    /// The false-match rate it was calibrated for.
    pub target_fmr: f64,
}

impl OperatingPoint {
    /// The threshold of `calibration` at `target_fmr`.
    ///
    /// # Errors
    /// [`GalleryError::Calibration`]: no calibration, or a rate outside its range.
    pub fn at(calibration: &Calibration, target_fmr: f64) -> Result<Self, GalleryError> {
        Ok(Self { threshold: calibration.threshold_for(target_fmr)?, target_fmr })
    }

    /// As [`OperatingPoint::at`], at the collection's own rate when none is asked.
    ///
    /// # Errors
    /// [`GalleryError::Calibration`]: no calibration, or a rate outside its range.
    pub fn of(
        calibration: &Calibration,
        collection: &Collection,
        target_fmr: Option<f64>,
    ) -> Result<Self, GalleryError> {
        Self::at(calibration, target_fmr.unwrap_or(collection.target_fmr))
    }

    fn result(&self, best: Option<&Candidate>) -> MatchResult {
        if best.is_some_and(|c| c.score >= self.threshold) { MatchResult::Match } else { MatchResult::Unknown }
    }
}

/// How an enrolment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnrollOptions {
    /// Which face of an image is the subject's.
    pub face: FaceChoice,
    /// Refuse faces that match another subject (otherwise they are enrolled and flagged).
    pub reject_duplicates: bool,
    /// Return each enrolled face's aligned crop (to show; it is not stored).
    pub crops: bool,
}

/// Another subject an enrolled face already matches.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PossibleDuplicate {
    /// The other subject.
    pub subject_id: SubjectId,
    /// Its score.
    pub score: f32,
}

/// An enrolled face.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AcceptedFace {
    /// Position of the image in the request.
    pub image_index: usize,
    /// The stored face's id.
    pub face_id: FaceId,
    /// The face box, pixels.
    pub bbox: BoundingBox,
    /// Detector score.
    pub detection_score: f32,
    /// Sharpness of the aligned crop.
    pub sharpness: f32,
    /// Another subject the face already matches, if any (the best of `confusable_with`): the same person
    /// enrolled twice, or two people the collection cannot tell apart.
    pub possible_duplicate: Option<PossibleDuplicate>,
    /// Every other subject (at most 5, best first) the face scores at or above the collection's
    /// threshold with: these people are confusable at the collection's false-match rate (a stricter
    /// rate, better photos, or ignore-list entries separate them).
    pub confusable_with: Vec<PossibleDuplicate>,
    /// The face's aligned crop (JPEG) where asked for: shown, never stored.
    #[serde(skip)]
    pub aligned_crop: Option<Vec<u8>>,
}

/// Most confusable subjects listed per enrolled face.
const CONFUSABLE_LISTED: usize = 5;

/// What an enrolment did: the faces stored (all in one transaction) and the images refused.
#[derive(Debug)]
pub struct Enrolment {
    /// Stored faces, in image order; empty when every image was refused (then nothing was written).
    pub accepted: Vec<AcceptedFace>,
    /// Images refused by the gallery's rules, in image order.
    pub rejected: Vec<Rejection>,
    /// Images that could not be analysed (unreadable, too large), in image order.
    pub unreadable: Vec<Unreadable>,
}

/// An enrolment image that could not be analysed.
#[derive(Debug)]
pub struct Unreadable {
    /// Position of the image in the request.
    pub image_index: usize,
    /// Why (a bad image: [`AnalysisError::is_bad_image`]).
    pub error: AnalysisError,
}

/// The answer for one face: its candidates and, on a match, the subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Identification {
    /// Match or unknown, at the operating point.
    pub result: MatchResult,
    /// The matched subject.
    pub subject: Option<Subject>,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

/// Every face of an image identified against a collection.
#[derive(Debug, Clone)]
pub struct Recognition {
    /// The collection, as read for the decision.
    pub collection: Collection,
    /// The decision rule applied.
    pub operating: OperatingPoint,
    /// Decoded width of the image.
    pub width: u32,
    /// Decoded height of the image.
    pub height: u32,
    /// Each face (best detection score first) with its answer.
    pub faces: Vec<IdentifiedFace>,
    /// More faces were found than are analysed; only the best ones were.
    pub faces_truncated: bool,
    /// Time spent searching the gallery.
    pub search_time: Duration,
}

/// One face of a [`Recognition`].
#[derive(Debug, Clone)]
pub struct IdentifiedFace {
    /// The face as analysed (with its liveness where it was scored).
    pub face: FaceAnalysis,
    /// Its answer.
    pub identification: Identification,
}

/// What a search compares: a template, or the largest face of an image.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A template of the collection's pack.
    Template(Embedding),
    /// An encoded image.
    Image(Bytes),
}

/// The answer of a top-k search.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    /// The collection, as read for the decision.
    pub collection: Collection,
    /// The decision rule applied.
    pub operating: OperatingPoint,
    /// Match or unknown for the best candidate.
    pub result: MatchResult,
    /// Best first.
    pub candidates: Vec<Candidate>,
    /// Time spent searching the gallery.
    pub search_time: Duration,
}

/// How a probe is decided: at which rate, with what.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProbeOptions {
    /// Candidates per face.
    pub top_k: usize,
    /// Target false-match rate (the collection's when none).
    pub fmr: Option<f64>,
    /// Score liveness (always scored where the collection requires it).
    pub liveness: bool,
}

/// The answer of a 1:1 verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Best score over the subject's templates.
    pub score: f32,
    /// At or above the threshold.
    pub same_person: bool,
    /// The decision rule applied.
    pub operating: OperatingPoint,
    /// The box of the face compared (the image's largest).
    pub bbox: BoundingBox,
    /// Its liveness, where it was scored.
    pub liveness: Option<LivenessScore>,
}

impl Enrolment {
    /// The reason of the first refused image (the code of a failed enrolment).
    pub fn first_reason(&self) -> Option<RejectReason> {
        self.rejected.first().map(|r| r.reason)
    }
}

impl Gallery {
    /// The decision rule of `collection` at `target_fmr` (the collection's own rate when none), by its
    /// pack's calibration.
    ///
    /// # Errors
    /// [`GalleryError::Analysis`] when the pack is not loaded; [`GalleryError::Calibration`] for a rate
    /// outside the calibrated range.
    pub fn operating_point(
        &self,
        collection: &Collection,
        target_fmr: Option<f64>,
    ) -> Result<OperatingPoint, GalleryError> {
        OperatingPoint::of(self.analyser.calibration(&collection.pack)?, collection, target_fmr)
    }

    /// Analyses one image with the collection's pack.
    pub(crate) async fn analyse(
        &self,
        collection: &Collection,
        image: Bytes,
        extras: Extras,
    ) -> Result<ImageAnalysis, GalleryError> {
        Ok(self.analyser.analyse(&collection.pack, image, extras).await?)
    }

    /// The largest face of one image, or [`GalleryError::NoFace`].
    pub(crate) async fn largest_face(
        &self,
        collection: &Collection,
        image: Bytes,
        extras: Extras,
    ) -> Result<FaceAnalysis, GalleryError> {
        let analysis = self.analyse(collection, image, extras).await?;
        largest_face(analysis.faces).ok_or(GalleryError::NoFace)
    }

    /// The packs an enrolment's templates are made by: the collection's, and during a migration its
    /// target where the analyser has it loaded at the migration's version.
    async fn enrolment_packs(&self, actor: &Actor, collection: &Collection) -> Result<TemplatePacks, GalleryError> {
        let migration = self.running_migration(actor, &collection.id).await?;
        let analyser = self.analyser.as_ref();
        let version = analyser.template_version(&collection.pack).unwrap_or_default();
        let current = PackVersion { pack: collection.pack.clone(), version };
        let target_version = migration.as_ref().and_then(|m| analyser.template_version(&m.target.pack));
        Ok(TemplatePacks::new(current, migration.as_ref(), target_version.as_deref()))
    }

    /// Enrols the faces found in 1..n images of a subject: per image, the subject's face is chosen
    /// ([`FaceChoice`]), passed through the [`QualityGate`] and checked against the other subjects at the
    /// collection's operating point; the accepted faces are stored in one transaction with one audit
    /// event (with a template of a running migration's target pack too, where it is loaded). Nothing is
    /// written when every image is refused.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection or subject; analysis failures other than a bad
    /// image (which is [`Enrolment::unreadable`]); store and crypto failures.
    pub async fn enroll(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        images: Vec<Bytes>,
        options: EnrollOptions,
    ) -> Result<Enrolment, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        self.subject(actor, &collection.id, subject_id).await?;
        let operating = self.operating_point(&collection, None)?;
        let packs = self.enrolment_packs(actor, &collection).await?;
        let kept = collection.keep_crops || packs.target.is_some();
        let extras = Extras { sharpness: true, kept, liveness: false, crop: options.crops, best_template: true };
        let (mut gated, mut rejected, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
        for (image_index, image) in images.into_iter().enumerate() {
            let faces = match self.analyser.analyse(&collection.pack, image, extras).await {
                Ok(analysis) => analysis.faces,
                Err(error) if error.is_bad_image() => {
                    unreadable.push(Unreadable { image_index, error });
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let count = faces.len();
            let found = largest_face(faces);
            let judged = found.as_ref().map(|f| (&f.face, f.sharpness.unwrap_or(0.0)));
            match (self.gate.judge(count, judged, options.face), found) {
                (Ok(size), Some(found)) => gated.push((image_index, found, size)),
                // `judge` refuses an image without a face.
                (Ok(_), None) => {}
                (Err((reason, message)), _) => rejected.push(Rejection { image_index, reason, message }),
            }
        }
        // One search pass (one index check) for the duplicate check of every image.
        let probes: Vec<&[f32]> = gated.iter().map(|(_, found, _)| found.embedding.as_slice()).collect();
        let matches = if probes.is_empty() {
            Vec::new()
        } else {
            self.search_all(&actor.tenant_id, &collection, &probes, CONFUSABLE_LISTED + 1).await?
        };
        let mut kept = Vec::new();
        for ((image_index, found, size), candidates) in gated.into_iter().zip(matches) {
            let confusable: Vec<PossibleDuplicate> = candidates
                .into_iter()
                .filter(|c| c.subject_id != *subject_id && c.score >= operating.threshold)
                .map(|c| PossibleDuplicate { subject_id: c.subject_id, score: c.score })
                .take(CONFUSABLE_LISTED)
                .collect();
            let duplicate = confusable.first().cloned();
            if let (Some(duplicate), true) = (&duplicate, options.reject_duplicates) {
                let message =
                    format!("the face matches subject {} (score {:.3})", duplicate.subject_id, duplicate.score);
                rejected.push(Rejection { image_index, reason: RejectReason::Duplicate, message });
                continue;
            }
            kept.push((image_index, found, size, confusable));
        }
        rejected.sort_by_key(|r| r.image_index);
        if kept.is_empty() {
            return Ok(Enrolment { accepted: Vec::new(), rejected, unreadable });
        }
        let mut targets = self.target_templates(&packs, kept.iter().map(|(_, found, _, _)| found)).await?;
        let mut to_store = Vec::with_capacity(kept.len());
        for ((_, found, size, _), target_template) in kept.iter().zip(targets.drain(..)) {
            let frame = match (&found.kept, collection.keep_crops) {
                (Some(frame), true) => Some(frame.to_bytes()?),
                _ => None,
            };
            to_store.push(FaceToEnroll {
                template: found.embedding.as_slice().to_vec(),
                target_template,
                kept: frame,
                detection_score: found.face.score,
                sharpness: found.sharpness.unwrap_or(0.0),
                face_size: *size,
            });
        }
        let audit = self.event(actor, &collection.id, AuditAction::Enroll, AuditResult::Accepted, Some(subject_id));
        let records = self.store_faces(&actor.tenant_id, &collection, subject_id, &to_store, &audit, &packs).await?;
        let accepted = kept
            .into_iter()
            .zip(records)
            .map(|((image_index, found, _, confusable_with), record)| AcceptedFace {
                image_index,
                face_id: record.id,
                bbox: found.face.bbox,
                detection_score: found.face.score,
                sharpness: found.sharpness.unwrap_or(0.0),
                possible_duplicate: confusable_with.first().cloned(),
                confusable_with,
                aligned_crop: found.crop,
            })
            .collect();
        Ok(Enrolment { accepted, rejected, unreadable })
    }

    /// Each face's template of a running migration's target pack (from its kept frame), where the
    /// enrolment makes one; `None` for the others.
    async fn target_templates<'a>(
        &self,
        packs: &TemplatePacks,
        faces: impl Iterator<Item = &'a FaceAnalysis>,
    ) -> Result<Vec<Option<Vec<f32>>>, GalleryError> {
        let faces: Vec<&FaceAnalysis> = faces.collect();
        let Some((target, _)) = &packs.target else { return Ok(vec![None; faces.len()]) };
        let frames = faces.iter().filter_map(|f| f.kept.clone()).collect();
        let mut embeddings = self.analyser.embed_kept(&target.pack, frames).await?.into_iter();
        Ok(faces
            .iter()
            .map(|f| f.kept.as_ref().and_then(|_| embeddings.next()).map(|e| e.as_slice().to_vec()))
            .collect())
    }

    /// Every face of an image identified against a collection: analysed with its pack (liveness where
    /// asked or where the collection requires it), top-k candidates, match or unknown at the operating
    /// point, one audit event per face.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection; analysis failures (a bad image); store and
    /// crypto failures.
    pub async fn recognize(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        image: Bytes,
        options: ProbeOptions,
    ) -> Result<Recognition, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let operating = self.operating_point(&collection, options.fmr)?;
        let extras = Extras { liveness: options.liveness || collection.liveness_required, ..Extras::default() };
        let analysis = self.analyse(&collection, image, extras).await?;
        let probes: Vec<&[f32]> = analysis.faces.iter().map(|f| f.embedding.as_slice()).collect();
        let started = Instant::now();
        let identified = self.identify(actor, &collection, &probes, options.top_k, operating).await?;
        let search_time = started.elapsed();
        let faces = analysis
            .faces
            .into_iter()
            .zip(identified)
            .map(|(face, identification)| IdentifiedFace { face, identification })
            .collect();
        Ok(Recognition {
            collection,
            operating,
            width: analysis.width,
            height: analysis.height,
            faces,
            faces_truncated: analysis.faces_truncated,
            search_time,
        })
    }

    /// Identifies each face (by its template) against a collection: top-k candidates (the index checked
    /// once per image), match or unknown at `operating`, the matched subjects read in one round trip, and
    /// one audit event per face written together.
    async fn identify(
        &self,
        actor: &Actor,
        collection: &Collection,
        probes: &[&[f32]],
        top_k: usize,
        operating: OperatingPoint,
    ) -> Result<Vec<Identification>, GalleryError> {
        let identified = self.identities(actor, collection, probes, top_k, operating).await?;
        let events: Vec<NewEvent> = identified
            .iter()
            .enumerate()
            .map(|(i, identification)| NewEvent {
                face_index: u32::try_from(i).ok(),
                ..self.identification_event(actor, collection, identification)
            })
            .collect();
        if !events.is_empty() {
            self.store.append_events(&actor.tenant_id, &events).await?;
        }
        Ok(identified)
    }

    /// Who one template is at `operating` (the best candidate; the subject's ignore list applied),
    /// recording nothing: a watch asks again as a track's evidence grows, and records the decision
    /// once ([`Gallery::record_identity`]).
    ///
    /// # Errors
    /// Store and crypto failures; [`GalleryError::Dimension`] for a template of the wrong length.
    pub async fn identity(
        &self,
        actor: &Actor,
        collection: &Collection,
        template: &[f32],
        operating: OperatingPoint,
    ) -> Result<Identification, GalleryError> {
        let mut identified = self.identities(actor, collection, &[template], 1, operating).await?;
        identified.pop().ok_or(GalleryError::NoFace)
    }

    /// Records a decision made with [`Gallery::identity`] in the collection's audit trail (and so in
    /// its webhooks' outbox).
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_identity(
        &self,
        actor: &Actor,
        collection: &Collection,
        identification: &Identification,
    ) -> Result<(), GalleryError> {
        let event = self.identification_event(actor, collection, identification);
        Ok(self.store.append_events(&actor.tenant_id, &[event]).await?)
    }

    fn identification_event(
        &self,
        actor: &Actor,
        collection: &Collection,
        identification: &Identification,
    ) -> NewEvent {
        let best = identification.candidates.first();
        decision(self.now(), actor, &collection.id, AuditAction::Recognize, identification.result, best)
    }

    /// The identification of each template, recording nothing.
    async fn identities(
        &self,
        actor: &Actor,
        collection: &Collection,
        probes: &[&[f32]],
        top_k: usize,
        operating: OperatingPoint,
    ) -> Result<Vec<Identification>, GalleryError> {
        let mut found: Vec<(MatchResult, Vec<Candidate>)> = self
            .search_all(&actor.tenant_id, collection, probes, top_k)
            .await?
            .into_iter()
            .map(|candidates| (operating.result(candidates.first()), candidates))
            .collect();
        let matches: Vec<(&[f32], Option<&Candidate>)> = probes
            .iter()
            .zip(&found)
            .map(|(probe, (result, candidates))| (*probe, candidates.first().filter(|_| *result == MatchResult::Match)))
            .collect();
        let overruled = self.overruled(&actor.tenant_id, collection, &matches).await?;
        for ((result, _), overruled) in found.iter_mut().zip(overruled) {
            if overruled {
                *result = MatchResult::Unknown;
            }
        }
        let mut matched: Vec<SubjectId> = found
            .iter()
            .filter(|(result, _)| *result == MatchResult::Match)
            .filter_map(|(_, candidates)| candidates.first().map(|c| c.subject_id.clone()))
            .collect();
        matched.sort_unstable();
        matched.dedup();
        let subjects = if matched.is_empty() {
            Vec::new()
        } else {
            self.store.subjects_by_id(&actor.tenant_id, &collection.id, &matched).await?
        };
        Ok(found
            .into_iter()
            .map(|(result, candidates)| {
                let subject = match (result, candidates.first()) {
                    (MatchResult::Match, Some(best)) => subjects.iter().find(|s| s.id == best.subject_id).cloned(),
                    _ => None,
                };
                Identification { result, subject, candidates }
            })
            .collect())
    }

    /// Top-k subjects for a template or the largest face of an image, with match or unknown at the
    /// operating point and its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection; [`GalleryError::NoFace`] for an image without
    /// a face; [`GalleryError::Dimension`] for a template of the wrong length; analysis, store and crypto
    /// failures.
    pub async fn search_one(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        probe: Probe,
        top_k: usize,
        fmr: Option<f64>,
    ) -> Result<SearchAnswer, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let operating = self.operating_point(&collection, fmr)?;
        let embedding = match probe {
            Probe::Template(template) => template,
            Probe::Image(image) => self.largest_face(&collection, image, Extras::default()).await?.embedding,
        };
        let started = Instant::now();
        let candidates = self.search(&actor.tenant_id, &collection, embedding.as_slice(), top_k).await?;
        let search_time = started.elapsed();
        let result = operating.result(candidates.first());
        let event = decision(self.now(), actor, &collection.id, AuditAction::Search, result, candidates.first());
        self.store.append_events(&actor.tenant_id, &[event]).await?;
        Ok(SearchAnswer { collection, operating, result, candidates, search_time })
    }

    /// 1:1 verification of the largest face of an image against a subject's templates (best score),
    /// with its audit event. The subject's templates are read before the image is analysed.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection or subject, [`GalleryError::NoTemplates`] when
    /// it has no faces, [`GalleryError::NoFace`] for an image without one; analysis, store and crypto
    /// failures.
    pub async fn verify(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        image: Bytes,
        options: ProbeOptions,
    ) -> Result<Verification, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let templates = self
            .subject_templates(&actor.tenant_id, &collection.id, subject_id)
            .await
            .map_err(missing_in(Missing::Subject))?;
        if templates.is_empty() {
            return Err(GalleryError::NoTemplates);
        }
        let operating = self.operating_point(&collection, options.fmr)?;
        let extras = Extras { liveness: options.liveness || collection.liveness_required, ..Extras::default() };
        let face = self.largest_face(&collection, image, extras).await?;
        let probe = face.embedding.as_slice();
        let score = templates.iter().map(|t| facegate_core::cosine(probe, t)).fold(f32::NEG_INFINITY, f32::max);
        let same_person = score >= operating.threshold;
        let result = if same_person { AuditResult::Match } else { AuditResult::NoMatch };
        let event = NewEvent {
            score: Some(score),
            ..self.event(actor, &collection.id, AuditAction::Verify, result, Some(subject_id))
        };
        self.store.append_events(&actor.tenant_id, &[event]).await?;
        Ok(Verification { score, same_person, operating, bbox: face.face.bbox, liveness: face.liveness })
    }

    /// Keeps the largest face of an image of a stranger as a negative of `subject_id` ("not this
    /// person"), with its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection or subject; [`GalleryError::NoFace`]; analysis,
    /// store and crypto failures.
    pub async fn add_negative(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        image: Bytes,
    ) -> Result<facegate_store::NegativeRecord, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        self.subject(actor, &collection.id, subject_id).await?;
        let kept = Extras { best_template: true, ..Extras::default() };
        let face = self.largest_face(&collection, image, kept).await?;
        let version = self.analyser.template_version(&collection.pack).unwrap_or_default();
        let pack = PackVersion { pack: collection.pack.clone(), version };
        self.add_negative_template(actor, &collection, subject_id, face.embedding.as_slice(), pack).await
    }
}

/// The event of an identification: the subject only on a match, the best score either way.
fn decision(
    at_ms: i64,
    actor: &Actor,
    collection_id: &CollectionId,
    action: AuditAction,
    result: MatchResult,
    best: Option<&Candidate>,
) -> NewEvent {
    let (result, subject) = match result {
        MatchResult::Match => (AuditResult::Match, best.map(|c| &c.subject_id)),
        MatchResult::Unknown => (AuditResult::Unknown, None),
    };
    NewEvent { score: best.map(|c| c.score), ..actor.event(at_ms, collection_id, action, result, subject) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_refuses_small_unsure_and_blurred_faces() {
        let gate = QualityGate::default();
        assert!(gate.reject_reason(30.0, 0.9, 100.0).is_some());
        assert!(gate.reject_reason(100.0, 0.5, 100.0).is_some());
        assert!(gate.reject_reason(100.0, 0.9, 1.0).is_some());
        assert!(gate.reject_reason(100.0, 0.9, 100.0).is_none());
    }
}
