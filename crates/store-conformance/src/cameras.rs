//! Cameras.

use facegate_store::{CameraId, CameraSettings, CameraSource, NewCamera, Zone};

use super::*;

pub(super) async fn cameras(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-cameras", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-cameras-other", 0).await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("cameras"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let source =
        |host: &str, seed: u8| CameraSource { display: format!("rtsp://{host}/stream"), sealed: template(seed) };
    let new = NewCamera {
        id: CameraId::random(),
        collection_id: c.id.clone(),
        name: "front".into(),
        source: Some(source("front.cam", 1)),
        settings: CameraSettings {
            masks: vec![Zone { x: 0.0, y: 0.0, width: 0.25, height: 0.5 }],
            ..CameraSettings::default()
        },
        at_ms: 1_000,
    };
    let created = store.create_camera(&t.id, &new, &change(ChangeAction::CameraCreated)).await.expect("create");
    assert_eq!((created.id.clone(), created.name.as_str()), (new.id.clone(), "front"));
    assert_eq!(created.source, "rtsp://front.cam/stream");
    assert_eq!(created.settings, new.settings, "settings kept as given");
    assert_eq!((created.created_at_ms, created.updated_at_ms), (1_000, 1_000));
    let twin = NewCamera { id: CameraId::random(), ..new.clone() };
    let taken = store.create_camera(&t.id, &twin, &change(ChangeAction::CameraCreated)).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "a name is unique within the tenant: {taken:?}");
    let elsewhere = store.create_camera(&other.id, &twin, &change(ChangeAction::CameraCreated)).await;
    assert!(matches!(elsewhere, Err(StoreError::NotFound)), "another tenant's collection");
    assert!(matches!(store.camera(&other.id, &new.id).await, Err(StoreError::NotFound)), "another tenant's camera");
    assert!(store.list_cameras(&other.id).await.expect("list").is_empty());

    // Replaced without a source: the sealed URL stays; with one: it changes.
    let disabled = CameraSettings { enabled: false, ..new.settings.clone() };
    let keep = NewCamera { name: "hall".into(), source: None, settings: disabled.clone(), at_ms: 2_000, ..new.clone() };
    let replaced = store.replace_camera(&t.id, &keep, &change(ChangeAction::CameraReplaced)).await.expect("replace");
    assert_eq!((replaced.name.as_str(), replaced.source.as_str()), ("hall", "rtsp://front.cam/stream"));
    assert_eq!((replaced.created_at_ms, replaced.updated_at_ms, replaced.settings.enabled), (1_000, 2_000, false));
    let other_replace = store.replace_camera(&other.id, &keep, &change(ChangeAction::CameraReplaced)).await;
    assert!(matches!(other_replace, Err(StoreError::NotFound)), "another tenant cannot replace it");
    assert!(
        store.running_cameras().await.expect("running").iter().all(|r| r.camera.id != new.id),
        "a disabled camera is not run"
    );
    let moved = NewCamera { source: Some(source("hall.cam", 2)), settings: new.settings.clone(), ..keep };
    store.replace_camera(&t.id, &moved, &change(ChangeAction::CameraReplaced)).await.expect("replace");
    let running = store.running_cameras().await.expect("running");
    let mine = running.iter().find(|r| r.camera.id == new.id).expect("an enabled camera is run");
    assert_eq!((&mine.tenant_id, &mine.sealed_url), (&t.id, &template(2)), "with its tenant and its new sealed URL");
    assert_eq!(mine.camera.source, "rtsp://hall.cam/stream");
    assert_eq!(store.list_cameras(&t.id).await.expect("list"), vec![mine.camera.clone()]);

    // Deleted: gone, and recorded; a collection's deletion takes its cameras.
    assert!(matches!(
        store.delete_camera(&other.id, &new.id, &change(ChangeAction::CameraDeleted)).await,
        Err(StoreError::NotFound)
    ));
    store.delete_camera(&t.id, &new.id, &change(ChangeAction::CameraDeleted)).await.expect("delete");
    assert!(matches!(store.camera(&t.id, &new.id).await, Err(StoreError::NotFound)));
    let actions: Vec<ChangeAction> =
        store.changes(&t.id, None, 100).await.expect("changes").into_iter().map(|c| c.change.action).collect();
    for action in [ChangeAction::CameraCreated, ChangeAction::CameraReplaced, ChangeAction::CameraDeleted] {
        assert!(actions.contains(&action), "{action:?} recorded in {actions:?}");
    }
    let again = NewCamera { id: CameraId::random(), ..new.clone() };
    store.create_camera(&t.id, &again, &change(ChangeAction::CameraCreated)).await.expect("the name is free again");
    store.delete_collection(&t.id, &c.id, &change(ChangeAction::CollectionDeleted)).await.expect("delete collection");
    assert!(store.list_cameras(&t.id).await.expect("list").is_empty(), "the collection's cameras went with it");
}
