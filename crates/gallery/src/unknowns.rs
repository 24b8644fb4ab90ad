//! Unknown faces, grouped: each unknown track joins the group (cluster) whose mean template scores at
//! or above the collection's threshold, across cameras and runs (the groups are rebuilt from the stored
//! sightings' templates when a process first needs them, then kept up to date in memory). An operator
//! names a group: its best shots enrol a new or existing subject through the quality gate, and its
//! sightings become that person's.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use facegate_store::{
    Collection, CollectionId, NewSubject, SightingDecision, SightingFilter, Subject, SubjectId, TenantId,
};
use serde::Serialize;

use crate::collections::{Actor, Missing, missing};
use crate::sightings::SightingProblem;
use crate::{EnrollOptions, Enrolment, Gallery, GalleryError, MAX_SIGHTINGS};

/// The most best shots naming a group enrols (the latest).
pub const MAX_NAMING_SHOTS: usize = 8;

/// The most sightings a group lists by their `seq` (the latest).
const LISTED_SHOTS: usize = 12;

/// The groups of unknown faces of one collection, in memory: the running sum of each group's stored
/// templates, read from the store (whichever process recorded them) up to `last_seq`.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    sums: BTreeMap<u64, Vec<f32>>,
    /// The highest group id the store's sightings carry.
    highest: u64,
    /// The last stored sighting read into the sums.
    last_seq: Option<i64>,
    /// When they were read whole, ms.
    built_ms: i64,
}

impl Groups {
    /// Adds a stored sighting: its group id, and its template to its group when it is unknown.
    fn absorb(&mut self, seq: i64, cluster_id: Option<u64>, template: Option<Vec<f32>>) {
        if self.last_seq.is_some_and(|last| seq <= last) {
            return;
        }
        self.last_seq = Some(seq);
        let Some(cluster_id) = cluster_id else { return };
        self.highest = self.highest.max(cluster_id);
        let Some(template) = template else { return };
        let sum = self.sums.entry(cluster_id).or_insert_with(|| vec![0.0; template.len()]);
        if sum.len() == template.len() {
            sum.iter_mut().zip(&template).for_each(|(s, v)| *s += v);
        }
    }

    /// The group `template` joins: the closest whose mean scores at or above `threshold`.
    fn closest(&self, template: &[f32], threshold: f32) -> Option<u64> {
        self.sums
            .iter()
            // Groups of another pack's templates (before a migration) are not comparable.
            .filter(|(_, sum)| sum.len() == template.len())
            .map(|(id, sum)| {
                let norm = crate::index::dot(sum, sum).sqrt().max(f32::EPSILON);
                (crate::index::dot(sum, template) / norm, *id)
            })
            .filter(|(score, _)| *score >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id)
    }
}

/// How long a process keeps its groups before reading them whole again (a relabel by another process,
/// naming a group or "not this person", is seen by then; new sightings are read at every decision).
const REBUILD_GROUPS_MS: i64 = 10 * 60 * 1000;

/// A group of unknown faces.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UnknownCluster {
    /// Its id ("unknown #12").
    pub cluster_id: u64,
    /// Its sightings (tracks).
    pub sightings: u32,
    /// The cameras that saw it, sorted.
    pub cameras: Vec<String>,
    /// When first seen (milliseconds since the epoch).
    pub first_seen_ms: i64,
    /// When last seen.
    pub last_seen_ms: i64,
    /// Its latest sightings' `seq` (their best shots show the face), latest first.
    pub shots: Vec<i64>,
}

/// Who a group of unknown faces is: an existing subject, or a new one by name.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ClusterName {
    /// An existing subject of the collection.
    pub subject_id: Option<SubjectId>,
    /// The name of a new subject.
    pub name: Option<String>,
}

/// A group named.
#[derive(Debug)]
pub struct NamedCluster {
    /// Who it is.
    pub subject: Subject,
    /// Its sightings, now the subject's.
    pub sightings: u32,
    /// The enrolment of its best shots (through the quality gate).
    pub enrolment: Enrolment,
}

