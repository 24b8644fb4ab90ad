//! Retention: a collection keeps its audit events for its retention only; a subject whose consent
//! expired is erased as a deletion on request would be (the same store erasure, its audit event with
//! the reason `consent_expired`, its `subject.erased` webhook event), and since nobody asked for it, its
//! receipt is kept for the tenant to read.

use facegate_store::{
    AuditAction, AuditReason, AuditResult, ChangeAction, Collection, CollectionId, CollectionPolicy, Consent, KeyId,
    NewEvent, RequestId, StoredReceipt,
};

use crate::collections::{Actor, Missing, missing};
use crate::gallery::TemplateChange;
use crate::{Gallery, GalleryError};

/// Longest retention of audit events, days.
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Expired subjects erased per store round trip of a sweep.
const SWEEP_BATCH: u32 = 100;

/// A consent record that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentProblem {
    /// The purpose is empty or too long.
    #[error("consent `purpose` must be 1 to 500 characters")]
    Purpose,
    /// It expires before it was given.
    #[error("consent `expires_at_ms` must be after `given_at_ms`")]
    Expiry,
    /// A retention out of range.
    #[error("`retention_days` must be 1 to {MAX_RETENTION_DAYS}")]
    Retention,
}

/// Checks a consent record.
///
/// # Errors
/// The [`ConsentProblem`].
pub fn check_consent(consent: &Consent) -> Result<(), ConsentProblem> {
    let purpose = consent.purpose.trim();
    if purpose.is_empty() || purpose.chars().count() > 500 {
        return Err(ConsentProblem::Purpose);
    }
    if consent.expires_at_ms.is_some_and(|at| at <= consent.given_at_ms) {
        return Err(ConsentProblem::Expiry);
    }
    Ok(())
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Audit events deleted for their collection's retention.
    pub events_expired: u64,
    /// Subjects erased at their consent's expiry.
    pub subjects_erased: usize,
}

impl Gallery {
    /// Replaces a collection's policy: how long it keeps its audit events, whether liveness is always
    /// scored.
    ///
    /// # Errors
    /// [`GalleryError::Consent`] for a retention out of range; [`GalleryError::NotFound`].
    pub async fn set_collection_policy(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        policy: &CollectionPolicy,
    ) -> Result<Collection, GalleryError> {
        if policy.retention_days.is_some_and(|d| d == 0 || d > MAX_RETENTION_DAYS) {
            return Err(ConsentProblem::Retention.into());
        }
        let before = self.collection(actor, collection_id).await?;
        let described = |p: CollectionPolicy| serde_json::json!({ "retention_days": p.retention_days, "liveness_required": p.liveness_required });
        let was =
            CollectionPolicy { retention_days: before.retention_days, liveness_required: before.liveness_required };
        let details = crate::changes::diff(&described(was), &described(*policy));
        let audit = self.change(actor, ChangeAction::CollectionUpdated, collection_id, details);
        self.store
            .set_collection_policy(&actor.tenant_id, collection_id, policy, &audit)
            .await
            .map_err(missing(Missing::Collection))
    }

    /// The receipts of a collection's automatic erasures. They outlive the collection; a collection that
    /// does not exist and left none is not found.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] as above; store failures.
    pub async fn receipts(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
    ) -> Result<Vec<StoredReceipt>, GalleryError> {
        let receipts = self.store.receipts(&actor.tenant_id, collection_id).await?;
        if receipts.is_empty() {
            self.collection(actor, collection_id).await?;
        }
        Ok(receipts)
    }

    /// Applies retention now (by the gallery's clock) for every tenant: expired audit events go, subjects whose consent
    /// expired are erased with a kept receipt.
    ///
    /// # Errors
    /// Store and crypto failures (what was done before stays done).
    pub async fn sweep(&self) -> Result<Sweep, GalleryError> {
        let now_ms = self.now();
        let mut sweep = Sweep { events_expired: self.store.expire_events(now_ms).await?, subjects_erased: 0 };
        if sweep.events_expired > 0 {
            // Expired sightings may have left groups of unknown faces: read them again when next needed.
            if let Ok(mut groups) = self.groups.lock() {
                groups.clear();
            }
        }
        loop {
            let expired = self.store.expired_consents(now_ms, SWEEP_BATCH).await?;
            if expired.is_empty() {
                return Ok(sweep);
            }
            for subject in expired {
                let actor = Actor::new(subject.tenant_id.clone(), KeyId::from("retention"), RequestId::random());
                let audit = NewEvent {
                    at_ms: now_ms,
                    reason: Some(AuditReason::ConsentExpired),
                    ..self.event(
                        &actor,
                        &subject.collection_id,
                        AuditAction::Erase,
                        AuditResult::Erased,
                        Some(&subject.subject_id),
                    )
                };
                let before = self.revision_before(&actor.tenant_id, &subject.collection_id).await;
                let erasure = match self
                    .store
                    .delete_subject(&actor.tenant_id, &subject.collection_id, &subject.subject_id, &audit)
                    .await
                {
                    Ok(erasure) => erasure,
                    // Erased meanwhile on request: nothing left to do.
                    Err(facegate_store::StoreError::NotFound) => continue,
                    Err(other) => return Err(other.into()),
                };
                let removed = TemplateChange::SubjectRemoved(&subject.subject_id);
                self.follow_change(&actor.tenant_id, &subject.collection_id, before, removed).await;
                let receipt = self.receipt(&erasure);
                let kept = StoredReceipt {
                    collection_id: subject.collection_id.clone(),
                    subject_id: subject.subject_id.clone(),
                    reason: AuditReason::ConsentExpired.as_str().into(),
                    erased_at_ms: erasure.erased_at_ms,
                    receipt: serde_json::to_string(&receipt).unwrap_or_default(),
                    receipt_sha256: receipt.receipt_sha256.clone(),
                };
                self.store.save_receipt(&actor.tenant_id, &kept).await?;
                sweep.subjects_erased += 1;
            }
        }
    }
}
