//! Signed links to a sighting's best shot, for what cannot hold an API key: Home Assistant's image
//! entity fetches a camera's "last face" from the link facegate publishes on the broker (never the image
//! itself). A link names the tenant, the collection, the sighting and when it expires, with an
//! HMAC-SHA256 under a key derived from the tenant's data key: it opens that one image until then and
//! nothing else. An erased sighting takes its image with it (the link finds nothing); an erased tenant
//! takes the key (the link is refused).

use facegate_store::{CollectionId, TenantId};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::collections::Missing;
use crate::{Gallery, GalleryError};

/// Shortest life of a link, seconds.
pub const MIN_LINK_TTL_S: u32 = 60;
/// Longest life of a link, seconds (a week).
pub const MAX_LINK_TTL_S: u32 = 7 * 24 * 3600;
/// Where the links are served, under the API's origin.
pub const BEST_SHOT_LINKS: &str = "/v1/best-shots";

/// A presented link: what it names, until when (seconds since the epoch), and its signature (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestShotLink {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The collection.
    pub collection_id: CollectionId,
    /// The sighting.
    pub seq: i64,
    /// When the link stops working, seconds since the epoch.
    pub expires: i64,
    /// The link's signature: 64 hex digits.
    pub signature: String,
}

/// Why a link opens nothing (one answer for all: a guess learns nothing from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the link has expired or was not made by this service")]
pub struct LinkRefused;

fn message(tenant_id: &TenantId, collection_id: &CollectionId, seq: i64, expires: i64) -> String {
    format!("facegate/best-shot-link/v1\n{tenant_id}\n{collection_id}\n{seq}\n{expires}")
}

fn mac(key: &crate::crypto::DataKey) -> Hmac<Sha256> {
    // A key of its own, derived from the data key: the data key itself never signs anything.
    let derived = Sha256::new().chain_update(b"facegate/best-shot-link-key/v1").chain_update(key.as_ref()).finalize();
    // HMAC takes keys of any length: this cannot fail.
    Hmac::<Sha256>::new_from_slice(&derived).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

impl Gallery {
    /// A link (path and query, to put after the API's public origin) to a sighting's best shot, valid for
    /// `ttl_s` seconds (clamped to [`MIN_LINK_TTL_S`]..=[`MAX_LINK_TTL_S`]).
    ///
    /// # Errors
    /// Store and crypto failures (the tenant's data key).
    pub async fn best_shot_link(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        seq: i64,
        ttl_s: u32,
    ) -> Result<String, GalleryError> {
        let expires = self.now() / 1000 + i64::from(ttl_s.clamp(MIN_LINK_TTL_S, MAX_LINK_TTL_S));
        let key = &self.secrets(tenant_id).await?.key;
        let mut mac = mac(key);
        mac.update(message(tenant_id, collection_id, seq, expires).as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        Ok(format!("{BEST_SHOT_LINKS}/{tenant_id}/{collection_id}/{seq}?expires={expires}&signature={signature}"))
    }

    /// The best shot a link opens (a JPEG): checked against the tenant's key and the clock before
    /// anything is read. No data key is made for a tenant that has none.
    ///
    /// # Errors
    /// [`GalleryError::Link`] for an expired, altered or foreign link; [`GalleryError::NotFound`] when
    /// the sighting or its best shot is gone; store and crypto failures.
    pub async fn best_shot_by_link(&self, link: &BestShotLink) -> Result<Vec<u8>, GalleryError> {
        let (tenant_id, collection_id) = (&link.tenant_id, &link.collection_id);
        let signature = hex::decode(&link.signature).map_err(|_| LinkRefused)?;
        if link.expires < self.now() / 1000 || self.store.data_key(tenant_id).await?.is_none() {
            return Err(LinkRefused.into());
        }
        let key = &self.secrets(tenant_id).await?.key;
        let mut mac = mac(key);
        mac.update(message(tenant_id, collection_id, link.seq, link.expires).as_bytes());
        mac.verify_slice(&signature).map_err(|_| LinkRefused)?;
        let (_, shot) = self.sighting_shot_of(tenant_id, collection_id, link.seq).await?;
        shot.ok_or(GalleryError::NotFound(Missing::Sighting))
    }
}
