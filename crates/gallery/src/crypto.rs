//! Envelope encryption of templates. A [`KeyProvider`] makes and unwraps per-tenant data keys; the
//! [`TemplateCipher`] seals templates with a data key (AES-256-GCM, random 96-bit nonces, the face's
//! place as associated data). Data keys are zeroed when dropped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use facegate_store::{EncryptedTemplate, WrappedKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::GalleryError;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const WRAP_CONTEXT: &[u8] = b"facegate/data-key/v1";

/// A 256-bit data key in memory, zeroed on drop.
pub type DataKey = Zeroizing<[u8; KEY_LEN]>;

/// Makes and unwraps data keys under a master key it never reveals.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// Short name stored with wrapped keys (`local`, `kms`).
    fn name(&self) -> &'static str;
    /// A fresh random data key, wrapped.
    async fn generate_data_key(&self) -> Result<WrappedKey, GalleryError>;
    /// The plaintext of a wrapped data key.
    async fn unwrap_data_key(&self, wrapped: &WrappedKey) -> Result<DataKey, GalleryError>;
}

/// A master key held by this process (from a file or the environment), wrapping with AES-256-GCM.
pub struct LocalKeyProvider {
    master: Aes256Gcm,
    id: String,
}

impl LocalKeyProvider {
    /// A provider over a 32-byte master key.
    pub fn new(master: &[u8; KEY_LEN]) -> Self {
        let id = hex::encode(&Sha256::digest(master)[..8]);
        Self { master: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(master)), id }
    }

    /// Parses a master key written as 64 hex digits.
    ///
    /// # Errors
    /// [`GalleryError::Crypto`] when the text is not 32 bytes of hex.
    pub fn from_hex(text: &str) -> Result<Self, GalleryError> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| GalleryError::Crypto("master key must be 64 hex digits".into()))?,
        );
        let key: [u8; KEY_LEN] =
            bytes.as_slice().try_into().map_err(|_| GalleryError::Crypto("master key must be 32 bytes".into()))?;
        Ok(Self::new(&key))
    }

    /// A new random master key as 64 hex digits (for `facegate keys init-master`).
    pub fn generate_hex() -> String {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        hex::encode(key.as_ref())
    }

    /// Fingerprint of the master key (first 8 bytes of its SHA-256), stored with wrapped keys.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn generate_data_key(&self) -> Result<WrappedKey, GalleryError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        let ciphertext = seal_bytes(&self.master, key.as_ref(), WRAP_CONTEXT)?;
        Ok(WrappedKey { provider: self.name().into(), master_key_id: self.id.clone(), ciphertext })
    }

    async fn unwrap_data_key(&self, wrapped: &WrappedKey) -> Result<DataKey, GalleryError> {
        if wrapped.provider != self.name() || wrapped.master_key_id != self.id {
            return Err(GalleryError::Crypto(format!(
                "data key was wrapped by {} master key {}, this server holds local key {}",
                wrapped.provider, wrapped.master_key_id, self.id
            )));
        }
        let plain = Zeroizing::new(open_bytes(&self.master, &wrapped.ciphertext, WRAP_CONTEXT)?);
        let key: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| GalleryError::Crypto("wrapped data key has the wrong size".into()))?;
        Ok(Zeroizing::new(key))
    }
}

/// Seals and opens templates with one tenant's data key.
pub struct TemplateCipher {
    aead: Aes256Gcm,
}