impl Gallery {
    /// The group of unknown faces `template` joins in `collection`, at `threshold`: the closest stored
    /// group, after reading the sightings recorded since the last call (by any process sharing the
    /// store); else a new group, its id handed out by the store (two processes never give one id to two
    /// groups). The track's own sighting, once recorded, joins the group's template sum.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub async fn unknown_cluster(
        &self,
        actor: &Actor,
        collection: &Collection,
        template: &[f32],
        threshold: f32,
    ) -> Result<u64, GalleryError> {
        let key = (actor.tenant_id.clone(), collection.id.clone());
        let now = self.now();
        let read_from = {
            let all = self.groups.lock().map_err(|_| poisoned())?;
            all.get(&key).filter(|g| now - g.built_ms < REBUILD_GROUPS_MS).map(|g| g.last_seq)
        };
        let whole = read_from.is_none();
        let filter = SightingFilter { after_seq: read_from.flatten(), ..SightingFilter::default() };
        let stored = self.all_sighting_templates(&actor.tenant_id, &collection.id, &filter).await?;
        let mut read = Vec::with_capacity(stored.len());
        // The keys are read only when there is something new to open (for most decisions, nothing).
        if !stored.is_empty() {
            let ciphers = self.collection_ciphers(&actor.tenant_id, &collection.id).await?;
            for (seen, sealed) in &stored {
                let unknown = seen.sighting.decision == SightingDecision::Unknown;
                let template = if unknown { Self::open_template(&ciphers, &seen.sighting, sealed)? } else { None };
                read.push((seen.seq, seen.sighting.cluster_id, template));
            }
        }
        let (joined, highest) = {
            let mut all = self.groups.lock().map_err(|_| poisoned())?;
            if whole {
                all.insert(key.clone(), Groups { built_ms: now, ..Groups::default() });
            }
            let groups = all.entry(key.clone()).or_default();
            read.into_iter().for_each(|(seq, cluster_id, template)| groups.absorb(seq, cluster_id, template));
            (groups.closest(template, threshold), groups.highest)
        };
        if let Some(id) = joined {
            return Ok(id);
        }
        let id = self
            .store
            .new_cluster_id(&actor.tenant_id, &collection.id, highest + 1)
            .await
            .map_err(missing(Missing::Collection))?;
        if let Some(groups) = self.groups.lock().map_err(|_| poisoned())?.get_mut(&key) {
            groups.highest = groups.highest.max(id);
        }
        Ok(id)
    }

    /// Forgets a collection's groups in memory (rebuilt from the store when next needed).
    pub(crate) fn forget_groups(&self, tenant_id: &TenantId, collection_id: &CollectionId) {
        if let Ok(mut all) = self.groups.lock() {
            all.remove(&(tenant_id.clone(), collection_id.clone()));
        }
    }

    /// A collection's groups of unknown faces, the latest seen first.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn clusters(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
    ) -> Result<(Vec<UnknownCluster>, bool), GalleryError> {
        let filter = SightingFilter {
            decision: Some(SightingDecision::Unknown),
            limit: MAX_SIGHTINGS,
            ..SightingFilter::default()
        };
        let sightings = self.sightings(actor, collection_id, &filter).await?;
        let truncated = sightings.len() >= MAX_SIGHTINGS as usize;
        let mut by_id: BTreeMap<u64, (UnknownCluster, BTreeSet<String>)> = BTreeMap::new();
        for seen in sightings.iter().rev() {
            let s = &seen.sighting;
            let Some(cluster_id) = s.cluster_id else { continue };
            let (cluster, cameras) = by_id.entry(cluster_id).or_insert_with(|| {
                let cluster = UnknownCluster {
                    cluster_id,
                    sightings: 0,
                    cameras: Vec::new(),
                    first_seen_ms: s.first_seen_ms,
                    last_seen_ms: s.last_seen_ms,
                    shots: Vec::new(),
                };
                (cluster, BTreeSet::new())
            });
            cluster.sightings += 1;
            cluster.first_seen_ms = cluster.first_seen_ms.min(s.first_seen_ms);
            cluster.last_seen_ms = cluster.last_seen_ms.max(s.last_seen_ms);
            if cluster.shots.len() < LISTED_SHOTS {
                cluster.shots.push(seen.seq);
            }
            cameras.insert(s.camera.clone());
        }
        let mut clusters: Vec<UnknownCluster> = by_id
            .into_values()
            .map(|(cluster, cameras)| UnknownCluster { cameras: cameras.into_iter().collect(), ..cluster })
            .collect();
        clusters.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.cluster_id.cmp(&b.cluster_id)));
        Ok((clusters, truncated))
    }

    /// Names a group of unknown faces: its latest best shots (at most [`MAX_NAMING_SHOTS`]) enrol the
    /// subject through the quality gate, and every sighting of the group becomes the subject's (its
    /// evidence sealed again under the subject's key). A new subject is made when a name is given.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection, group or subject; [`SightingProblem::Naming`]
    /// unless exactly one of an id and a name is given; enrolment, store and crypto failures.
    pub async fn name_cluster(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        cluster_id: u64,
        who: &ClusterName,
    ) -> Result<NamedCluster, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        let filter = SightingFilter {
            decision: Some(SightingDecision::Unknown),
            cluster_id: Some(cluster_id),
            ..SightingFilter::default()
        };
        // Every sighting of the group that kept its evidence, each read once, whole (best shot included).
        let mut members = Vec::new();
        let mut page = SightingFilter { limit: MAX_SIGHTINGS, ..filter };
        loop {
            let listed = self.sightings(actor, &collection.id, &page).await?;
            for seen in &listed {
                let found = self.store.sighting(&actor.tenant_id, &collection.id, seen.seq).await?;
                if let Some(evidence) = found.evidence {
                    members.push((found.sighting, evidence));
                }
            }
            if listed.len() < MAX_SIGHTINGS as usize {
                break;
            }
            page.after_seq = listed.last().map(|s| s.seq);
        }
        if members.is_empty() {
            return Err(GalleryError::NotFound(Missing::Cluster));
        }
        let subject = match (&who.subject_id, who.name.as_deref().map(str::trim)) {
            (Some(subject_id), None) => self.subject(actor, &collection.id, subject_id).await?,
            (None, Some(name)) if !name.is_empty() => {
                let new = NewSubject {
                    name: name.to_string(),
                    metadata: serde_json::json!({}),
                    groups: None,
                    consent: None,
                    created_at_ms: 0,
                };
                self.create_subject(actor, &collection.id, &new).await?
            }
            _ => return Err(SightingProblem::Naming.into()),
        };
        let ciphers = self.collection_ciphers(&actor.tenant_id, &collection.id).await?;
        let mut opened = Vec::with_capacity(members.len());
        for (seen, evidence) in &members {
            if let Some(open) = Self::open_evidence(&ciphers, &seen.sighting, evidence)? {
                opened.push((seen, open));
            }
        }
        let shots: Vec<Bytes> = opened
            .iter()
            .rev()
            .filter_map(|(_, open)| open.best_shot.as_ref().map(|b| Bytes::from(b.to_vec())))
            .take(MAX_NAMING_SHOTS)
            .collect();
        let enrolment = if shots.is_empty() {
            Enrolment { accepted: Vec::new(), rejected: Vec::new(), unreadable: Vec::new() }
        } else {
            self.enroll(actor, &collection.id, &subject.id, shots, EnrollOptions::default()).await?
        };
        for (seen, open) in &opened {
            self.relabel(actor, &collection, seen, Some(&subject.id), Some(cluster_id), open).await?;
        }
        self.forget_groups(&actor.tenant_id, &collection.id);
        Ok(NamedCluster { subject, sightings: u32::try_from(opened.len()).unwrap_or(u32::MAX), enrolment })
    }
}

