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

use crate::collections::{Actor, Missing};
use crate::sightings::SightingProblem;
use crate::{EnrollOptions, Enrolment, Gallery, GalleryError, MAX_SIGHTINGS};

/// The most best shots naming a group enrols (the latest).
pub const MAX_NAMING_SHOTS: usize = 8;

/// The most sightings a group lists by their `seq` (the latest).
const LISTED_SHOTS: usize = 12;

/// The groups of unknown faces of one collection, in memory: the running sum of each group's templates,
/// and the next group's id.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    sums: BTreeMap<u64, Vec<f32>>,
    next: u64,
}

impl Groups {
    /// The group `template` joins (the closest whose mean scores at or above `threshold`), or a new one.
    fn join(&mut self, template: &[f32], threshold: f32) -> u64 {
        let closest = self
            .sums
            .iter_mut()
            // Groups of another pack's templates (before a migration) are not comparable.
            .filter(|(_, sum)| sum.len() == template.len())
            .map(|(id, sum)| {
                let norm = crate::index::dot(sum, sum).sqrt().max(f32::EPSILON);
                (crate::index::dot(sum, template) / norm, id, sum)
            })
            .filter(|(score, _, _)| *score >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, id, sum)) = closest {
            sum.iter_mut().zip(template).for_each(|(s, v)| *s += v);
            return *id;
        }
        self.next = self.next.max(1);
        let id = self.next;
        self.next += 1;
        self.sums.insert(id, template.to_vec());
        id
    }
}

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
    /// The group of unknown faces `template` joins in `collection`, at `threshold`.
    ///
    /// # Errors
    /// Store and crypto failures (when the groups are first rebuilt from the store).
    pub async fn unknown_cluster(
        &self,
        actor: &Actor,
        collection: &Collection,
        template: &[f32],
        threshold: f32,
    ) -> Result<u64, GalleryError> {
        let key = (actor.tenant_id.clone(), collection.id.clone());
        let loaded = self.groups.lock().map_err(|_| poisoned())?.contains_key(&key);
        if !loaded {
            let groups = self.load_groups(&actor.tenant_id, &collection.id).await?;
            self.groups.lock().map_err(|_| poisoned())?.entry(key.clone()).or_insert(groups);
        }
        let mut all = self.groups.lock().map_err(|_| poisoned())?;
        Ok(all.entry(key).or_default().join(template, threshold))
    }

    /// A collection's groups rebuilt from its stored sightings: the unknown ones' templates summed per
    /// group; the next id after every group id ever stored (named groups' too).
    async fn load_groups(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> Result<Groups, GalleryError> {
        let stored = self.all_sighting_templates(tenant_id, collection_id, &SightingFilter::default()).await?;
        let ciphers = self.collection_ciphers(tenant_id, collection_id).await?;
        let mut groups = Groups::default();
        for (seen, sealed) in &stored {
            let Some(cluster_id) = seen.sighting.cluster_id else { continue };
            groups.next = groups.next.max(cluster_id + 1);
            if seen.sighting.decision != SightingDecision::Unknown {
                continue;
            }
            let Some(template) = Self::open_template(&ciphers, &seen.sighting, sealed)? else { continue };
            let sum = groups.sums.entry(cluster_id).or_insert_with(|| vec![0.0; template.len()]);
            sum.iter_mut().zip(&template).for_each(|(s, v)| *s += v);
        }
        Ok(groups)
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
    fn unknown_faces_join_the_closest_group_above_the_threshold_or_start_one() {
        let mut groups = Groups::default();
        let a = unit(&[1.0, 0.0, 0.0]);
        let a2 = unit(&[0.9, 0.1, 0.0]);
        let b = unit(&[0.0, 1.0, 0.0]);
        assert_eq!(groups.join(&a, 0.5), 1);
        assert_eq!(groups.join(&b, 0.5), 2, "unlike the first: a group of its own");
        assert_eq!(groups.join(&a2, 0.5), 1, "like the first");
        assert_eq!(groups.join(&a2, 0.9999), 3, "at a stricter threshold nobody is alike");
        let mut rebuilt = Groups { next: 7, ..Groups::default() };
        assert_eq!(rebuilt.join(&a, 0.5), 7, "ids continue after every id ever stored");
    }
}
