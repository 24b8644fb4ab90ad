//! Sightings: who (or which unknown face) a camera saw, where and when, one per video track that was
//! decided. They are searchable per person, camera, decision and time, and by photo (each keeps its
//! track's fused template and best shot, sealed: a named one's under its subject's key, an unknown one's
//! under the tenant's). A subject's erasure takes its sightings, and they follow the collection's
//! retention like its audit events. An operator may say a named sighting is "not this person": its
//! template joins the subject's ignore list and it becomes an unknown face again.

use bytes::Bytes;
use facegate_core::{BoundingBox, Extras};
use facegate_store::{
    AuditAction, AuditResult, Collection, CollectionId, NegativeId, NewSighting, PackVersion, Sighting,
    SightingDecision, SightingEvidence, SightingFilter, SightingLabel, SubjectId, TenantId,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::collections::{Actor, Missing, missing, missing_in};
use crate::sealing::CollectionCiphers;
use crate::{Gallery, GalleryError};

/// The most sightings one search answers.
pub const MAX_SIGHTINGS: u32 = 10_000;

/// The default presence window: a person seen again by the same camera within this long after they
/// were last seen is still the same presence (re-entries, shot cuts, a track lost for a moment).
pub const DEFAULT_PRESENCE_WINDOW_S: u32 = 60;

/// One person's presence at one camera: their named sightings there, folded while each begins within
/// the window after the previous ones ended.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Presence {
    /// Where.
    pub camera: String,
    /// Who.
    pub subject_id: SubjectId,
    /// Their display name.
    pub subject_name: Option<String>,
    /// When first seen (milliseconds since the epoch).
    pub first_seen_ms: i64,
    /// When last seen.
    pub last_seen_ms: i64,
    /// How many sightings (tracks) it folds.
    pub sightings: u32,
}

/// Folds named sightings into presences per camera and person: a sighting that begins within `window_ms`
/// after the presence's last sighting ended joins it. Ordered by when each presence began.
pub fn fold_presence(sightings: &[Sighting], window_ms: i64) -> Vec<Presence> {
    let mut named: Vec<(&Sighting, &SubjectId)> =
        sightings.iter().filter_map(|s| s.sighting.subject_id.as_ref().map(|id| (s, id))).collect();
    named.sort_by(|(a, x), (b, y)| {
        (&a.sighting.camera, *x, a.sighting.first_seen_ms).cmp(&(&b.sighting.camera, *y, b.sighting.first_seen_ms))
    });
    let mut presences: Vec<Presence> = Vec::new();
    for (seen, subject_id) in named {
        let s = &seen.sighting;
        if let Some(open) = presences.last_mut().filter(|p| {
            p.camera == s.camera && p.subject_id == *subject_id && s.first_seen_ms <= p.last_seen_ms + window_ms
        }) {
            open.last_seen_ms = open.last_seen_ms.max(s.last_seen_ms);
            open.sightings += 1;
            continue;
        }
        presences.push(Presence {
            camera: s.camera.clone(),
            subject_id: subject_id.clone(),
            subject_name: seen.subject_name.clone(),
            first_seen_ms: s.first_seen_ms,
            last_seen_ms: s.last_seen_ms,
            sightings: 1,
        });
    }
    presences.sort_by(|a, b| (a.first_seen_ms, &a.camera).cmp(&(b.first_seen_ms, &b.camera)));
    presences
}

/// The most matches a search by photo answers.
pub const MAX_SIGHTING_MATCHES: u32 = 1_000;

/// What a decided track leaves besides its sighting, before it is sealed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackEvidence {
    /// The track's fused template (unit length).
    pub template: Vec<f32>,
    /// Its best shot, a JPEG of the face with its surroundings.
    pub best_shot: Option<Vec<u8>>,
}

/// Why a sighting cannot be changed as asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SightingProblem {
    /// "Not this person" of a sighting nobody was named on.
    #[error("the sighting is of an unknown face: only a named sighting can be \"not this person\"")]
    NotNamed,
    /// The sighting kept no template (recorded before sightings kept them).
    #[error("the sighting kept no template of its face")]
    NoEvidence,
    /// A group named with neither or both of an existing subject and a new name.
    #[error("give exactly one of `subject_id` (an existing subject) and `name` (a new one)")]
    Naming,
}

/// A sighting that matches a searched face: the sighting's fields and its score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SightingMatch {
    /// Its place in the collection's sightings.
    pub seq: i64,
    /// What was stored.
    #[serde(flatten)]
    pub sighting: NewSighting,
    /// The person's display name, when named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_name: Option<String>,
    /// Its template's score against the searched face (`score` is the track's own decision's).
    pub similarity: f32,
}

