//! Sightings: who (or which unknown face) a camera saw, where and when, one per video track that was
//! decided. They are searchable per person, camera, decision and time; a subject's erasure takes its
//! sightings, and they follow the collection's retention like its audit events.

use facegate_store::{CollectionId, NewSighting, Sighting, SightingFilter};

use crate::collections::{Actor, Missing, missing};
use crate::{Gallery, GalleryError};

/// The most sightings one search answers.
pub const MAX_SIGHTINGS: u32 = 10_000;

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
}
