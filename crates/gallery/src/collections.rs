//! Collections, their subjects and faces, for an [`Actor`] (another tenant's are not found): who may see
//! what (every call takes the acting tenant), erasures with their [`Receipt`], the audit trail. Each
//! change writes its audit event in the same store transaction.
//!
//! Callers (the HTTP API, the CLI) parse their input, call one method here and render what it returns;
//! none of them reaches the store.

use facegate_store::{
    AuditAction, AuditEvent, AuditResult, ChangeAction, Collection, CollectionId, Erasure, FaceId, FaceRecord, KeyId,
    NewChange, NewCollection, NewEvent, NewSubject, RequestId, StoreError, Subject, SubjectId, TenantId,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::gallery::TemplateChange;
use crate::{Gallery, GalleryError};

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
    /// Sightings erased with the subjects (with their templates and best shots).
    pub sightings_erased: u64,
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

impl Gallery {
    /// Creates a collection.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_collection(&self, actor: &Actor, new: &NewCollection) -> Result<Collection, GalleryError> {
        let details = serde_json::json!({
            "name": new.name, "pack": new.pack, "target_fmr": new.target_fmr, "keep_crops": new.keep_crops,
        });
        let audit = self.change(actor, ChangeAction::CollectionCreated, "", details);
        let new = NewCollection { created_at_ms: audit.at_ms, ..new.clone() };
        Ok(self.store.create_collection(&actor.tenant_id, &new, &audit).await?)
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
        let audit = self.change(actor, ChangeAction::CollectionDeleted, collection_id, serde_json::json!({}));
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
        let new = NewSubject { created_at_ms: self.now(), ..new.clone() };
        self.store.create_subject(&actor.tenant_id, collection_id, &new).await.map_err(missing(Missing::Collection))
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
        let audit = self.event(actor, collection_id, AuditAction::Erase, AuditResult::Erased, Some(subject_id));
        let before = self.revision_before(&actor.tenant_id, collection_id).await;
        let erasure = self
            .store
            .delete_subject(&actor.tenant_id, collection_id, subject_id, &audit)
            .await
            .map_err(missing(Missing::Subject))?;
        self.follow_change(&actor.tenant_id, collection_id, before, TemplateChange::SubjectRemoved(subject_id)).await;
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
        let audit = self.event(actor, collection_id, AuditAction::Erase, AuditResult::Erased, Some(subject_id));
        let before = self.revision_before(&actor.tenant_id, collection_id).await;
        let erasure = self
            .store
            .delete_face(&actor.tenant_id, collection_id, subject_id, face_id, &audit)
            .await
            .map_err(missing(Missing::Face))?;
        self.follow_change(&actor.tenant_id, collection_id, before, TemplateChange::FaceRemoved(face_id)).await;
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
            sightings_erased: erasure.sightings,
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

    /// A configuration change of this actor at `at_ms`.
    pub(crate) fn change(
        &self,
        at_ms: i64,
        action: ChangeAction,
        object_id: &str,
        details: serde_json::Value,
    ) -> NewChange {
        NewChange {
            at_ms,
            key_id: self.key_id.clone(),
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            action,
            object_id: object_id.to_string(),
            details,
        }
    }

    /// An audit event of this actor at `at_ms`, with no score, face, door, reason or liveness.
    pub(crate) fn event(
        &self,
        at_ms: i64,
        collection_id: &CollectionId,
        action: AuditAction,
        result: AuditResult,
        subject_id: Option<&SubjectId>,
    ) -> NewEvent {
        NewEvent {
            collection_id: collection_id.clone(),
            at_ms,
            key_id: self.key_id.clone(),
            request_id: self.request_id.clone(),
            action,
            result,
            subject_id: subject_id.cloned(),
            score: None,
            face_index: None,
            door_id: None,
            reason: None,
            liveness: None,
            correlation_id: self.correlation_id.clone(),
        }
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
    /// The camera.
    Camera,
    /// The API key.
    Key,
    /// The sighting.
    Sighting,
    /// The group of unknown faces.
    Cluster,
    /// The MQTT integration.
    Mqtt,
    /// The door's reader.
    Reader,
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
            Self::Camera => "camera",
            Self::Key => "active key",
            Self::Sighting => "sighting",
            Self::Cluster => "group of unknown faces",
            Self::Mqtt => "MQTT integration",
            Self::Reader => "door reader",
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