fn poisoned() -> GalleryError {
    GalleryError::Crypto("the groups of unknown faces are unavailable (a thread panicked)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        values.iter().map(|v| v / norm).collect()
    }

    #[test]
    fn unknown_faces_join_the_closest_stored_group_above_the_threshold() {
        let mut groups = Groups::default();
        let a = unit(&[1.0, 0.0, 0.0]);
        let a2 = unit(&[0.9, 0.1, 0.0]);
        let b = unit(&[0.0, 1.0, 0.0]);
        assert_eq!(groups.closest(&a, 0.5), None, "no group yet");
        groups.absorb(1, Some(4), Some(a.clone()));
        groups.absorb(2, Some(9), Some(b.clone()));
        assert_eq!(groups.closest(&a2, 0.5), Some(4), "like the first");
        assert_eq!(groups.closest(&b, 0.5), Some(9));
        assert_eq!(groups.closest(&a2, 0.9999), None, "at a stricter threshold nobody is alike");
        assert_eq!(groups.closest(&[1.0, 0.0], 0.5), None, "another pack's template compares with nothing");
        // A sighting read twice (two reads overlapping) counts once; a named one only for its id.
        groups.absorb(2, Some(9), Some(b.clone()));
        groups.absorb(3, Some(12), None);
        assert_eq!((groups.sums[&9].clone(), groups.highest, groups.last_seq), (b, 12, Some(3)));
    }
}
