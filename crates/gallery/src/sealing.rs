//! Whose key seals what. A tenant's data key (wrapped by the key provider) seals its webhook secrets and
//! one data key per subject; a subject's data key seals everything of that subject: its templates (of
//! every pack), its kept frames and its ignore list. Erasing a subject deletes its data key with it, so
//! copies of its sealed data left behind (a database's dead pages and WAL, where PostgreSQL erases
//! logically) can no longer be opened once the key's own last copy is gone: crypto-shredding, on top of
//! each backend's erasure. Data sealed before subjects had keys stays under the tenant's key and opens as
//! before; receipts count it.
//!
//! A subject's sealed data carries a one-byte mark before its 96-bit nonce ([`SUBJECT_SEALED`]); data
//! sealed under the tenant's key has none.

use std::collections::HashMap;
use std::sync::Arc;

use facegate_store::{CollectionId, EncryptedTemplate, SubjectId, TenantId};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::crypto::{DataKey, TemplateCipher};
use crate::{Gallery, GalleryError, TenantSecrets};

/// The mark of data sealed under a subject's own data key.
pub(crate) const SUBJECT_SEALED: u8 = 1;

/// Associated data of a subject's sealed data key.
fn subject_key_binding(collection_id: &CollectionId, subject_id: &SubjectId) -> String {
    format!("facegate/subject-key/v1/{collection_id}/{subject_id}")
}

/// Whether `sealed` was sealed under a subject's key, and the sealed bytes without the mark.
fn unmarked(sealed: &EncryptedTemplate) -> (bool, EncryptedTemplate) {
    match sealed.nonce.split_first() {
        Some((&SUBJECT_SEALED, nonce)) if nonce.len() == 12 => {
            (true, EncryptedTemplate { nonce: nonce.to_vec(), ciphertext: sealed.ciphertext.clone() })
        }
        _ => (false, sealed.clone()),
    }
}

/// The keys of one subject's data: its own (what new data is sealed with), and its tenant's (data sealed
/// before subjects had keys).
pub(crate) struct SubjectCipher {
    own: Option<TemplateCipher>,
    tenant: Arc<TenantSecrets>,
}

impl SubjectCipher {
    fn mark(sealed: EncryptedTemplate) -> EncryptedTemplate {
        let mut nonce = Vec::with_capacity(sealed.nonce.len() + 1);
        nonce.push(SUBJECT_SEALED);
        nonce.extend_from_slice(&sealed.nonce);
        EncryptedTemplate { nonce, ciphertext: sealed.ciphertext }
    }

    fn own(&self) -> Result<&TemplateCipher, GalleryError> {
        self.own.as_ref().ok_or_else(|| GalleryError::Crypto("the subject has no data key to seal with".into()))
    }

    /// Seals a template under the subject's key.
    pub(crate) fn seal(&self, template: &[f32], binding: &str) -> Result<EncryptedTemplate, GalleryError> {
        Ok(Self::mark(self.own()?.seal(template, binding)?))
    }

    /// Seals bytes (a kept frame) under the subject's key.
    pub(crate) fn seal_data(&self, plain: &[u8], binding: &str) -> Result<EncryptedTemplate, GalleryError> {
        Ok(Self::mark(self.own()?.seal_data(plain, binding)?))
    }

    /// The cipher that opens `sealed`, and the sealed bytes it opens.
    fn opener(&self, sealed: &EncryptedTemplate) -> Result<(&TemplateCipher, EncryptedTemplate), GalleryError> {
        match unmarked(sealed) {
            (true, bare) => Ok((
                self.own.as_ref().ok_or_else(|| GalleryError::Crypto("the subject's data key is gone".into()))?,
                bare,
            )),
            (false, bare) => Ok((&self.tenant.cipher, bare)),
        }
    }

    /// Opens a template of the subject.
    pub(crate) fn open(&self, sealed: &EncryptedTemplate, binding: &str) -> Result<Vec<f32>, GalleryError> {
        let (cipher, bare) = self.opener(sealed)?;
        cipher.open(&bare, binding)
    }

    /// Opens bytes of the subject.
    pub(crate) fn open_data(
        &self,
        sealed: &EncryptedTemplate,
        binding: &str,
    ) -> Result<Zeroizing<Vec<u8>>, GalleryError> {
        let (cipher, bare) = self.opener(sealed)?;
        cipher.open_data(&bare, binding)
    }
}

/// The keys of every subject of a collection that has one, for reading many subjects' data at once.
pub(crate) struct CollectionCiphers {
    subjects: HashMap<SubjectId, SubjectCipher>,
    tenant: Arc<TenantSecrets>,
}

impl CollectionCiphers {
    /// The keys of one subject (the tenant's only, for a subject without a key).
    pub(crate) fn of(&self, subject_id: &SubjectId) -> SubjectCipherRef<'_> {
        SubjectCipherRef { own: self.subjects.get(subject_id), tenant: &self.tenant }
    }

    /// The keys of data that is a subject's, or the tenant's own (an unknown face's) when `None`.
    pub(crate) fn of_owner(&self, subject_id: Option<&SubjectId>) -> SubjectCipherRef<'_> {
        SubjectCipherRef { own: subject_id.and_then(|id| self.subjects.get(id)), tenant: &self.tenant }
    }
}

