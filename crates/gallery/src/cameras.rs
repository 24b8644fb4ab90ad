//! Cameras as a tenant's resources: a source URL (its credentials sealed under the tenant's key and
//! never returned), the collection faces are named from, and how the camera is watched. A server runs
//! the enabled ones ([`Gallery::running_cameras`] opens their URLs for it).

use facegate_store::{
    Camera, CameraId, CameraSettings, CameraSource, ChangeAction, CollectionId, KeyId, NewCamera, RequestId, TenantId,
};
use zeroize::Zeroizing;

use crate::collections::{Actor, Missing, missing};
use crate::egress::{EgressRefusal, MAX_URL_CHARS};
use crate::{Gallery, GalleryError};

/// The key id of decisions made by a server's camera watch (there is no API key behind them).
pub const CAMERA_KEY_ID: &str = "camera";

/// The most cameras a tenant may have.
pub const MAX_CAMERAS: usize = 64;

/// A camera that cannot be stored as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CameraProblem {
    /// Not an `rtsp://` URL with a host.
    #[error("`source_url` must be an rtsp:// URL with a host")]
    NotRtsp,
    /// Longer than [`MAX_URL_CHARS`].
    #[error("`source_url` is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    /// The camera's host is outside where cameras may be dialled.
    #[error("`source_url`: {0}")]
    Egress(#[from] EgressRefusal),
    /// A new camera without a source.
    #[error("a new camera needs a `source_url`")]
    NoSource,
    /// A setting out of its range.
    #[error("`{field}` must be {range}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Its range, in words.
        range: &'static str,
    },
    /// The door to watch is not a door of the camera's collection.
    #[error("`door_id` must name a door of the camera's collection")]
    Door,
    /// The tenant has [`MAX_CAMERAS`] already.
    #[error("a tenant may have at most {MAX_CAMERAS} cameras")]
    TooMany,
}

/// A camera as a client describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    /// The collection faces are named from.
    pub collection_id: CollectionId,
    /// Name, unique within the tenant.
    pub name: String,
    /// The source URL (`rtsp://user:password@host/path`); on replacement `None` keeps the stored one.
    pub source_url: Option<String>,
    /// How it is watched.
    pub settings: CameraSettings,
}

/// An enabled camera with its opened URL: what a server dials.
pub struct CameraToRun {
    /// Who it belongs to.
    pub actor: Actor,
    /// The camera.
    pub camera: Camera,
    /// Its whole URL, credentials included.
    pub url: Zeroizing<String>,
}

fn binding(id: &CameraId) -> String {
    format!("facegate/camera-url/v1/{id}")
}

/// The frames a second a camera or an uploaded video may have analysed.
pub const ANALYSED_PER_SECOND: std::ops::RangeInclusive<f64> = 0.1..=30.0;

/// The smallest-face settings a camera or an uploaded video may have, pixels.
pub const MIN_FACE_PX: std::ops::RangeInclusive<f32> = 8.0..=1024.0;

/// A URL without its user name and password: what is shown and logged of a camera's source.
pub fn without_login(url: &url::Url) -> url::Url {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare
}

/// Checks a camera's URL against `policy`; its form without credentials.
fn check_url(policy: &crate::EgressPolicy, text: &str) -> Result<String, CameraProblem> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(CameraProblem::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| CameraProblem::NotRtsp)?;
    if url.scheme() != "rtsp" {
        return Err(CameraProblem::NotRtsp);
    }
    policy.check_host(&crate::egress::url_host(&url).ok_or(CameraProblem::NotRtsp)?)?;
    Ok(without_login(&url).to_string())
}

fn check_settings(settings: &CameraSettings) -> Result<(), CameraProblem> {
    let bad = |field, range| Err(CameraProblem::Setting { field, range });
    if !ANALYSED_PER_SECOND.contains(&settings.detections_per_second) {
        return bad("detections_per_second", "between 0.1 and 30");
    }
    if !MIN_FACE_PX.contains(&settings.min_face_px) {
        return bad("min_face_px", "between 8 and 1024");
    }
    if !(64 * 64..=8192 * 8192).contains(&settings.detect_pixels) {
        return bad("detect_pixels", "between 4096 (64×64) and 67108864 (8192×8192)");
    }
    if !(0.0..=86_400.0).contains(&settings.cooldown_s) {
        return bad("cooldown_s", "between 0 and 86400");
    }
    if settings.masks.len() > 32 {
        return bad("masks", "at most 32 zones");
    }
    let inside = |v: f32| (0.0..=1.0).contains(&v);
    if !settings.masks.iter().all(|z| inside(z.x) && inside(z.y) && inside(z.width) && inside(z.height)) {
        return bad("masks", "zones with x, y, width and height between 0 and 1 (fractions of the frame)");
    }
    if settings.retention_days.is_some_and(|days| !(1..=crate::MAX_RETENTION_DAYS).contains(&days)) {
        return bad("retention_days", "between 1 and 36500 days, or unset");
    }
    Ok(())
}