/// The answer of a search of sightings by photo.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SightingSearch {
    /// The searched face (the photo's largest).
    pub bbox: BoundingBox,
    /// Matches score at or above it.
    pub threshold: f32,
    /// The false-match rate it is calibrated for.
    pub target_fmr: f64,
    /// Sightings compared.
    pub searched: u32,
    /// The sightings of that face, known and unknown, best first.
    pub matches: Vec<SightingMatch>,
}

/// A named sighting marked "not this person".
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NotThisPerson {
    /// Who it was taken for: the sighting's template is now on their ignore list.
    pub subject_id: SubjectId,
    /// The ignore-list entry.
    pub negative_id: NegativeId,
    /// The group of unknown faces the sighting joined.
    pub cluster_id: u64,
}

/// Associated data of a sighting's sealed template; its best shot's adds `/shot`.
fn sighting_binding(sighting: &NewSighting) -> String {
    format!(
        "facegate/sighting/v1/{}/{}/{}/{}",
        sighting.collection_id, sighting.camera, sighting.track_id, sighting.first_seen_ms
    )
}

/// A sighting's evidence opened: its template and best shot.
pub(crate) struct OpenEvidence {
    pub(crate) template: Vec<f32>,
    pub(crate) best_shot: Option<Zeroizing<Vec<u8>>>,
}

impl Gallery {
    /// Stores the sighting of a decided track with its evidence (sealed here: under the subject's key
    /// when named, the tenant's when unknown); answers its `seq`.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a collection or subject that is not the actor's tenant's.
    pub async fn record_sighting(
        &self,
        actor: &Actor,
        sighting: &NewSighting,
        evidence: Option<&TrackEvidence>,
    ) -> Result<i64, GalleryError> {
        let sealed = match evidence {
            Some(evidence) => Some(self.seal_evidence(&actor.tenant_id, sighting, evidence).await?),
            None => None,
        };
        self.store
            .record_sighting(&actor.tenant_id, sighting, sealed.as_ref())
            .await
            .map_err(missing(Missing::Collection))
    }

    /// Seals a sighting's evidence for whoever it is of.
    pub(crate) async fn seal_evidence(
        &self,
        tenant_id: &TenantId,
        sighting: &NewSighting,
        evidence: &TrackEvidence,
    ) -> Result<SightingEvidence, GalleryError> {
        let binding = sighting_binding(sighting);
        let shot_binding = format!("{binding}/shot");
        match &sighting.subject_id {
            Some(subject_id) => {
                let cipher = self
                    .subject_cipher(tenant_id, &sighting.collection_id, subject_id, true)
                    .await
                    .map_err(missing_in(Missing::Subject))?;
                Ok(SightingEvidence {
                    template: cipher.seal(&evidence.template, &binding)?,
                    best_shot: evidence.best_shot.as_ref().map(|b| cipher.seal_data(b, &shot_binding)).transpose()?,
                })
            }
            None => {
                let tenant = self.secrets(tenant_id).await?;
                Ok(SightingEvidence {
                    template: tenant.cipher.seal(&evidence.template, &binding)?,
                    best_shot: evidence
                        .best_shot
                        .as_ref()
                        .map(|b| tenant.cipher.seal_data(b, &shot_binding))
                        .transpose()?,
                })
            }
        }
    }

    /// Opens a sighting's sealed template; `None` when its subject's key is gone.
    pub(crate) fn open_template(
        ciphers: &CollectionCiphers,
        sighting: &NewSighting,
        template: &facegate_store::EncryptedTemplate,
    ) -> Result<Option<Vec<f32>>, GalleryError> {
        ciphers.of_owner(sighting.subject_id.as_ref()).open(template, &sighting_binding(sighting))
    }

    /// Opens a sighting's evidence; `None` when its subject's key is gone.
    pub(crate) fn open_evidence(
        ciphers: &CollectionCiphers,
        sighting: &NewSighting,
        evidence: &SightingEvidence,
    ) -> Result<Option<OpenEvidence>, GalleryError> {
        let Some(template) = Self::open_template(ciphers, sighting, &evidence.template)? else { return Ok(None) };
        let best_shot = match &evidence.best_shot {
            Some(shot) => ciphers
                .of_owner(sighting.subject_id.as_ref())
                .open_data(shot, &format!("{}/shot", sighting_binding(sighting)))?,
            None => None,
        };
        Ok(Some(OpenEvidence { template, best_shot }))
    }

    /// One sighting and its best shot (a JPEG), when it kept one.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection or sighting.
    pub async fn sighting_shot(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        seq: i64,
    ) -> Result<(Sighting, Option<Vec<u8>>), GalleryError> {
        self.sighting_shot_of(&actor.tenant_id, collection_id, seq).await
    }