impl TemplateCipher {
    /// A cipher over a data key.
    pub fn new(key: &DataKey) -> Self {
        Self { aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_ref())) }
    }

    /// Encrypts a template (little-endian `f32`s) bound to `binding`.
    ///
    /// # Errors
    /// [`GalleryError::Crypto`] if the cipher fails (it does not for valid keys).
    pub fn seal(&self, template: &[f32], binding: &str) -> Result<EncryptedTemplate, GalleryError> {
        let plain = Zeroizing::new(template.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
        self.seal_data(&plain, binding)
    }

    /// Encrypts bytes (a kept face) bound to `binding`.
    ///
    /// # Errors
    /// [`GalleryError::Crypto`] if the cipher fails (it does not for valid keys).
    pub fn seal_data(&self, plain: &[u8], binding: &str) -> Result<EncryptedTemplate, GalleryError> {
        let sealed = seal_bytes(&self.aead, plain, binding.as_bytes())?;
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        Ok(EncryptedTemplate { nonce: nonce.to_vec(), ciphertext: ciphertext.to_vec() })
    }

    /// Decrypts bytes sealed by [`TemplateCipher::seal_data`] with the same key and binding.
    ///
    /// # Errors
    /// [`GalleryError::Crypto`] for a wrong key, a wrong binding or tampered bytes.
    pub fn open_data(&self, sealed: &EncryptedTemplate, binding: &str) -> Result<Zeroizing<Vec<u8>>, GalleryError> {
        let mut joined = sealed.nonce.clone();
        joined.extend_from_slice(&sealed.ciphertext);
        Ok(Zeroizing::new(open_bytes(&self.aead, &joined, binding.as_bytes())?))
    }

    /// Decrypts a template sealed with the same key and binding.
    ///
    /// # Errors
    /// [`GalleryError::Crypto`] for a wrong key, a wrong binding or tampered bytes.
    pub fn open(&self, sealed: &EncryptedTemplate, binding: &str) -> Result<Vec<f32>, GalleryError> {
        let plain = self.open_data(sealed, binding)?;
        if plain.len() % 4 != 0 {
            return Err(GalleryError::Crypto("template length is not a whole number of floats".into()));
        }
        Ok(plain.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

/// `nonce || ciphertext+tag`.
fn seal_bytes(aead: &Aes256Gcm, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, GalleryError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = aead
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| GalleryError::Crypto("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_bytes(aead: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, GalleryError> {
    if sealed.len() < NONCE_LEN {
        return Err(GalleryError::Crypto("sealed data is too short".into()));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    aead.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| GalleryError::Crypto("authentication failed: wrong key or tampered data".into()))
}

/// A secret orthogonal matrix per tenant and template length, derived from the tenant's data key.
/// Stores that search in the database keep templates multiplied by it: cosine scores are unchanged
/// (`(Rx)·(Ry) = x·y`), but the stored vectors are not the embedder's templates, so a database dump
/// cannot be matched against faces without the key. It is obfuscation, not encryption: someone who
/// knows enough (template, stored vector) pairs can solve for it; the canonical template stays sealed.
pub struct SearchRotation {
    dim: usize,
    rows: Vec<f32>,
}

impl SearchRotation {
    /// The rotation for templates of `dim` values under `key`.
    pub fn derive(key: &DataKey, dim: usize) -> Self {
        use rand::SeedableRng;
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"facegate/search-rotation/v1")
            .chain_update(key.as_ref())
            .chain_update((dim as u64).to_le_bytes())
            .finalize()
            .into();
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        // Gaussian rows (Box-Muller), orthonormalised by modified Gram-Schmidt: a uniform random rotation.
        let mut rows: Vec<f64> = (0..dim * dim)
            .map(|_| {
                let (u, v): (f64, f64) =
                    (rand::Rng::random::<f64>(&mut rng).max(f64::MIN_POSITIVE), rand::Rng::random(&mut rng));
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        for i in 0..dim {
            for j in 0..i {
                let projection: f64 = (0..dim).map(|k| rows[i * dim + k] * rows[j * dim + k]).sum();
                for k in 0..dim {
                    rows[i * dim + k] -= projection * rows[j * dim + k];
                }
            }
            let norm = (0..dim).map(|k| rows[i * dim + k].powi(2)).sum::<f64>().sqrt();
            for k in 0..dim {
                rows[i * dim + k] /= norm;
            }
        }
        Self { dim, rows: rows.into_iter().map(|v| v as f32).collect() }
    }

    /// `R · template`.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a template of another length.
    pub fn apply(&self, template: &[f32]) -> Result<Vec<f32>, GalleryError> {
        if template.len() != self.dim {
            return Err(GalleryError::Dimension { expected: self.dim, got: template.len() });
        }
        Ok(self.rows.chunks_exact(self.dim).map(|row| crate::index::dot(row, template)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn search_rotation_keeps_cosines_and_hides_templates() {
        let provider = LocalKeyProvider::from_hex(&LocalKeyProvider::generate_hex()).expect("key");
        let key = provider.unwrap_data_key(&provider.generate_data_key().await.expect("key")).await.expect("unwrap");
        let rotation = SearchRotation::derive(&key, 128);
        let a: Vec<f32> = (0..128).map(|i| ((i * 7) as f32).sin()).collect();
        let b: Vec<f32> = (0..128).map(|i| ((i * 3) as f32).cos()).collect();
        let (ra, rb) = (rotation.apply(&a).expect("a"), rotation.apply(&b).expect("b"));
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!((dot(&a, &b) - dot(&ra, &rb)).abs() < 1e-3);
        assert!((dot(&a, &a) - dot(&ra, &ra)).abs() < 1e-3);
        let cosine_to_original = dot(&a, &ra) / dot(&a, &a);
        assert!(cosine_to_original.abs() < 0.5, "rotated vector is not the template: {cosine_to_original}");
        let again = SearchRotation::derive(&key, 128).apply(&a).expect("again");
        assert_eq!(again, ra, "derived deterministically from the key");
    }

    #[tokio::test]
    async fn templates_round_trip_and_refuse_tampering() {
        let provider = LocalKeyProvider::from_hex(&LocalKeyProvider::generate_hex()).expect("key");
        let wrapped = provider.generate_data_key().await.expect("data key");
        let cipher = TemplateCipher::new(&provider.unwrap_data_key(&wrapped).await.expect("unwrap"));
        let template = vec![0.5f32, -0.25, 0.125];
        let sealed = cipher.seal(&template, "c/f1").expect("seal");
        assert!(!sealed.ciphertext.windows(4).any(|w| w == 0.5f32.to_le_bytes()), "plaintext not visible");
        assert_eq!(cipher.open(&sealed, "c/f1").expect("open"), template);
        assert!(cipher.open(&sealed, "c/f2").is_err(), "bound to its face");
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(cipher.open(&tampered, "c/f1").is_err());
        let other = LocalKeyProvider::from_hex(&LocalKeyProvider::generate_hex()).expect("key");
        assert!(other.unwrap_data_key(&wrapped).await.is_err(), "another master key cannot unwrap");
        assert!(LocalKeyProvider::from_hex("abcd").is_err());
    }
}
