//! Moving a collection to another pack without asking anyone to come back: the kept frames of its
//! faces are re-embedded by the target pack in batches, each batch stored in one transaction (so a
//! crash loses at most the batch in flight and a restart resumes where the store says it stands),
//! while the collection keeps answering with its old pack; when every kept frame has a target
//! template the collection switches in one transaction. Faces without a kept frame are reported, so
//! those people alone are asked to enrol again.

use std::future::Future;

use facegate_core::{Embedding, KeptFace};
use facegate_store::{
    AuditAction, AuditResult, CollectionId, MigratedTemplate, Migration, MigrationState, NewMigration, PackVersion,
    StoreError,
};

use crate::collections::{Actor, Missing, missing};
use crate::{Gallery, GalleryError, crop_binding};

/// Why a migration cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationProblem {
    /// The collection already uses that pack.
    #[error("the collection already uses pack {0}")]
    SamePack(String),
    /// The loaded pack is not the version the migration started with.
    #[error("pack {pack} is loaded at version {loaded}, the migration targets {wanted}")]
    VersionChanged {
        /// The pack.
        pack: String,
        /// Its loaded version.
        loaded: String,
        /// The version the migration targets.
        wanted: String,
    },
    /// A kept frame could not be read or embedded.
    #[error("kept face {0}")]
    KeptFace(String),
}

impl Gallery {
    /// Starts moving a collection to `target` (a loaded pack of `target_dim`-long templates).
    ///
    /// # Errors
    /// [`MigrationProblem::SamePack`]; [`StoreError::Conflict`] while another migration of it runs;
    /// [`GalleryError::NotFound`] for a missing collection.
    pub async fn start_migration(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        target: PackVersion,
        target_dim: u32,
    ) -> Result<Migration, GalleryError> {
        let collection = self.collection(actor, collection_id).await?;
        // New weights come as a new pack name: one name is one template space while the server runs.
        if collection.pack == target.pack {
            return Err(GalleryError::Migration(MigrationProblem::SamePack(target.pack)));
        }
        let new = NewMigration { target, target_dim, started_at_ms: self.now() };
        let audit = self.event(actor, collection_id, AuditAction::Migrate, AuditResult::Started, None);
        self.store
            .start_migration(&actor.tenant_id, collection_id, &new, &audit)
            .await
            .map_err(missing(Missing::Collection))
    }

    /// The collection's latest migration with its progress.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] when the collection is missing or never had one.
    pub async fn migration(&self, actor: &Actor, collection_id: &CollectionId) -> Result<Migration, GalleryError> {
        self.latest_migration(actor, collection_id).await?.ok_or(GalleryError::NotFound(Missing::Migration))
    }

    /// The collection's latest migration, if it ever had one.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection; store failures.
    pub async fn latest_migration(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
    ) -> Result<Option<Migration>, GalleryError> {
        self.store.migration(&actor.tenant_id, collection_id).await.map_err(missing(Missing::Collection))
    }

    /// The collection's running migration, if one runs (enrolments then make target templates too).
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing collection; store failures.
    pub async fn running_migration(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
    ) -> Result<Option<Migration>, GalleryError> {
        Ok(self.latest_migration(actor, collection_id).await?.filter(|m| m.state == MigrationState::Running))
    }

    /// Every running migration of every tenant, to resume after a restart.
    ///
    /// # Errors
    /// Store failures.
    pub async fn running_migrations(&self) -> Result<Vec<(facegate_store::TenantId, CollectionId)>, GalleryError> {
        Ok(self.store.running_migrations().await?)
    }

    /// Runs the collection's migration to its end: batches of at most `batch` kept frames are opened,
    /// embedded by `embed` (the target pack's pipeline, which must be at the migration's version) and
    /// stored, `progress` is told after each batch, and the collection switches when none is left.
    /// Safe to run again after a crash, or beside an enrolment: it starts from what the store holds.
    ///
    /// # Errors
    /// [`MigrationProblem`]s, store and crypto failures; the migration stays running and can be resumed.
    pub async fn run_migration<E, F>(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        loaded_version: &str,
        batch: u32,
        mut embed: E,
        mut progress: impl FnMut(&Migration),
    ) -> Result<Migration, GalleryError>
    where
        E: FnMut(Vec<KeptFace>) -> F,
        F: Future<Output = Result<Vec<Embedding>, String>>,
    {
        let tenant_id = &actor.tenant_id;
        loop {
            let migration = self.migration(actor, collection_id).await?;
            if migration.state == MigrationState::Finished {
                return Ok(migration);
            }
            if migration.target.version != loaded_version {
                return Err(GalleryError::Migration(MigrationProblem::VersionChanged {
                    pack: migration.target.pack,
                    loaded: loaded_version.to_string(),
                    wanted: migration.target.version,
                }));
            }
            progress(&migration);
            let crops = self.store.crops_to_migrate(tenant_id, collection_id, batch.max(1)).await?;
            if crops.is_empty() {
                let audit = self.event(actor, collection_id, AuditAction::Migrate, AuditResult::Switched, None);
                match self.store.finish_migration(tenant_id, collection_id, &audit).await {
                    // An enrolment stored a kept frame after the last batch was read: go round again.
                    Err(StoreError::Conflict(_)) => continue,
                    Err(error) => return Err(error.into()),
                    Ok(finished) => {
                        self.forget(collection_id);
                        progress(&finished);
                        return Ok(finished);
                    }
                }
            }
            let mut frames = Vec::with_capacity(crops.len());
            let mut ciphers = std::collections::HashMap::new();
            for crop in &crops {
                if !ciphers.contains_key(&crop.subject_id) {
                    let cipher = self.subject_cipher(tenant_id, collection_id, &crop.subject_id, false).await?;
                    ciphers.insert(crop.subject_id.clone(), cipher);
                }
                let cipher = &ciphers[&crop.subject_id];
                let bytes = cipher.open_data(&crop.crop, &crop_binding(collection_id, &crop.face_id))?;
                let frame = KeptFace::from_bytes(&bytes)
                    .map_err(|e| GalleryError::Migration(MigrationProblem::KeptFace(e.to_string())))?;
                frames.push(frame);
            }
            let embeddings = embed(frames).await.map_err(|e| GalleryError::Migration(MigrationProblem::KeptFace(e)))?;
            let collection = self.collection(actor, collection_id).await?;
            let mut templates = Vec::with_capacity(crops.len());
            for (crop, embedding) in crops.iter().zip(&embeddings) {
                let template = self
                    .seal_template(
                        &collection,
                        &ciphers[&crop.subject_id],
                        &crop.face_id,
                        &migration.target,
                        migration.target_dim,
                        embedding.as_slice(),
                    )
                    .await?;
                templates.push(MigratedTemplate { face_id: crop.face_id.clone(), template });
            }
            self.store.add_migrated_templates(tenant_id, collection_id, &templates).await?;
        }
    }
}