/// A subject's keys borrowed from [`CollectionCiphers`].
pub(crate) struct SubjectCipherRef<'a> {
    own: Option<&'a SubjectCipher>,
    tenant: &'a TenantSecrets,
}

impl SubjectCipherRef<'_> {
    /// Opens a template of the subject; `None` when it was sealed under a key that is gone (the subject
    /// was erased after its data was read).
    pub(crate) fn open(&self, sealed: &EncryptedTemplate, binding: &str) -> Result<Option<Vec<f32>>, GalleryError> {
        match (self.own, unmarked(sealed)) {
            (Some(cipher), _) => cipher.open(sealed, binding).map(Some),
            (None, (false, bare)) => self.tenant.cipher.open(&bare, binding).map(Some),
            (None, (true, _)) => Ok(None),
        }
    }

    /// Opens bytes of the subject; `None` as for [`SubjectCipherRef::open`].
    pub(crate) fn open_data(
        &self,
        sealed: &EncryptedTemplate,
        binding: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, GalleryError> {
        match (self.own, unmarked(sealed)) {
            (Some(cipher), _) => cipher.open_data(sealed, binding).map(Some),
            (None, (false, bare)) => self.tenant.cipher.open_data(&bare, binding).map(Some),
            (None, (true, _)) => Ok(None),
        }
    }
}

impl Gallery {
    /// The keys of a subject's data; its own data key is made (and stored, sealed under the tenant's) if
    /// it has none and `create` is set.
    ///
    /// # Errors
    /// [`facegate_store::StoreError::NotFound`] (as a store error) for a missing subject when creating;
    /// store and crypto failures.
    pub(crate) async fn subject_cipher(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
        create: bool,
    ) -> Result<SubjectCipher, GalleryError> {
        let tenant = self.secrets(tenant_id).await?;
        let binding = subject_key_binding(collection_id, subject_id);
        let stored = match self.store.subject_key(tenant_id, collection_id, subject_id).await? {
            Some(stored) => Some(stored),
            None if create => {
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(key.as_mut());
                let sealed = tenant.cipher.seal_data(key.as_ref(), &binding)?;
                Some(self.store.insert_subject_key_if_absent(tenant_id, collection_id, subject_id, &sealed).await?)
            }
            None => None,
        };
        let own = stored.map(|sealed| open_key(&tenant.cipher, &sealed, &binding)).transpose()?;
        Ok(SubjectCipher { own, tenant })
    }

    /// The keys of every subject of a collection (one store round trip).
    ///
    /// # Errors
    /// Store and crypto failures.
    pub(crate) async fn collection_ciphers(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
    ) -> Result<CollectionCiphers, GalleryError> {
        let tenant = self.secrets(tenant_id).await?;
        let mut subjects = HashMap::new();
        for (subject_id, sealed) in self.store.subject_keys(tenant_id, collection_id).await? {
            let own = open_key(&tenant.cipher, &sealed, &subject_key_binding(collection_id, &subject_id))?;
            subjects.insert(subject_id, SubjectCipher { own: Some(own), tenant: tenant.clone() });
        }
        Ok(CollectionCiphers { subjects, tenant })
    }
}

/// A subject's data key opened from its sealed form.
fn open_key(
    tenant: &TemplateCipher,
    sealed: &EncryptedTemplate,
    binding: &str,
) -> Result<TemplateCipher, GalleryError> {
    let plain = tenant.open_data(sealed, binding)?;
    let key: DataKey = Zeroizing::new(
        plain
            .as_slice()
            .try_into()
            .map_err(|_| GalleryError::Crypto("a subject's data key has the wrong size".into()))?,
    );
    Ok(TemplateCipher::new(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyProvider, LocalKeyProvider};

    async fn tenant() -> Arc<TenantSecrets> {
        let provider = LocalKeyProvider::from_hex(&LocalKeyProvider::generate_hex()).expect("key");
        let key = provider.unwrap_data_key(&provider.generate_data_key().await.expect("key")).await.expect("unwrap");
        Arc::new(TenantSecrets { cipher: TemplateCipher::new(&key), key })
    }

    #[tokio::test]
    async fn subject_data_needs_the_subject_key_and_old_data_the_tenant_key() {
        let tenant = tenant().await;
        let mut own = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(own.as_mut());
        let subject = SubjectCipher { own: Some(TemplateCipher::new(&own)), tenant: tenant.clone() };
        let template = [0.25f32, -0.5, 1.0];
        let sealed = subject.seal(&template, "c/f").expect("seal");
        assert_eq!((sealed.nonce.len(), sealed.nonce[0]), (13, SUBJECT_SEALED));
        assert_eq!(subject.open(&sealed, "c/f").expect("open"), template);
        let legacy = tenant.cipher.seal(&template, "c/f").expect("seal");
        assert_eq!(subject.open(&legacy, "c/f").expect("old data opens with the tenant's key"), template);
        let shredded = SubjectCipher { own: None, tenant: tenant.clone() };
        assert!(shredded.open(&sealed, "c/f").is_err(), "without the subject's key its data is unreadable");
        assert!(tenant.cipher.open(&unmarked(&sealed).1, "c/f").is_err(), "the tenant's key does not open it");
    }
}
