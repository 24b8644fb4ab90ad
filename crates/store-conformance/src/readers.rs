//! Door readers and card credentials.

use super::*;
use facegate_store::{CardCredential, CardFormat, ReaderSettings, ReaderTransport, StoredReader};

pub(super) async fn readers_and_credentials(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-readers", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-readers-other", 0).await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("readers"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let policy = DoorPolicy {
        allow_everyone: true,
        allowed_subjects: Vec::new(),
        allowed_groups: Vec::new(),
        timezone: "UTC".into(),
        schedule: Vec::new(),
        liveness_required: false,
        anti_passback: None,
        target_fmr: None,
    };
    let new = NewDoor { collection_id: c.id.clone(), name: "gate".into(), policy, created_at_ms: 1 };
    let door = store.create_door(&t.id, &new, &change(ChangeAction::DoorCreated)).await.expect("door");
    assert_eq!(store.reader(&t.id, &door.id).await.expect("reader"), None);
    let reader = StoredReader {
        settings: ReaderSettings {
            transport: ReaderTransport::Tcp,
            target: "127.0.0.1:4001".into(),
            address: 101,
            baud_rate: 115_200,
            install_mode: false,
            credential_system: "default".into(),
            verdict_timeout_ms: 2000,
        },
        key: template(3),
        updated_at_ms: 7,
    };
    let set = change(ChangeAction::ReaderSet);
    assert!(matches!(store.set_reader(&other.id, &door.id, Some(&reader), &set).await, Err(StoreError::NotFound)));
    assert!(matches!(store.reader(&other.id, &door.id).await, Err(StoreError::NotFound)));
    store.set_reader(&t.id, &door.id, Some(&reader), &set).await.expect("set");
    assert_eq!(store.reader(&t.id, &door.id).await.expect("reader").as_ref(), Some(&reader));
    let moved = StoredReader { settings: ReaderSettings { address: 5, ..reader.settings.clone() }, ..reader.clone() };
    store.set_reader(&t.id, &door.id, Some(&moved), &set).await.expect("replace");
    let all = store.all_readers().await.expect("all");
    assert!(all.contains(&(t.id.clone(), door.id.clone(), moved.clone())), "{all:?}");
    store.set_reader(&t.id, &door.id, None, &change(ChangeAction::ReaderRemoved)).await.expect("remove");
    assert_eq!(store.reader(&t.id, &door.id).await.expect("reader"), None);
    store.set_reader(&t.id, &door.id, Some(&reader), &set).await.expect("set");
    store.delete_door(&t.id, &door.id, &change(ChangeAction::DoorDeleted)).await.expect("delete door");
    let all = store.all_readers().await.expect("all");
    assert!(all.iter().all(|(_, d, _)| *d != door.id), "a deleted door's reader goes with it");

    let ann = store.create_subject(&t.id, &c.id, &subject("Ann")).await.expect("subject");
    assert!(store.credentials(&t.id, &ann.id).await.expect("none").is_empty());
    let cards = vec![
        CardCredential {
            system: "default".into(),
            format: CardFormat::Wiegand26,
            facility_code: 12,
            card_number: 3456,
        },
        CardCredential { system: "tower".into(), format: CardFormat::Raw, facility_code: 0, card_number: 77 },
    ];
    let setting = change(ChangeAction::CredentialsSet);
    assert!(matches!(
        store.set_credentials(&other.id, &c.id, &ann.id, &cards, &setting).await,
        Err(StoreError::NotFound)
    ));
    store.set_credentials(&t.id, &c.id, &ann.id, &cards, &setting).await.expect("cards");
    assert_eq!(store.credentials(&t.id, &ann.id).await.expect("cards"), cards);
    assert!(store.credentials(&other.id, &ann.id).await.expect("not theirs").is_empty());
    store.set_credentials(&t.id, &c.id, &ann.id, &cards[..1], &setting).await.expect("replace");
    assert_eq!(store.credentials(&t.id, &ann.id).await.expect("cards"), cards[..1]);
    store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 9)).await.expect("erase");
    assert!(store.credentials(&t.id, &ann.id).await.expect("gone").is_empty(), "erased with the subject");
}