impl Gallery {
    /// A spec checked and its URL sealed: the camera to store under `id`.
    async fn new_camera(&self, actor: &Actor, id: CameraId, spec: &CameraSpec) -> Result<NewCamera, GalleryError> {
        check_settings(&spec.settings)?;
        self.collection(actor, &spec.collection_id).await?;
        if let Some(door_id) = &spec.settings.door_id {
            match self.store.door(&actor.tenant_id, door_id).await {
                Ok(door) if door.collection_id == spec.collection_id => {}
                Ok(_) | Err(facegate_store::StoreError::NotFound) => return Err(CameraProblem::Door.into()),
                Err(other) => return Err(other.into()),
            }
        }
        let source = match &spec.source_url {
            None => None,
            Some(text) => {
                let display = check_url(&self.camera_egress, text)?;
                let cipher = &self.secrets(&actor.tenant_id).await?.cipher;
                Some(CameraSource { display, sealed: cipher.seal_data(text.as_bytes(), &binding(&id))? })
            }
        };
        Ok(NewCamera {
            id,
            collection_id: spec.collection_id.clone(),
            name: spec.name.clone(),
            source,
            settings: spec.settings.clone(),
            at_ms: self.now(),
        })
    }

    /// Stores a camera; a server that runs cameras starts watching it when it is enabled.
    ///
    /// # Errors
    /// [`GalleryError::Camera`] for a bad URL or setting, or too many cameras; [`GalleryError::NotFound`]
    /// for a missing collection; a store conflict for a name taken.
    pub async fn create_camera(&self, actor: &Actor, spec: &CameraSpec) -> Result<Camera, GalleryError> {
        if spec.source_url.is_none() {
            return Err(CameraProblem::NoSource.into());
        }
        if self.store.list_cameras(&actor.tenant_id).await?.len() >= MAX_CAMERAS {
            return Err(CameraProblem::TooMany.into());
        }
        let new = self.new_camera(actor, CameraId::random(), spec).await?;
        let audit = self.change(actor, ChangeAction::CameraCreated, &new.id, described(&new));
        Ok(self.store.create_camera(&actor.tenant_id, &new, &audit).await?)
    }

    /// Replaces a camera's collection, name and settings, and its source when one is given.
    ///
    /// # Errors
    /// As [`Gallery::create_camera`]; [`GalleryError::NotFound`] for a missing camera.
    pub async fn replace_camera(
        &self,
        actor: &Actor,
        camera_id: &CameraId,
        spec: &CameraSpec,
    ) -> Result<Camera, GalleryError> {
        let before = self.camera(actor, camera_id).await?;
        let new = self.new_camera(actor, camera_id.clone(), spec).await?;
        let was = serde_json::json!({
            "name": before.name,
            "collection_id": before.collection_id,
            "source": before.source,
            "settings": before.settings,
        });
        let mut now = described(&new);
        if new.source.is_none() {
            now["source"] = was["source"].clone();
        }
        let details = crate::changes::diff(&was, &now);
        let audit = self.change(actor, ChangeAction::CameraReplaced, camera_id, details);
        self.store.replace_camera(&actor.tenant_id, &new, &audit).await.map_err(missing(Missing::Camera))
    }

    /// The tenant's cameras (no credentials).
    ///
    /// # Errors
    /// Store failures.
    pub async fn cameras(&self, actor: &Actor) -> Result<Vec<Camera>, GalleryError> {
        Ok(self.store.list_cameras(&actor.tenant_id).await?)
    }

    /// One camera (no credentials).
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn camera(&self, actor: &Actor, camera_id: &CameraId) -> Result<Camera, GalleryError> {
        self.store.camera(&actor.tenant_id, camera_id).await.map_err(missing(Missing::Camera))
    }

