//! The product's rules over galleries: who may see what (every call takes the acting tenant), the
//! decision threshold at a target false-match rate, the enrolment gate (face choice, quality,
//! duplicates), identification with its "unknown" answer, and the audit trail. Each change writes its
//! audit event in the same store transaction; each decision records its event before it is answered.
//!
//! Callers (the HTTP API, the CLI) parse their input, analyse images with the pipeline, call one method
//! here and render what it returns; none of them reaches the store.

use facegate_core::{BoundingBox, Calibration, DetectedFace, Embedding, KeptFace, largest_face};
use facegate_store::{
    AuditAction, AuditEvent, AuditResult, ChangeAction, Collection, CollectionId, Erasure, FaceId, FaceRecord, KeyId,
    NewChange, NewCollection, NewEvent, NewSubject, RequestId, StoreError, Subject, SubjectId, TenantId, now_ms,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Candidate, FaceToEnroll, Gallery, GalleryError, TemplatePacks};

/// Who acts: the tenant, the API key and the request; every audit event names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The tenant whose galleries are used; another tenant's are not found.
    pub tenant_id: TenantId,
    /// The API key that asked.
    pub key_id: KeyId,
    /// The request it belongs to (an id the server made).
    pub request_id: RequestId,
    /// The client's own correlation id, validated, when it sent one.
    pub correlation_id: Option<String>,
}

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

/// A face of an enrolment image, as the pipeline found it.
#[derive(Debug, Clone)]
pub struct FoundFace {
    /// Where it is and how sure the detector is.
    pub face: DetectedFace,
    /// Its template.
    pub embedding: Embedding,
    /// Sharpness of its aligned crop.
    pub sharpness: f32,
    /// The face on the kept frame (where the collection keeps them, or a migration runs).
    pub kept: Option<KeptFace>,
    /// Its template of a running migration's target pack.
    pub target_embedding: Option<Embedding>,
}

impl AsRef<DetectedFace> for FoundFace {
    fn as_ref(&self) -> &DetectedFace {
        &self.face
    }
}

/// How an enrolment goes.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollOptions {
    /// Which face of an image is the subject's.
    pub face: FaceChoice,
    /// Refuse faces that match another subject (otherwise they are enrolled and flagged).
    pub reject_duplicates: bool,
    /// The packs the faces' templates are made by.
    pub packs: TemplatePacks,
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
}

/// Most confusable subjects listed per enrolled face.
const CONFUSABLE_LISTED: usize = 5;

/// What an enrolment did: the faces stored (all in one transaction) and the images refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolment {
    /// Stored faces, in image order; empty when every image was refused (then nothing was written).
    pub accepted: Vec<AcceptedFace>,
    /// Refused images, in image order.
    pub rejected: Vec<Rejection>,
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

/// A subject's templates, as [`Gallery::verification_templates`] read them (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectTemplates {
    subject_id: SubjectId,
    templates: Vec<Vec<f32>>,
}

/// The answer of a 1:1 verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Best score over the subject's templates.
    pub score: f32,
    /// At or above the threshold.
    pub same_person: bool,
}

/// An erasure receipt: what was erased, when, what copies may remain where, and a SHA-256 over all of
/// it that the caller can keep.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Receipt {
    /// What was erased.
    pub erasure: ErasureReport,
    /// Lowercase hex SHA-256 of the JSON text of `erasure`.
    pub receipt_sha256: String,
}

/// What an erasure erased and what the storage still holds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErasureReport {
    /// The collection concerned.
    pub collection_id: CollectionId,
    /// Subjects erased (or the subject whose face was erased).
    pub subject_ids: Vec<SubjectId>,
    /// Faces (templates) erased.
    pub face_ids: Vec<FaceId>,
    /// How many templates.
    pub templates_erased: usize,
    /// When, ms since the epoch.
    pub erased_at_ms: i64,
    /// Where and how.
    pub storage: StorageReport,
}

