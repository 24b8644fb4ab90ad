//! Sightings: who (or which unknown face) a camera saw, where and when, one per video track that was
//! decided. They are searchable per person, camera, decision and time; a subject's erasure takes its
//! sightings, and they follow the collection's retention like its audit events.

use facegate_store::{CollectionId, NewSighting, Sighting, SightingDecision, SightingFilter, SubjectId};
use serde::Serialize;

use crate::collections::{Actor, Missing, missing};
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

impl Gallery {
    /// Stores the sighting of a decided track.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a collection or subject that is not the actor's tenant's.
    pub async fn record_sighting(&self, actor: &Actor, sighting: &NewSighting) -> Result<(), GalleryError> {
        self.store.record_sighting(&actor.tenant_id, sighting).await.map_err(missing(Missing::Collection))
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
