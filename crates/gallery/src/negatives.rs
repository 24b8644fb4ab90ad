//! Ignore lists: a stranger once taken for a subject ("not this person", a false match seen in the
//! field) is kept as a negative of that subject. A probe that matches the subject is overruled when it
//! is closer to one of the subject's negatives than to the subject itself: the same stranger is not
//! taken for them again at the same threshold, while the subject (closer to their own templates than
//! to anyone else's) still is.

use facegate_store::{
    AuditAction, AuditResult, Collection, NegativeId, NegativeRecord, NewNegative, PackVersion, SubjectId, TenantId,
};

use crate::collections::{Actor, Missing, missing};
use crate::{Candidate, Gallery, GalleryError};

/// Associated data of an ignore-list template.
fn negative_binding(collection: &Collection, id: &NegativeId) -> String {
    format!("facegate/negative/v1/{}/{id}", collection.id)
}

impl Gallery {
    /// Keeps a stranger's template as a negative of `subject_id`, with its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject; [`GalleryError::Dimension`] for a template of
    /// the wrong length; store and crypto failures.
    pub(crate) async fn add_negative_template(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject_id: &SubjectId,
        template: &[f32],
        pack: PackVersion,
    ) -> Result<NegativeRecord, GalleryError> {
        let expected = collection.embedding_size as usize;
        if template.len() != expected {
            return Err(GalleryError::Dimension { expected, got: template.len() });
        }
        let id = NegativeId::random();
        let cipher = self
            .subject_cipher(&actor.tenant_id, &collection.id, subject_id, true)
            .await
            .map_err(crate::collections::missing_in(Missing::Subject))?;
        let sealed = cipher.seal(template, &negative_binding(collection, &id))?;
        let audit = self.event(actor, &collection.id, AuditAction::Ignore, AuditResult::Accepted, Some(subject_id));
        let negative =
            NewNegative { id, subject_id: subject_id.clone(), pack, template: sealed, created_at_ms: audit.at_ms };
        self.store
            .add_negative(&actor.tenant_id, &collection.id, &negative, &audit)
            .await
            .map_err(missing(Missing::Subject))
    }

    /// A subject's ignore list.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject.
    pub async fn negatives(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject_id: &SubjectId,
    ) -> Result<Vec<NegativeRecord>, GalleryError> {
        self.store.list_negatives(&actor.tenant_id, &collection.id, subject_id).await.map_err(missing(Missing::Subject))
    }

    /// Erases one ignore-list entry, with its audit event.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`] for a missing subject or entry.
    pub async fn delete_negative(
        &self,
        actor: &Actor,
        collection: &Collection,
        subject_id: &SubjectId,
        negative_id: &NegativeId,
    ) -> Result<(), GalleryError> {
        let audit = self.event(actor, &collection.id, AuditAction::Ignore, AuditResult::Erased, Some(subject_id));
        self.store
            .delete_negative(&actor.tenant_id, &collection.id, subject_id, negative_id, &audit)
            .await
            .map_err(missing(Missing::Negative))
    }

    /// For each probe and its best candidate (a match at the caller's threshold), whether the subject's
    /// ignore list overrules it: the probe is closer to one of the subject's negatives than to the
    /// subject. One store round trip for all of them; none when there is no candidate.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub(crate) async fn overruled(
        &self,
        tenant_id: &TenantId,
        collection: &Collection,
        matches: &[(&[f32], Option<&Candidate>)],
    ) -> Result<Vec<bool>, GalleryError> {
        let mut subjects: Vec<SubjectId> =
            matches.iter().filter_map(|(_, c)| c.map(|c| c.subject_id.clone())).collect();
        if subjects.is_empty() {
            return Ok(vec![false; matches.len()]);
        }
        subjects.sort_unstable();
        subjects.dedup();
        let stored = self.store.negatives_of(tenant_id, &collection.id, &subjects, &collection.pack).await?;
        if stored.is_empty() {
            return Ok(vec![false; matches.len()]);
        }
        let ciphers = self.collection_ciphers(tenant_id, &collection.id).await?;
        let mut negatives = Vec::with_capacity(stored.len());
        for negative in stored {
            let binding = negative_binding(collection, &negative.id);
            // A subject erased since its negatives were read has none left to overrule with.
            let Some(template) = ciphers.of(&negative.subject_id).open(&negative.template, &binding)? else { continue };
            negatives.push((negative.subject_id, template));
        }
        Ok(matches
            .iter()
            .map(|(probe, candidate)| {
                candidate.is_some_and(|c| {
                    negatives
                        .iter()
                        .filter(|(subject, _)| *subject == c.subject_id)
                        .any(|(_, negative)| facegate_core::cosine(probe, negative) > c.score)
                })
            })
            .collect())
    }
}