/// How the store erased.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StorageReport {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The bytes were overwritten in the store's live files before the answer.
    pub physically_erased: bool,
    /// The erased subjects' own data keys were destroyed with them (crypto-shredding): whatever copies of
    /// their sealed data the store may still hold (see `residue`) cannot be opened any more, except the
    /// `tenant_sealed` items. False for the erasure of one face (its subject keeps its key).
    pub crypto_shredded: bool,
    /// Erased sealed items (templates, kept frames, ignore-list templates) that were sealed under the
    /// tenant's key, not their subject's (enrolled before subjects had keys): not covered by
    /// `crypto_shredded`.
    pub tenant_sealed: u64,
    /// What backups or logs may still hold, and for how long.
    pub residue: String,
}

impl Enrolment {
    /// The reason of the first refused image (the code of a failed enrolment).
    pub fn first_reason(&self) -> Option<RejectReason> {
        self.rejected.first().map(|r| r.reason)
    }
}

impl Gallery {
    /// Creates a collection.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_collection(&self, actor: &Actor, new: &NewCollection) -> Result<Collection, GalleryError> {
        let details = serde_json::json!({
            "name": new.name, "pack": new.pack, "target_fmr": new.target_fmr, "keep_crops": new.keep_crops,
        });
        let audit = actor.change(ChangeAction::CollectionCreated, "", details);
        Ok(self.store.create_collection(&actor.tenant_id, new, &audit).await?)
    }

    /// The tenant's collections, oldest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn collections(&self, actor: &Actor) -> Result<Vec<Collection>, GalleryError> {
        Ok(self.store.list_collections(&actor.tenant_id).await?)
    }

    /// One collection of the tenant.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for another tenant's or a missing collection.
    pub async fn collection(&self, actor: &Actor, collection_id: &CollectionId) -> Result<Collection, GalleryError> {
        self.store.collection(&actor.tenant_id, collection_id).await.map_err(missing(Missing::Collection))
    }

    /// Deletes a collection and erases every template in it (its trail goes with it: the receipt is
    /// the record).
    ///
    /// # Errors
    /// [`GalleryError::NotFound`]; store failures.
    pub async fn delete_collection(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
    ) -> Result<Receipt, GalleryError> {
        let audit = actor.change(ChangeAction::CollectionDeleted, collection_id, serde_json::json!({}));
        let erasure = self
            .store
            .delete_collection(&actor.tenant_id, collection_id, &audit)
            .await
            .map_err(missing(Missing::Collection))?;
        self.forget(collection_id);
        Ok(self.receipt(&erasure))
    }

    /// Creates a subject.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn create_subject(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        new: &NewSubject,
    ) -> Result<Subject, GalleryError> {
        if let Some(consent) = &new.consent {
            crate::check_consent(consent)?;
        }
        self.store.create_subject(&actor.tenant_id, collection_id, new).await.map_err(missing(Missing::Collection))
    }

    /// The subjects of a collection, oldest first.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn subjects(&self, actor: &Actor, collection_id: &CollectionId) -> Result<Vec<Subject>, GalleryError> {
        self.store.list_subjects(&actor.tenant_id, collection_id).await.map_err(missing(Missing::Collection))
    }

    /// One subject.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn subject(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> Result<Subject, GalleryError> {
        self.store.subject(&actor.tenant_id, collection_id, subject_id).await.map_err(missing(Missing::Subject))
    }

    /// Renames a subject or replaces its metadata.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn update_subject(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        update: &NewSubject,
    ) -> Result<Subject, GalleryError> {
        if let Some(consent) = &update.consent {
            crate::check_consent(consent)?;
        }
        self.store
            .update_subject(&actor.tenant_id, collection_id, subject_id, update)
            .await
            .map_err(missing(Missing::Subject))
    }

    /// Deletes a subject and erases its templates, with its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn delete_subject(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> Result<Receipt, GalleryError> {
        let audit = actor.event(collection_id, AuditAction::Erase, AuditResult::Erased, Some(subject_id), None, None);
        let erasure = self
            .store
            .delete_subject(&actor.tenant_id, collection_id, subject_id, &audit)
            .await
            .map_err(missing(Missing::Subject))?;
        Ok(self.receipt(&erasure))
    }

    /// A subject's enrolled faces (no templates).
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn faces(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> Result<Vec<FaceRecord>, GalleryError> {
        self.store.list_faces(&actor.tenant_id, collection_id, subject_id).await.map_err(missing(Missing::Subject))
    }

    /// Deletes one face and erases its template, with its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject or face.
    pub async fn delete_face(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        face_id: &FaceId,
    ) -> Result<Receipt, GalleryError> {
        let audit = actor.event(collection_id, AuditAction::Erase, AuditResult::Erased, Some(subject_id), None, None);
        let erasure = self
            .store
            .delete_face(&actor.tenant_id, collection_id, subject_id, face_id, &audit)
            .await
            .map_err(missing(Missing::Face))?;
        Ok(self.receipt(&erasure))
    }

    /// The audit trail of a collection in order: events after `since_ms` and after the cursor
    /// `after_seq`, at most `limit`.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn events(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        since_ms: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, GalleryError> {
        self.store
            .events(&actor.tenant_id, collection_id, since_ms, after_seq, limit)
            .await
            .map_err(missing(Missing::Collection))
    }

    /// Enrols the faces found in 1..n images of a subject: per image, the subject's face is chosen
    /// ([`FaceChoice`]), passed through the [`QualityGate`] and checked against the other subjects at
    /// `operating`; the accepted faces are stored in one transaction with one audit event. Nothing is
    /// written when every image is refused.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject; store and crypto failures.
    pub async fn enroll(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject_id: &SubjectId,
        images: Vec<(usize, Vec<FoundFace>)>,
        options: EnrollOptions,
        operating: OperatingPoint,
    ) -> Result<Enrolment, GalleryError> {
        self.subject(actor, &collection.id, subject_id).await?;
        let (mut gated, mut rejected) = (Vec::new(), Vec::new());
        for (image_index, faces) in images {
            let mut reject = |reason, message| rejected.push(Rejection { image_index, reason, message });
            let count = faces.len();
            let found = largest_face(faces);
            let size = match self.gate.judge(count, found.as_ref().map(|f| (&f.face, f.sharpness)), options.face) {
                Ok(size) => size,
                Err((reason, message)) => {
                    reject(reason, message);
                    continue;
                }
            };
            // `judge` refuses an image without a face.
            let Some(found) = found else { continue };
            gated.push((image_index, found, size));
        }
        // One search pass (one index check) for the duplicate check of every image.
        let probes: Vec<&[f32]> = gated.iter().map(|(_, found, _)| found.embedding.as_slice()).collect();
        let matches = if probes.is_empty() {
            Vec::new()
        } else {
            self.search_all(&actor.tenant_id, collection, &probes, CONFUSABLE_LISTED + 1).await?
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
            return Ok(Enrolment { accepted: Vec::new(), rejected });
        }
        let mut to_store = Vec::with_capacity(kept.len());
        for (_, found, size, _) in &kept {
            let frame = match (&found.kept, collection.keep_crops) {
                (Some(frame), true) => Some(frame.to_bytes()?),
                _ => None,
            };
            to_store.push(FaceToEnroll {
                template: found.embedding.as_slice().to_vec(),
                target_template: found.target_embedding.as_ref().map(|e| e.as_slice().to_vec()),
                kept: frame,
                detection_score: found.face.score,
                sharpness: found.sharpness,
                face_size: *size,
            });
        }
        let audit =
            actor.event(&collection.id, AuditAction::Enroll, AuditResult::Accepted, Some(subject_id), None, None);
        let records =
            self.store_faces(&actor.tenant_id, collection, subject_id, &to_store, &audit, &options.packs).await?;
        let accepted = kept
            .into_iter()
            .zip(records)
            .map(|((image_index, found, _, confusable_with), record)| AcceptedFace {
                image_index,
                face_id: record.id,
                bbox: found.face.bbox,
                detection_score: found.face.score,
                sharpness: found.sharpness,
                possible_duplicate: confusable_with.first().cloned(),
                confusable_with,
            })
            .collect();
        Ok(Enrolment { accepted, rejected })
    }

    /// Identifies each face (by its template) against a collection: top-k candidates (the index checked
    /// once per image), match or unknown at `operating`, the matched subjects read in one round trip, and
    /// one audit event per face written together.
    ///
    /// # Errors
    /// Store and crypto failures; [`GalleryError::Dimension`] for a template of the wrong length.
    pub async fn identify(
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
        let events: Vec<NewEvent> = found
            .iter()
            .enumerate()
            .map(|(i, (result, candidates))| {
                actor.decision(
                    &collection.id,
                    AuditAction::Recognize,
                    *result,
                    candidates.first(),
                    u32::try_from(i).ok(),
                )
            })
            .collect();
        if !events.is_empty() {
            self.store.append_events(&actor.tenant_id, &events).await?;
        }
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

    /// Top-k subjects for one template, with match or unknown at `operating` and its audit event.
    ///
    /// # Errors
    /// Store and crypto failures; [`GalleryError::Dimension`] for a template of the wrong length.
    pub async fn search_one(
        &self,
        actor: &Actor,
        collection: &Collection,
        probe: &[f32],
        top_k: usize,
        operating: OperatingPoint,
    ) -> Result<(MatchResult, Vec<Candidate>), GalleryError> {
        let candidates = self.search(&actor.tenant_id, collection, probe, top_k).await?;
        let result = operating.result(candidates.first());
        let event = actor.decision(&collection.id, AuditAction::Search, result, candidates.first(), None);
        self.store.append_events(&actor.tenant_id, &[event]).await?;
        Ok((result, candidates))
    }

    /// The templates of the subject a verification compares with, read before the probe is analysed.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject, [`GalleryError::NoTemplates`] when it has no
    /// faces; store and crypto failures.
    pub async fn verification_templates(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject_id: &SubjectId,
    ) -> Result<SubjectTemplates, GalleryError> {
        let templates =
            self.subject_templates(&actor.tenant_id, &collection.id, subject_id).await.map_err(|e| match e {
                GalleryError::Store(store) => missing(Missing::Subject)(store),
                other => other,
            })?;
        if templates.is_empty() {
            return Err(GalleryError::NoTemplates);
        }
        Ok(SubjectTemplates { subject_id: subject_id.clone(), templates })
    }

    /// 1:1 verification of a template against a subject's templates (best score), with its audit event.
    ///
    /// # Errors
    /// Store failures.
    pub async fn verify(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject: &SubjectTemplates,
        probe: &[f32],
        operating: OperatingPoint,
    ) -> Result<Verification, GalleryError> {
        let (subject_id, templates) = (&subject.subject_id, &subject.templates);
        let score = templates.iter().map(|t| facegate_core::cosine(probe, t)).fold(f32::NEG_INFINITY, f32::max);
        let same_person = score >= operating.threshold;
        let result = if same_person { AuditResult::Match } else { AuditResult::NoMatch };
        let event = actor.event(&collection.id, AuditAction::Verify, result, Some(subject_id), Some(score), None);
        self.store.append_events(&actor.tenant_id, &[event]).await?;
        Ok(Verification { score, same_person })
    }

    /// The store's backend and whether it answers a ping now (readiness).
    pub async fn store_health(&self) -> (&'static str, bool) {
        (self.store.backend(), self.store.ping().await.is_ok())
    }

    /// The receipt of an erasure, with the store's statement of what it may still hold.
    pub(crate) fn receipt(&self, erasure: &Erasure) -> Receipt {
        use sha2::Digest;
        let erasure = ErasureReport {
            collection_id: erasure.collection_id.clone(),
            subject_ids: erasure.subject_ids.clone(),
            face_ids: erasure.face_ids.clone(),
            templates_erased: erasure.face_ids.len(),
            erased_at_ms: erasure.erased_at_ms,
            storage: StorageReport {
                backend: self.store.backend().to_string(),
                physically_erased: erasure.physically_erased,
                crypto_shredded: erasure.subject_keys_deleted,
                tenant_sealed: erasure.tenant_sealed,
                residue: self.store.erasure_residue().to_string(),
            },
        };
        let text = serde_json::to_string(&erasure).unwrap_or_default();
        Receipt { receipt_sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())), erasure }
    }
}

