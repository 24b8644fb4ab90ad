//! Sightings: who (or which unknown face) a camera saw, and when. One row per ended video track.

use serde::{Deserialize, Serialize};

use crate::ids::{CollectionId, SubjectId};
use crate::{EncryptedTemplate, WireName};

/// How a track was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SightingDecision {
    /// Named at the collection's false-match rate.
    Named,
    /// Nobody enrolled matched.
    Unknown,
}

impl WireName for SightingDecision {
    const ALL: &'static [SightingDecision] = &[SightingDecision::Named, SightingDecision::Unknown];
}

/// A track's sighting, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewSighting {
    /// The collection it was decided against.
    pub collection_id: CollectionId,
    /// The camera (or file) that saw it, without credentials.
    pub camera: String,
    /// The track within that camera's watch.
    pub track_id: u64,
    /// How it was decided.
    pub decision: SightingDecision,
    /// Who, when named.
    pub subject_id: Option<SubjectId>,
    /// The group of unknown tracks it joined within its watch, when unknown.
    pub cluster_id: Option<u64>,
    /// The fused template's best score.
    pub score: Option<f32>,
    /// When the face was first seen (milliseconds since the Unix epoch).
    pub first_seen_ms: i64,
    /// When it was last seen.
    pub last_seen_ms: i64,
    /// Its first and last sighting in the stream, seconds from the stream's start.
    pub stream_first_s: f64,
    /// See `stream_first_s`.
    pub stream_last_s: f64,
}

/// A stored sighting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sighting {
    /// Its place in the collection's sightings (the paging cursor).
    pub seq: i64,
    /// What was stored.
    #[serde(flatten)]
    pub sighting: NewSighting,
    /// The person's display name, when named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_name: Option<String>,
}

/// Which sightings of a collection: all filters hold; oldest first by `seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SightingFilter {
    /// Only this person's.
    pub subject_id: Option<SubjectId>,
    /// Only this camera's.
    pub camera: Option<String>,
    /// Only this decision's.
    pub decision: Option<SightingDecision>,
    /// Only this group's of unknown faces.
    pub cluster_id: Option<u64>,
    /// Only faces still seen at or after this time (milliseconds).
    pub from_ms: Option<i64>,
    /// Only faces first seen before this time (milliseconds, exclusive).
    pub until_ms: Option<i64>,
    /// Only after this cursor (the last `seq` of the previous page).
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// What a sighting keeps of its track, sealed by the caller: the fused template (what searches by photo
/// and the grouping of unknown faces compare) and the best shot (a JPEG of the face with its
/// surroundings, what an operator looks at and what naming a group enrols). A named sighting's are
/// sealed under its subject's key, an unknown one's under the tenant's.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingEvidence {
    /// The track's fused template.
    pub template: EncryptedTemplate,
    /// Its best shot.
    pub best_shot: Option<EncryptedTemplate>,
}

/// A stored sighting with what it keeps of its track (none for sightings stored without).
#[derive(Debug, Clone, PartialEq)]
pub struct SightingWithEvidence {
    /// The sighting.
    pub sighting: Sighting,
    /// Its sealed template and best shot.
    pub evidence: Option<SightingEvidence>,
}

/// Who a stored sighting is now (an operator named its group, or said "not this person"), with its
/// evidence sealed again under the key its new owner's data is sealed with.
#[derive(Debug, Clone, PartialEq)]
pub struct SightingLabel {
    /// Named or unknown.
    pub decision: SightingDecision,
    /// Who, when named.
    pub subject_id: Option<SubjectId>,
    /// Its group of unknown faces, when unknown.
    pub cluster_id: Option<u64>,
    /// Its evidence, sealed again.
    pub evidence: SightingEvidence,
}