    /// [`Gallery::sighting_shot`] of a tenant (a signed link's: no key asked).
    pub(crate) async fn sighting_shot_of(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
    ) -> Result<(Sighting, Option<Vec<u8>>), GalleryError> {
        let found = self.store.sighting(tenant_id, collection_id, seq).await.map_err(missing(Missing::Sighting))?;
        let shot = match &found.evidence {
            Some(evidence) => {
                let ciphers = self.collection_ciphers(tenant_id, collection_id).await?;
                Self::open_evidence(&ciphers, &found.sighting.sighting, evidence)?
                    .and_then(|open| open.best_shot)
                    .map(|shot| shot.to_vec())
            }
            None => None,
        };
        Ok((found.sighting, shot))
    }

    /// Every sighting of a collection that kept a template and passes `filter` (from its `after_seq` on),
    /// paged through the store.
    pub(crate) async fn all_sighting_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> Result<Vec<(Sighting, facegate_store::EncryptedTemplate)>, GalleryError> {
        let mut all = Vec::new();
        let mut filter = SightingFilter { limit: MAX_SIGHTINGS, ..filter.clone() };
        loop {
            let page = self
                .store
                .sighting_templates(tenant_id, collection_id, &filter)
                .await
                .map_err(missing(Missing::Collection))?;
            let full = page.len() >= MAX_SIGHTINGS as usize;
            filter.after_seq = page.last().map(|(s, _)| s.seq);
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// The sightings of the largest face of `image`, known and unknown: every sighting whose template
    /// scores at or above the collection's threshold (at `target_fmr` when given), best first, at most
    /// `limit`; the search is audited.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection; [`GalleryError::NoFace`]; analysis, store and
    /// crypto failures.
    pub async fn search_sightings(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        image: Bytes,
        target_fmr: Option<f64>,
        limit: u32,
    ) -> Result<SightingSearch, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let operating = self.operating_point(&collection, target_fmr)?;
        // A search through the record must not miss: the best template the pack makes.
        let best = Extras { best_template: true, ..Extras::default() };
        let face = self.largest_face(&collection, image, best).await?;
        let probe = face.embedding.as_slice();
        let stored = self.all_sighting_templates(&actor.tenant_id, &collection.id, &SightingFilter::default()).await?;
        let ciphers = self.collection_ciphers(&actor.tenant_id, &collection.id).await?;
        let mut matches = Vec::new();
        for (sighting, template) in &stored {
            let Some(template) = Self::open_template(&ciphers, &sighting.sighting, template)? else { continue };
            if template.len() != probe.len() {
                // Made by another pack (before a migration): not comparable.
                continue;
            }
            let score = crate::index::dot(&template, probe);
            if score >= operating.threshold {
                let Sighting { seq, sighting, subject_name } = sighting.clone();
                matches.push(SightingMatch { seq, sighting, subject_name, similarity: score });
            }
        }
        matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        matches.truncate(limit.clamp(1, MAX_SIGHTING_MATCHES) as usize);
        let result = if matches.is_empty() { AuditResult::Unknown } else { AuditResult::Match };
        let mut event = self.event(actor, &collection.id, AuditAction::Search, result, None);
        event.score = matches.first().map(|m| m.similarity);
        self.store.append_events(&actor.tenant_id, &[event]).await?;
        Ok(SightingSearch {
            bbox: face.face.bbox,
            threshold: operating.threshold,
            target_fmr: operating.target_fmr,
            searched: u32::try_from(stored.len()).unwrap_or(u32::MAX),
            matches,
        })
    }

    /// "Not this person": a named sighting's template joins its subject's ignore list (so the same face
    /// is not taken for them again), and the sighting becomes an unknown face in the group it resembles.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection or sighting; [`SightingProblem`] for an unknown
    /// sighting or one without a template; store and crypto failures.
    pub async fn not_this_person(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        seq: i64,
    ) -> Result<NotThisPerson, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let found =
            self.store.sighting(&actor.tenant_id, &collection.id, seq).await.map_err(missing(Missing::Sighting))?;
        let seen = &found.sighting.sighting;
        let subject_id = seen.subject_id.clone().ok_or(SightingProblem::NotNamed)?;
        let evidence = found.evidence.as_ref().ok_or(SightingProblem::NoEvidence)?;
        let ciphers = self.collection_ciphers(&actor.tenant_id, &collection.id).await?;
        let open = Self::open_evidence(&ciphers, seen, evidence)?.ok_or(SightingProblem::NoEvidence)?;
        let version = self.analyser.template_version(&collection.pack).unwrap_or_default();
        let pack = PackVersion { pack: collection.pack.clone(), version };
        let negative = self.add_negative_template(actor, &collection, &subject_id, &open.template, pack).await?;
        let threshold = self.operating_point(&collection, None)?.threshold;
        let cluster_id = self.unknown_cluster(actor, &collection, &open.template, threshold).await?;
        self.relabel(actor, &collection, &found.sighting, None, Some(cluster_id), &open).await?;
        // The relabelled sighting keeps its place in the store's order: the groups are read whole again.
        self.forget_groups(&actor.tenant_id, &collection.id);
        Ok(NotThisPerson { subject_id, negative_id: negative.id, cluster_id })
    }