impl Actor {
    /// `key_id` of `tenant_id` acting in the request `request_id`, without a correlation id.
    pub fn new(tenant_id: TenantId, key_id: KeyId, request_id: RequestId) -> Self {
        Self { tenant_id, key_id, request_id, correlation_id: None }
    }

    /// The same actor carrying the client's correlation id.
    pub fn with_correlation(mut self, correlation_id: Option<String>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    /// A configuration change of this actor, timed now.
    pub(crate) fn change(&self, action: ChangeAction, object_id: &str, details: serde_json::Value) -> NewChange {
        NewChange {
            at_ms: now_ms(),
            key_id: self.key_id.clone(),
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            action,
            object_id: object_id.to_string(),
            details,
        }
    }

    /// An audit event of this actor, timed now.
    pub(crate) fn event(
        &self,
        collection_id: &CollectionId,
        action: AuditAction,
        result: AuditResult,
        subject_id: Option<&SubjectId>,
        score: Option<f32>,
        face_index: Option<u32>,
    ) -> NewEvent {
        NewEvent {
            collection_id: collection_id.clone(),
            at_ms: now_ms(),
            key_id: self.key_id.clone(),
            request_id: self.request_id.clone(),
            action,
            result,
            subject_id: subject_id.cloned(),
            score,
            face_index,
            door_id: None,
            reason: None,
            liveness: None,
            correlation_id: self.correlation_id.clone(),
        }
    }

    /// The event of an identification: the subject only on a match, the best score either way.
    fn decision(
        &self,
        collection_id: &CollectionId,
        action: AuditAction,
        result: MatchResult,
        best: Option<&Candidate>,
        face_index: Option<u32>,
    ) -> NewEvent {
        let (result, subject) = match result {
            MatchResult::Match => (AuditResult::Match, best.map(|c| &c.subject_id)),
            MatchResult::Unknown => (AuditResult::Unknown, None),
        };
        self.event(collection_id, action, result, subject, best.map(|c| c.score), face_index)
    }
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The collection (or it is another tenant's).
    Collection,
    /// The subject.
    Subject,
    /// The face.
    Face,
    /// A migration of the collection.
    Migration,
    /// The door.
    Door,
    /// An ignore-list entry.
    Negative,
    /// The webhook.
    Webhook,
    /// The API key.
    Key,
}

impl Missing {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::Subject => "subject",
            Self::Face => "face",
            Self::Migration => "migration",
            Self::Door => "door",
            Self::Negative => "ignore-list entry",
            Self::Webhook => "webhook",
            Self::Key => "active key",
        }
    }
}

pub(crate) fn missing(what: Missing) -> impl Fn(StoreError) -> GalleryError {
    move |error| match error {
        StoreError::NotFound => GalleryError::NotFound(what),
        other => GalleryError::Store(other),
    }
}

/// [`missing`] for an error already in gallery terms.
pub(crate) fn missing_in(what: Missing) -> impl Fn(GalleryError) -> GalleryError {
    move |error| match error {
        GalleryError::Store(StoreError::NotFound) => GalleryError::NotFound(what),
        other => other,
    }
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