    /// Deletes a camera (a server watching it stops); its sightings stay until their retention ends.
    ///
    /// # Errors
    /// [`GalleryError::NotFound`].
    pub async fn delete_camera(&self, actor: &Actor, camera_id: &CameraId) -> Result<(), GalleryError> {
        let audit = self.change(actor, ChangeAction::CameraDeleted, camera_id, serde_json::json!({}));
        self.store.delete_camera(&actor.tenant_id, camera_id, &audit).await.map_err(missing(Missing::Camera))
    }

    /// Every tenant's enabled cameras with their URLs opened, for the server that watches them. A camera
    /// whose URL cannot be opened is left out (and named in the second list).
    ///
    /// # Errors
    /// Store failures.
    pub async fn running_cameras(&self) -> Result<(Vec<CameraToRun>, Vec<(TenantId, CameraId)>), GalleryError> {
        let (mut opened, mut failed) = (Vec::new(), Vec::new());
        for running in self.store.running_cameras().await? {
            let id = running.camera.id.clone();
            let url = match self.secrets(&running.tenant_id).await {
                Ok(secrets) => secrets.cipher.open_data(&running.sealed_url, &binding(&id)),
                Err(error) => Err(error),
            };
            let url = url.ok().and_then(|plain| String::from_utf8(plain.to_vec()).ok());
            match url {
                Some(url) => opened.push(CameraToRun {
                    actor: Actor::new(running.tenant_id, KeyId::from(CAMERA_KEY_ID), RequestId::random()),
                    camera: running.camera,
                    url: Zeroizing::new(url),
                }),
                None => failed.push((running.tenant_id, id)),
            }
        }
        Ok((opened, failed))
    }
}

/// What a camera change records: everything but the credentials.
fn described(new: &NewCamera) -> serde_json::Value {
    serde_json::json!({
        "name": new.name,
        "collection_id": new.collection_id,
        "source": new.source.as_ref().map(|s| &s.display),
        "settings": new.settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EgressPolicy;

    #[test]
    fn camera_urls_are_rtsp_within_the_policy_and_shown_without_credentials() {
        let policy = EgressPolicy::default().with_camera_networks();
        let shown = check_url(&policy, "rtsp://admin:s3cret@192.168.1.20:554/stream1").expect("a LAN camera");
        assert_eq!(shown, "rtsp://192.168.1.20:554/stream1");
        assert_eq!(check_url(&policy, "http://192.168.1.20/").expect_err("not rtsp"), CameraProblem::NotRtsp);
        for refused in ["rtsp://169.254.169.254/latest", "rtsp://127.0.0.1/stream", "rtsp://[::1]/x"] {
            assert!(matches!(check_url(&policy, refused), Err(CameraProblem::Egress(_))), "{refused}");
        }
        let loopback = EgressPolicy::loopback_only();
        assert!(check_url(&loopback, "rtsp://127.0.0.1:8554/clip").is_ok());
        assert!(check_url(&loopback, "rtsp://192.168.1.20/stream").is_err(), "tests reach loopback only");
        assert_eq!(
            check_url(&policy, &format!("rtsp://h/{}", "a".repeat(3000))).expect_err("too long"),
            CameraProblem::TooLong
        );
    }

    #[test]
    fn settings_out_of_range_are_named() {
        let bad = CameraSettings { detections_per_second: 0.0, ..CameraSettings::default() };
        assert!(matches!(check_settings(&bad), Err(CameraProblem::Setting { field: "detections_per_second", .. })));
        let mask = facegate_store::Zone { x: 0.5, y: 0.5, width: 2.0, height: 0.1 };
        let bad = CameraSettings { masks: vec![mask], ..CameraSettings::default() };
        assert!(matches!(check_settings(&bad), Err(CameraProblem::Setting { field: "masks", .. })));
        let bad = CameraSettings { retention_days: Some(0), ..CameraSettings::default() };
        assert!(matches!(check_settings(&bad), Err(CameraProblem::Setting { field: "retention_days", .. })));
        assert!(check_settings(&CameraSettings { retention_days: Some(30), ..CameraSettings::default() }).is_ok());
        assert!(check_settings(&CameraSettings::default()).is_ok());
    }
}