    /// Stores who a sighting is now, its evidence sealed again for its new owner.
    pub(crate) async fn relabel(
        &self,
        actor: &Actor,
        collection: &Collection,
        seen: &Sighting,
        subject_id: Option<&SubjectId>,
        cluster_id: Option<u64>,
        open: &OpenEvidence,
    ) -> Result<(), GalleryError> {
        let (seq, relabelled) = (seen.seq, NewSighting { subject_id: subject_id.cloned(), ..seen.sighting.clone() });
        let evidence =
            TrackEvidence { template: open.template.clone(), best_shot: open.best_shot.as_ref().map(|b| b.to_vec()) };
        let label = SightingLabel {
            decision: if subject_id.is_some() { SightingDecision::Named } else { SightingDecision::Unknown },
            subject_id: subject_id.cloned(),
            cluster_id,
            evidence: self.seal_evidence(&actor.tenant_id, &relabelled, &evidence).await?,
        };
        self.store
            .relabel_sighting(&actor.tenant_id, &collection.id, seq, &label)
            .await
            .map_err(missing(Missing::Sighting))
    }

    /// A collection's sightings that pass `filter` (at most [`MAX_SIGHTINGS`]), oldest first, with
    /// the names of the people seen.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn sightings(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        filter: &SightingFilter,
    ) -> Result<Vec<Sighting>, GalleryError> {
        let filter = SightingFilter { limit: filter.limit.clamp(1, MAX_SIGHTINGS), ..filter.clone() };
        self.store.sightings(&actor.tenant_id, collection_id, &filter).await.map_err(missing(Missing::Collection))
    }

    /// Who was present at which camera and when: the named sightings that pass `filter` (at most
    /// [`MAX_SIGHTINGS`] of them; the flag says when there were more), folded per camera and person
    /// with `window_s` ([`fold_presence`]).
    ///
    /// # Errors
    /// As [`Gallery::sightings`].
    pub async fn presence(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        filter: &SightingFilter,
        window_s: u32,
    ) -> Result<(Vec<Presence>, bool), GalleryError> {
        let filter = SightingFilter {
            decision: Some(SightingDecision::Named),
            after_seq: None,
            limit: MAX_SIGHTINGS,
            ..filter.clone()
        };
        let sightings = self.sightings(actor, collection_id, &filter).await?;
        let truncated = sightings.len() >= MAX_SIGHTINGS as usize;
        Ok((fold_presence(&sightings, i64::from(window_s) * 1000), truncated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(seq: i64, camera: &str, who: &str, first_s: i64, last_s: i64) -> Sighting {
        Sighting {
            seq,
            sighting: NewSighting {
                collection_id: CollectionId::from("c"),
                camera: camera.into(),
                track_id: seq as u64,
                decision: SightingDecision::Named,
                subject_id: Some(SubjectId::from(who)),
                cluster_id: None,
                score: Some(0.5),
                first_seen_ms: first_s * 1000,
                last_seen_ms: last_s * 1000,
                stream_first_s: 0.0,
                stream_last_s: 0.0,
            },
            subject_name: Some(who.to_uppercase()),
        }
    }

    #[test]
    fn sightings_fold_into_presences_per_camera_and_person_within_the_window() {
        let all = [
            seen(1, "hall", "ann", 0, 10),
            seen(2, "hall", "bob", 5, 8),
            seen(3, "hall", "ann", 50, 55),   // back 40 s later: the same presence
            seen(4, "door", "ann", 20, 21),   // another camera: its own
            seen(5, "hall", "ann", 200, 201), // 145 s later: a new presence
            seen(6, "hall", "ann", 52, 53),   // inside the presence already
        ];
        let folded = fold_presence(&all, 60_000);
        let shape: Vec<(&str, &str, i64, i64, u32)> = folded
            .iter()
            .map(|p| {
                (p.camera.as_str(), p.subject_id.as_str(), p.first_seen_ms / 1000, p.last_seen_ms / 1000, p.sightings)
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("hall", "ann", 0, 55, 3),
                ("hall", "bob", 5, 8, 1),
                ("door", "ann", 20, 21, 1),
                ("hall", "ann", 200, 201, 1)
            ]
        );
        assert_eq!(folded[0].subject_name.as_deref(), Some("ANN"));
        assert_eq!(fold_presence(&all, 0).len(), 5, "no window: only the sighting inside another folds");
    }
}
