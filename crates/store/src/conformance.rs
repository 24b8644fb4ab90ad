//! The conformance suite every [`FaceStore`] backend runs in its tests: `run_all(store).await`
//! panics with a message naming the broken guarantee. It needs a fresh, empty store.

use std::sync::Arc;

use crate::{
    AntiPassback, AntiPassbackCheck, ApiKeyRecord, ChangeAction, CollectionId, CollectionPolicy, Consent, DOOR_ACTION,
    DeliveryAttempt, DeliveryState, Direction, Door, DoorPolicy, DueQuery, EncryptedTemplate, EventType, FaceId,
    FaceStore, GRANTED, KeyId, MigratedTemplate, MigrationState, NegativeId, NewChange, NewCollection, NewDoor,
    NewEvent, NewFace, NewMigration, NewNegative, NewSubject, NewTemplate, NewWebhook, PackVersion, Scope, StoreError,
    StoredReceipt, SubjectId, TimeWindow, WebhookId, Weekday, WrappedKey, now_ms,
};

/// Runs every check against one empty store.
pub async fn run_all(store: Arc<dyn FaceStore>) {
    readiness_and_erasure_statement(store.as_ref()).await;
    tenants_and_keys(store.as_ref()).await;
    data_keys(store.as_ref()).await;
    collections_are_per_tenant(store.as_ref()).await;
    subjects_faces_and_erasure(store.as_ref()).await;
    failed_writes_change_nothing(store.as_ref()).await;
    audit_trail(store.as_ref()).await;
    concurrent_enrolments(store.clone()).await;
    pack_migration(store.as_ref()).await;
    doors_and_passages(store.as_ref()).await;
    ignore_lists(store.as_ref()).await;
    webhook_outbox(store.as_ref()).await;
    retention_and_consent(store.as_ref()).await;
    if store.searches_in_store() {
        store_side_search(store.as_ref()).await;
    }
}

async fn readiness_and_erasure_statement(store: &dyn FaceStore) {
    store.ping().await.expect("a reachable store answers a ping");
    let residue = store.erasure_residue();
    assert!(residue.contains("backup"), "an erasure receipt says what backups still hold: {residue}");
}

async fn store_side_search(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-search").await.expect("tenant");
    let other = store.create_tenant("conformance-search-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("search"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let noise = store
        .create_collection(&t.id, &collection("search-noise"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let mut expected = Vec::new();
    for seed in 0..20u8 {
        let s = store.create_subject(&t.id, &c.id, &subject(&format!("p{seed}"))).await.expect("subject");
        let added = store.add_faces(&t.id, &c.id, &s.id, &[face(seed)], &audit(&c.id, 0)).await.expect("face");
        expected.push((seed, s.id, added[0].id.clone()));
        let n = store.create_subject(&t.id, &noise.id, &subject("noise")).await.expect("subject");
        store.add_faces(&t.id, &noise.id, &n.id, &[face(seed)], &audit(&noise.id, 0)).await.expect("face");
    }
    for (seed, subject_id, face_id) in &expected {
        let hits = store.search_faces(&t.id, &c.id, &search_vector(*seed), 3).await.expect("search");
        assert_eq!(hits.len(), 3);
        assert_eq!((&hits[0].subject_id, &hits[0].face_id), (subject_id, face_id), "nearest is the same vector");
        assert!((hits[0].score - 1.0).abs() < 1e-4, "cosine of a vector with itself: {}", hits[0].score);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        assert!(expected.iter().any(|e| e.1 == hits[1].subject_id), "only this collection's faces");
    }
    assert!(matches!(store.search_faces(&other.id, &c.id, &search_vector(1), 3).await, Err(StoreError::NotFound)));
}

fn template(seed: u8) -> EncryptedTemplate {
    EncryptedTemplate { nonce: vec![seed; 12], ciphertext: vec![seed; 528] }
}

fn pack(name: &str) -> PackVersion {
    PackVersion { pack: name.into(), version: format!("{name}-v1") }
}

fn pack_template(name: &str, seed: u8) -> NewTemplate {
    NewTemplate { pack: pack(name), template: template(seed), search_vector: search_vector(seed) }
}

fn face(seed: u8) -> NewFace {
    NewFace {
        id: FaceId::random(),
        template: pack_template("default", seed),
        other_templates: Vec::new(),
        crop: None,
        detection_score: 0.9,
        sharpness: 120.0,
        face_size: 100.0,
        created_at_ms: 1_000 + i64::from(seed),
    }
}

/// A unit vector of 128 values pointing mostly along axis `seed % 128`.
fn search_vector(seed: u8) -> Vec<f32> {
    let mut v = vec![0.05f32; 128];
    v[usize::from(seed) % 128] = 1.0;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// An audit event for a change made by the suite or a bench (`add_faces` and the erasures record one).
pub fn audit(collection_id: &CollectionId, at_ms: i64) -> NewEvent {
    NewEvent {
        collection_id: collection_id.clone(),
        at_ms,
        key_id: "k".into(),
        request_id: "r".into(),
        action: "change".into(),
        result: "done".into(),
        subject_id: None,
        score: None,
        face_index: None,
        door_id: None,
        reason: None,
        liveness: None,
        correlation_id: None,
    }
}

/// A configuration change by the key `k`.
pub fn change(action: ChangeAction) -> NewChange {
    change_at(action, 1)
}

/// A configuration change by the key `k` at `at_ms`.
pub fn change_at(action: ChangeAction, at_ms: i64) -> NewChange {
    NewChange::local("k", action, "object", serde_json::json!({ "field": "value" }), at_ms)
}

/// Due deliveries at `now_ms`, at most `limit`, every webhook's.
fn due(now_ms: i64, limit: u32) -> DueQuery {
    DueQuery { now_ms, limit, per_webhook: limit, skip: Vec::new() }
}

fn collection(name: &str) -> NewCollection {
    NewCollection {
        name: name.into(),
        pack: "default".into(),
        embedding_size: 128,
        target_fmr: 1e-3,
        keep_crops: false,
        created_at_ms: 1_000,
    }
}

fn subject(name: &str) -> NewSubject {
    NewSubject {
        name: name.into(),
        metadata: serde_json::json!({ "badge": name }),
        groups: None,
        consent: None,
        created_at_ms: 1_000,
    }
}

async fn tenants_and_keys(store: &dyn FaceStore) {
    let tenant = store.create_tenant("conformance-keys").await.expect("tenant created");
    assert!(
        matches!(store.create_tenant("conformance-keys").await, Err(StoreError::Conflict(_))),
        "tenant names are unique"
    );
    let found = store.tenant_by_name("conformance-keys").await.expect("lookup").expect("tenant found by name");
    assert_eq!(found, tenant);
    assert!(store.tenant_by_name("nobody").await.expect("lookup").is_none());

    let key = ApiKeyRecord {
        id: KeyId::random(),
        tenant_id: tenant.id.clone(),
        name: "door".into(),
        key_hash: "ab".repeat(32),
        scopes: vec![Scope::Search, Scope::Enroll],
        created_at_ms: 5,
        revoked_at_ms: None,
    };
    store.insert_api_key(&key, &change(ChangeAction::KeyCreated)).await.expect("key stored");
    assert_eq!(store.api_key_by_hash(&key.key_hash).await.expect("lookup"), Some(key.clone()));
    assert!(store.api_key_by_hash(&"cd".repeat(32)).await.expect("lookup").is_none());
    assert!(store.list_api_keys().await.expect("list").iter().any(|k| k.id == key.id));
    assert!(store.revoke_api_key(&key.id, 9, &change(ChangeAction::KeyRevoked)).await.expect("revoke"));
    assert!(
        !store.revoke_api_key(&key.id, 10, &change(ChangeAction::KeyRevoked)).await.expect("revoke again"),
        "revoking twice reports false"
    );
    let revoked = store.api_key_by_hash(&key.key_hash).await.expect("lookup").expect("still there");
    assert_eq!(revoked.revoked_at_ms, Some(9));

    // Each change is in the key's tenant's configuration trail, in order, once; another tenant sees none.
    let trail = store.changes(&tenant.id, None, 100).await.expect("changes");
    let actions: Vec<ChangeAction> = trail.iter().map(|c| c.change.action).collect();
    assert_eq!(
        actions,
        vec![ChangeAction::KeyCreated, ChangeAction::KeyRevoked],
        "a second revocation records nothing"
    );
    assert_eq!(trail[0].change.details, serde_json::json!({ "field": "value" }));
    assert_eq!(trail[0].change.key_id.as_str(), "k");
    assert!(trail[0].seq < trail[1].seq);
    let page = store.changes(&tenant.id, Some(trail[0].seq), 100).await.expect("changes");
    assert_eq!(page.len(), 1, "after the cursor");
    let other = store.create_tenant("conformance-keys-other").await.expect("tenant");
    assert!(store.changes(&other.id, None, 100).await.expect("changes").is_empty());
}

async fn data_keys(store: &dyn FaceStore) {
    let tenant = store.create_tenant("conformance-data-keys").await.expect("tenant");
    assert!(store.data_key(&tenant.id).await.expect("lookup").is_none());
    let first = WrappedKey { provider: "local".into(), master_key_id: "m1".into(), ciphertext: vec![1; 60] };
    let second = WrappedKey { ciphertext: vec![2; 60], ..first.clone() };
    assert_eq!(store.insert_data_key_if_absent(&tenant.id, &first).await.expect("insert"), first);
    assert_eq!(
        store.insert_data_key_if_absent(&tenant.id, &second).await.expect("insert"),
        first,
        "the first key wins"
    );
    assert_eq!(store.data_key(&tenant.id).await.expect("lookup"), Some(first));
}

async fn collections_are_per_tenant(store: &dyn FaceStore) {
    let a = store.create_tenant("conformance-a").await.expect("tenant a");
    let b = store.create_tenant("conformance-b").await.expect("tenant b");
    let doors = store
        .create_collection(&a.id, &collection("doors"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    assert_eq!((doors.subject_count, doors.face_count), (0, 0));
    assert!(matches!(
        store.create_collection(&a.id, &collection("doors"), &change(ChangeAction::CollectionCreated)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_collection(&b.id, &collection("doors"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("same name in another tenant");
    assert_eq!(store.list_collections(&a.id).await.expect("list").len(), 1);
    assert_eq!(store.collection(&a.id, &doors.id).await.expect("get").name, "doors");
    assert!(matches!(store.collection(&b.id, &doors.id).await, Err(StoreError::NotFound)), "other tenant: not found");
    assert!(matches!(store.create_subject(&b.id, &doors.id, &subject("x")).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.delete_collection(&b.id, &doors.id, &change_at(ChangeAction::CollectionDeleted, 7)).await,
        Err(StoreError::NotFound)
    ));
    let s = store.create_subject(&a.id, &doors.id, &subject("ann")).await.expect("subject");
    store.add_faces(&a.id, &doors.id, &s.id, &[face(1)], &audit(&doors.id, 0)).await.expect("face");
    let erased = store
        .delete_collection(&a.id, &doors.id, &change_at(ChangeAction::CollectionDeleted, 7))
        .await
        .expect("deleted");
    assert_eq!((erased.subject_ids.len(), erased.face_ids.len()), (1, 1));
    assert!(matches!(store.collection(&a.id, &doors.id).await, Err(StoreError::NotFound)));
}

async fn subjects_faces_and_erasure(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-faces").await.expect("tenant");
    let other = store.create_tenant("conformance-faces-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("staff"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let r0 = store.collection_revision(&t.id, &c.id).await.expect("revision");
    let ann = store.create_subject(&t.id, &c.id, &subject("ann")).await.expect("ann");
    let bob = store.create_subject(&t.id, &c.id, &subject("bob")).await.expect("bob");
    assert_eq!(ann.metadata["badge"], "ann");
    let added = store.add_faces(&t.id, &c.id, &ann.id, &[face(1), face(2)], &audit(&c.id, 0)).await.expect("faces");
    store.add_faces(&t.id, &c.id, &bob.id, &[face(3)], &audit(&c.id, 0)).await.expect("face");
    let r1 = store.collection_revision(&t.id, &c.id).await.expect("revision");
    assert_ne!(r0, r1, "enrolment changes the revision");
    assert_eq!(store.subject(&t.id, &c.id, &ann.id).await.expect("ann").face_count, 2);
    let listed = store.list_faces(&t.id, &c.id, &ann.id).await.expect("faces");
    assert_eq!(listed.iter().map(|f| &f.id).collect::<Vec<_>>(), added.iter().map(|f| &f.id).collect::<Vec<_>>());
    let templates = store.subject_templates(&t.id, &c.id, &ann.id).await.expect("templates");
    assert_eq!(templates.len(), 2);
    assert!(templates.iter().any(|s| s.template == template(1)), "template bytes round-trip");
    let (revision, all) = store.collection_templates(&t.id, &c.id).await.expect("all templates");
    assert_eq!((revision, all.len()), (r1, 3));
    assert!(matches!(store.collection_templates(&other.id, &c.id).await, Err(StoreError::NotFound)));
    let listed_subjects = store.list_subjects(&t.id, &c.id).await.expect("subjects");
    assert_eq!(listed_subjects.len(), 2);
    let wanted = [bob.id.clone(), SubjectId::from("no-such-subject"), ann.id.clone()];
    let mut found: Vec<SubjectId> =
        store.subjects_by_id(&t.id, &c.id, &wanted).await.expect("by id").into_iter().map(|s| s.id).collect();
    found.sort();
    let mut expected = vec![ann.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(found, expected, "subjects by id: those that exist");
    assert!(matches!(store.subjects_by_id(&other.id, &c.id, &wanted).await, Err(StoreError::NotFound)));
    assert_eq!(store.collection(&t.id, &c.id).await.expect("collection").face_count, 3);

    let renamed = NewSubject {
        name: "Ann B.".into(),
        metadata: serde_json::json!({"badge": 7}),
        groups: None,
        consent: None,
        created_at_ms: 0,
    };
    let updated = store.update_subject(&t.id, &c.id, &ann.id, &renamed).await.expect("update");
    assert_eq!((updated.name.as_str(), updated.created_at_ms), ("Ann B.", ann.created_at_ms));

    // Each subject's own data key: stored once (the first one stays), listed per collection, the
    // tenant's only, erased with the subject.
    let ann_key = EncryptedTemplate { nonce: vec![7; 12], ciphertext: vec![7; 48] };
    assert_eq!(store.subject_key(&t.id, &c.id, &ann.id).await.expect("key"), None);
    let stored = store.insert_subject_key_if_absent(&t.id, &c.id, &ann.id, &ann_key).await.expect("key stored");
    assert_eq!(stored, ann_key);
    let second = EncryptedTemplate { nonce: vec![8; 12], ciphertext: vec![8; 48] };
    let kept = store.insert_subject_key_if_absent(&t.id, &c.id, &ann.id, &second).await.expect("key kept");
    assert_eq!(kept, ann_key, "a racing second key does not replace the first");
    assert_eq!(store.subject_key(&t.id, &c.id, &ann.id).await.expect("key"), Some(ann_key.clone()));
    assert_eq!(store.subject_keys(&t.id, &c.id).await.expect("keys"), vec![(ann.id.clone(), ann_key.clone())]);
    let foreign = store.insert_subject_key_if_absent(&other.id, &c.id, &ann.id, &second).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "another tenant's subject");
    assert!(matches!(store.subject_keys(&other.id, &c.id).await, Err(StoreError::NotFound)));

    let erased = store.delete_face(&t.id, &c.id, &ann.id, &added[0].id, &audit(&c.id, 50)).await.expect("delete face");
    assert_eq!(erased.face_ids, vec![added[0].id.clone()]);
    assert!(!erased.subject_keys_deleted, "erasing one face keeps the subject's key");
    assert!(matches!(
        store.delete_face(&t.id, &c.id, &ann.id, &added[0].id, &audit(&c.id, 51)).await,
        Err(StoreError::NotFound)
    ));
    assert_ne!(store.collection_revision(&t.id, &c.id).await.expect("revision"), r1, "erasure changes the revision");

    let erased = store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 60)).await.expect("delete subject");
    assert_eq!(erased.subject_ids, vec![ann.id.clone()]);
    assert_eq!(erased.face_ids, vec![added[1].id.clone()]);
    assert_eq!(erased.erased_at_ms, 60);
    assert!(erased.subject_keys_deleted, "the subject's key goes with it");
    assert_eq!(erased.tenant_sealed, 1, "its face's template was sealed under the tenant's key (a bare nonce)");
    assert!(matches!(store.subject(&t.id, &c.id, &ann.id).await, Err(StoreError::NotFound)));
    assert!(store.subject_keys(&t.id, &c.id).await.expect("keys").is_empty(), "no key is left of ann");
    let (_, left) = store.collection_templates(&t.id, &c.id).await.expect("templates");
    assert_eq!(left.len(), 1, "only bob's template is left");
    assert!(matches!(
        store.delete_subject(&other.id, &c.id, &bob.id, &audit(&c.id, 61)).await,
        Err(StoreError::NotFound)
    ));
    let recorded: Vec<i64> =
        store.events(&t.id, &c.id, None, None, 100).await.expect("events").iter().map(|e| e.event.at_ms).collect();
    assert_eq!(recorded, vec![0, 0, 50, 60], "each change records its audit event, failed ones none");
}

async fn failed_writes_change_nothing(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-atomic").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("atomic"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let s = store.create_subject(&t.id, &c.id, &subject("s")).await.expect("subject");
    let before = store.collection_revision(&t.id, &c.id).await.expect("revision");
    assert!(matches!(
        store.add_faces(&t.id, &c.id, &"no-such-subject".into(), &[face(1)], &audit(&c.id, 0)).await,
        Err(StoreError::NotFound)
    ));
    let duplicate = face(2);
    let batch = [face(3), duplicate.clone(), duplicate];
    assert!(
        store.add_faces(&t.id, &c.id, &s.id, &batch, &audit(&c.id, 0)).await.is_err(),
        "a batch with a repeated id fails"
    );
    assert!(store.list_faces(&t.id, &c.id, &s.id).await.expect("faces").is_empty(), "and writes none of it");
    assert_eq!(store.collection_revision(&t.id, &c.id).await.expect("revision"), before);
    assert!(store.events(&t.id, &c.id, None, None, 10).await.expect("events").is_empty(), "nor their audit events");
}

async fn audit_trail(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-audit").await.expect("tenant");
    let other = store.create_tenant("conformance-audit-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("door"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let event = |at_ms, result: &str| NewEvent {
        collection_id: c.id.clone(),
        at_ms,
        key_id: "k".into(),
        request_id: "r".into(),
        action: "recognize".into(),
        result: result.into(),
        subject_id: None,
        score: Some(0.5),
        face_index: Some(0),
        door_id: None,
        reason: None,
        liveness: None,
        correlation_id: (result == "unknown").then(|| "client-42".to_string()),
    };
    store
        .append_events(&t.id, &[event(100, "unknown"), event(200, "match"), event(300, "match")])
        .await
        .expect("append");
    let all = store.events(&t.id, &c.id, None, None, 100).await.expect("events");
    assert_eq!(all.iter().map(|e| e.event.at_ms).collect::<Vec<_>>(), vec![100, 200, 300]);
    assert_eq!(all[0].event.correlation_id.as_deref(), Some("client-42"), "a client's correlation id is kept apart");
    assert_eq!(all[1].event.correlation_id, None);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let since = store.events(&t.id, &c.id, Some(100), None, 100).await.expect("events since");
    assert_eq!(since.len(), 2, "since is exclusive");
    let first_page = store.events(&t.id, &c.id, None, None, 2).await.expect("limited");
    assert_eq!(first_page.len(), 2);
    let rest = store.events(&t.id, &c.id, None, Some(first_page[1].seq), 2).await.expect("next page");
    assert_eq!(rest, all[2..].to_vec(), "paging by cursor misses nothing");
    assert!(matches!(store.events(&other.id, &c.id, None, None, 10).await, Err(StoreError::NotFound)));
    assert!(matches!(store.append_events(&other.id, &[event(400, "match")]).await, Err(StoreError::NotFound)));
}

async fn concurrent_enrolments(store: Arc<dyn FaceStore>) {
    let t = store.create_tenant("conformance-concurrent").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("busy"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let s = store.create_subject(&t.id, &c.id, &subject("busy")).await.expect("subject");
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let (store, t, c, s) = (store.clone(), t.id.clone(), c.id.clone(), s.id.clone());
            tokio::spawn(async move { store.add_faces(&t, &c, &s, &[face(i), face(i + 100)], &audit(&c, 0)).await })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("task").expect("enrolment").into_iter().map(|f| f.id));
    }
    let mut stored: Vec<FaceId> =
        store.list_faces(&t.id, &c.id, &s.id).await.expect("faces").into_iter().map(|f| f.id).collect();
    acknowledged.sort();
    stored.sort();
    assert_eq!(stored, acknowledged, "concurrent enrolments neither lose nor duplicate faces");
}

/// A collection moves to another pack: kept frames are handed out until each face has a target
/// template, the switch is refused while any is left, faces without a frame are reported, a face erased
/// mid-way takes its frame and templates with it, and after the switch only target templates are searched.
async fn pack_migration(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-migration").await.expect("tenant");
    let other = store.create_tenant("conformance-migration-other").await.expect("tenant");
    let new = NewCollection { keep_crops: true, ..collection("moving") };
    let c = store.create_collection(&t.id, &new, &change(ChangeAction::CollectionCreated)).await.expect("collection");
    assert!(c.keep_crops);
    let (ann, bob, cy) = (
        store.create_subject(&t.id, &c.id, &subject("ann")).await.expect("ann"),
        store.create_subject(&t.id, &c.id, &subject("bob")).await.expect("bob"),
        store.create_subject(&t.id, &c.id, &subject("cy")).await.expect("cy"),
    );
    let with_crop = |seed| NewFace { crop: Some(template(seed + 50)), ..face(seed) };
    let ann_faces = store.add_faces(&t.id, &c.id, &ann.id, &[with_crop(1), with_crop(2)], &audit(&c.id, 0)).await;
    let ann_faces = ann_faces.expect("ann's faces");
    assert!(ann_faces.iter().all(|f| f.crop_kept && f.pack == pack("default")));
    let bob_face = store.add_faces(&t.id, &c.id, &bob.id, &[with_crop(3)], &audit(&c.id, 0)).await.expect("bob");
    let cy_face = store.add_faces(&t.id, &c.id, &cy.id, &[face(4)], &audit(&c.id, 0)).await.expect("cy, no crop");
    assert!(store.migration(&t.id, &c.id).await.expect("none yet").is_none());
    assert!(store.running_migrations().await.expect("running").iter().all(|(_, id)| *id != c.id));

    let target = NewMigration { target: pack("next"), target_dim: 128, started_at_ms: 2_000 };
    assert!(matches!(
        store.start_migration(&other.id, &c.id, &target, &audit(&c.id, 1)).await,
        Err(StoreError::NotFound)
    ));
    let started = store.start_migration(&t.id, &c.id, &target, &audit(&c.id, 1)).await.expect("start");
    assert_eq!((started.state, started.faces_total, started.faces_migrated), (MigrationState::Running, 4, 0));
    assert_eq!(started.from_pack, "default");
    assert_eq!(started.faces_without_crop.iter().map(|f| &f.face_id).collect::<Vec<_>>(), vec![&cy_face[0].id]);
    assert!(matches!(
        store.start_migration(&t.id, &c.id, &target, &audit(&c.id, 1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.running_migrations().await.expect("running").contains(&(t.id.clone(), c.id.clone())));

    // A face enrolled during the migration comes with both templates.
    let dual = NewFace { other_templates: vec![pack_template("next", 105)], ..with_crop(5) };
    store.add_faces(&t.id, &c.id, &bob.id, &[dual], &audit(&c.id, 2)).await.expect("dual enrolment");
    let first = store.crops_to_migrate(&t.id, &c.id, 2).await.expect("crops");
    assert_eq!(first.len(), 2, "a batch of the limit's size");
    assert_eq!(first[0].crop, template(51), "crop bytes round-trip");
    let migrated = |crops: &[crate::StoredCrop]| -> Vec<MigratedTemplate> {
        crops
            .iter()
            .map(|c| MigratedTemplate { face_id: c.face_id.clone(), template: pack_template("next", 100) })
            .collect()
    };
    assert_eq!(store.add_migrated_templates(&t.id, &c.id, &migrated(&first)).await.expect("store"), 2);
    assert!(matches!(store.finish_migration(&t.id, &c.id, &audit(&c.id, 3)).await, Err(StoreError::Conflict(_))));
    let rest = store.crops_to_migrate(&t.id, &c.id, 10).await.expect("crops");
    assert_eq!(rest.iter().map(|c| &c.face_id).collect::<Vec<_>>(), vec![&bob_face[0].id]);
    // Bob is erased between reading his frame and storing his new template: nothing of him comes back.
    store.delete_subject(&t.id, &c.id, &bob.id, &audit(&c.id, 4)).await.expect("erase bob");
    assert_eq!(store.add_migrated_templates(&t.id, &c.id, &migrated(&rest)).await.expect("store"), 0);
    assert!(store.crops_to_migrate(&t.id, &c.id, 10).await.expect("crops").is_empty());
    let progress = store.migration(&t.id, &c.id).await.expect("read").expect("exists");
    assert_eq!((progress.faces_total, progress.faces_migrated), (3, 2));

    let before = store.collection_revision(&t.id, &c.id).await.expect("revision");
    let finished = store.finish_migration(&t.id, &c.id, &audit(&c.id, 5)).await.expect("switch");
    assert_eq!((finished.state, finished.finished_at_ms), (MigrationState::Finished, Some(5)));
    assert_eq!(finished.faces_without_crop.len(), 1, "cy must enrol again");
    assert_ne!(store.collection_revision(&t.id, &c.id).await.expect("revision"), before);
    let switched = store.collection(&t.id, &c.id).await.expect("collection");
    assert_eq!(switched.pack, "next");
    let (_, searched) = store.collection_templates(&t.id, &c.id).await.expect("templates");
    assert_eq!(searched.len(), 2, "ann's two faces, cy's old template is not searched");
    assert!(searched.iter().all(|s| s.template == template(100)));
    let ann_now = store.list_faces(&t.id, &c.id, &ann.id).await.expect("faces");
    assert!(ann_now.iter().all(|f| f.pack == pack("next")));
    assert!(store.subject_templates(&t.id, &c.id, &cy.id).await.expect("cy").is_empty());
    if store.searches_in_store() {
        let hits = store.search_faces(&t.id, &c.id, &search_vector(100), 5).await.expect("search");
        assert_eq!(hits.len(), 2, "only faces on the collection's pack are searched");
    }
    assert!(matches!(store.finish_migration(&t.id, &c.id, &audit(&c.id, 6)).await, Err(StoreError::NotFound)));
    let erased = store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 7)).await.expect("erase ann");
    assert_eq!(erased.face_ids.len(), 2);
}

async fn doors_and_passages(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-doors").await.expect("tenant");
    let other = store.create_tenant("conformance-doors-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("office"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let grouped = NewSubject { groups: Some(vec!["staff".into(), "night".into()]), ..subject("Ann") };
    let ann = store.create_subject(&t.id, &c.id, &grouped).await.expect("subject");
    assert_eq!(ann.groups, vec!["staff".to_string(), "night".to_string()]);
    let renamed = NewSubject { name: "Ann B.".into(), groups: None, ..subject("Ann") };
    let kept = store.update_subject(&t.id, &c.id, &ann.id, &renamed).await.expect("update");
    assert_eq!(kept.groups, ann.groups, "an update without groups keeps them");
    let regrouped = NewSubject { groups: Some(vec![]), ..renamed };
    assert!(store.update_subject(&t.id, &c.id, &ann.id, &regrouped).await.expect("update").groups.is_empty());

    let policy = DoorPolicy {
        allow_everyone: false,
        allowed_subjects: vec![ann.id.clone()],
        allowed_groups: vec!["staff".into()],
        timezone: "Europe/Paris".into(),
        schedule: vec![TimeWindow { days: vec![Weekday::Mon], from: "08:00".into(), to: "18:00".into() }],
        liveness_required: true,
        anti_passback: None,
        target_fmr: None,
    };
    let new = |name: &str| NewDoor {
        collection_id: c.id.clone(),
        name: name.into(),
        policy: policy.clone(),
        created_at_ms: 5,
    };
    let entry = store.create_door(&t.id, &new("entry"), &change(ChangeAction::DoorCreated)).await.expect("door");
    assert_eq!((entry.name.as_str(), &entry.policy, &entry.collection_id), ("entry", &policy, &c.id));
    assert!(
        matches!(
            store.create_door(&t.id, &new("entry"), &change(ChangeAction::DoorCreated)).await,
            Err(StoreError::Conflict(_))
        ),
        "names are unique"
    );
    assert!(
        matches!(
            store.create_door(&other.id, &new("x"), &change(ChangeAction::DoorCreated)).await,
            Err(StoreError::NotFound)
        ),
        "another tenant's collection"
    );
    let paired = NewDoor {
        policy: DoorPolicy {
            anti_passback: Some(AntiPassback { direction: Direction::Exit, paired_door: entry.id.clone() }),
            ..policy.clone()
        },
        ..new("exit")
    };
    let exit = store.create_door(&t.id, &paired, &change(ChangeAction::DoorCreated)).await.expect("door");
    assert_eq!(store.list_doors(&t.id).await.expect("doors").len(), 2);
    assert!(store.list_doors(&other.id).await.expect("doors").is_empty());
    assert!(matches!(store.door(&other.id, &exit.id).await, Err(StoreError::NotFound)));
    let replaced = store
        .replace_door(
            &t.id,
            &exit.id,
            &NewDoor { name: "way out".into(), ..paired.clone() },
            &change(ChangeAction::DoorReplaced),
        )
        .await;
    assert_eq!(replaced.expect("replaced").name, "way out");
    assert!(matches!(
        store.replace_door(&other.id, &exit.id, &paired, &change(ChangeAction::DoorReplaced)).await,
        Err(StoreError::NotFound)
    ));

    let decision = |door: &Door, at_ms, result: &str| NewEvent {
        action: DOOR_ACTION.into(),
        result: result.into(),
        subject_id: Some(ann.id.clone()),
        door_id: Some(door.id.clone()),
        reason: (result != GRANTED).then(|| "anti_passback".to_string()),
        liveness: Some(0.9),
        score: Some(0.7),
        ..audit(&c.id, at_ms)
    };
    // Anti-passback: at the exit (paired with the entry), a person passes once, then not again until they
    // pass the entry; presence is its own record, so expiring the trail does not reset it.
    let passed = |door: &Door, at_ms| decision(door, at_ms, GRANTED);
    assert!(
        store
            .record_passage(
                &t.id,
                &passed(&exit, 100),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 100, "denied") })
            )
            .await
            .expect("pass")
    );
    assert!(
        !store
            .record_passage(
                &t.id,
                &passed(&exit, 150),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 150, "denied") })
            )
            .await
            .expect("pass"),
        "twice"
    );
    assert!(store.record_passage(&t.id, &passed(&entry, 200), None).await.expect("pass"), "the entry clears it");
    assert!(
        store
            .record_passage(
                &t.id,
                &passed(&exit, 300),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 300, "denied") })
            )
            .await
            .expect("pass")
    );
    let all = store.passages(&t.id, &c.id, 0, 1_000).await.expect("passages");
    assert_eq!(all.iter().map(|e| e.event.at_ms).collect::<Vec<_>>(), vec![100, 200, 300], "granted only");
    assert_eq!(all[0].event.liveness, Some(0.9));
    assert_eq!(
        store.passages(&t.id, &c.id, 100, 200).await.expect("passages").len(),
        1,
        "from inclusive, to exclusive"
    );
    assert!(matches!(store.passages(&other.id, &c.id, 0, 1_000).await, Err(StoreError::NotFound)));
    let denied = store.events(&t.id, &c.id, Some(140), Some(0), 1).await.expect("events");
    assert_eq!((denied[0].event.at_ms, denied[0].event.reason.as_deref()), (150, Some("anti_passback")));
    let refused = store
        .record_passage(
            &other.id,
            &passed(&exit, 400),
            Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 400, "denied") }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's door");
    // An administrator's reset lets the person out again, and is a configuration change.
    let (exits, reset) = ([exit.id.clone()], change(ChangeAction::PresenceReset));
    assert_eq!(store.reset_presence(&t.id, &exits, Some(&ann.id), &reset).await.expect("reset"), 1);
    assert!(
        store
            .record_passage(
                &t.id,
                &passed(&exit, 500),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 500, "denied") })
            )
            .await
            .expect("pass")
    );
    let none = store.reset_presence(&other.id, &exits, None, &reset).await.expect("reset");
    assert_eq!(none, 0, "another tenant resets nothing");
    assert!(
        !store
            .record_passage(
                &t.id,
                &passed(&exit, 600),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 600, "denied") })
            )
            .await
            .expect("pass")
    );
    let trail = store.changes(&t.id, None, 100).await.expect("changes");
    assert!(trail.iter().any(|c| c.change.action == ChangeAction::PresenceReset));

    store.delete_door(&t.id, &entry.id, &change(ChangeAction::DoorDeleted)).await.expect("delete");
    assert!(matches!(
        store.delete_door(&t.id, &entry.id, &change(ChangeAction::DoorDeleted)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.passages(&t.id, &c.id, 0, 1_000).await.expect("passages").len(), 4, "decisions stay");
    let unpaired = store.door(&t.id, &exit.id).await.expect("exit");
    assert_eq!(unpaired.policy.anti_passback, None, "a deleted door's pair loses its pairing");
    assert!(store.record_passage(&t.id, &passed(&exit, 700), None).await.expect("pass"), "nobody is kept inside");
    store
        .delete_collection(&t.id, &c.id, &change_at(ChangeAction::CollectionDeleted, 9))
        .await
        .expect("delete collection");
    assert!(matches!(store.door(&t.id, &exit.id).await, Err(StoreError::NotFound)), "doors go with their collection");
}

async fn ignore_lists(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-ignore").await.expect("tenant");
    let other = store.create_tenant("conformance-ignore-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("ignore"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let ann = store.create_subject(&t.id, &c.id, &subject("Ann")).await.expect("subject");
    let bob = store.create_subject(&t.id, &c.id, &subject("Bob")).await.expect("subject");
    let negative = |subject_id: &SubjectId, seed: u8, pack: &str| NewNegative {
        id: NegativeId::random(),
        subject_id: subject_id.clone(),
        pack: PackVersion { pack: pack.into(), version: "v1".into() },
        template: template(seed),
        created_at_ms: i64::from(seed),
    };
    let first =
        store.add_negative(&t.id, &c.id, &negative(&ann.id, 1, "default"), &audit(&c.id, 1)).await.expect("add");
    assert_eq!((&first.subject_id, first.pack.pack.as_str()), (&ann.id, "default"));
    store.add_negative(&t.id, &c.id, &negative(&ann.id, 2, "other"), &audit(&c.id, 2)).await.expect("add");
    store.add_negative(&t.id, &c.id, &negative(&bob.id, 3, "default"), &audit(&c.id, 3)).await.expect("add");
    let refused = store.add_negative(&other.id, &c.id, &negative(&ann.id, 4, "default"), &audit(&c.id, 4)).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's subject");
    assert_eq!(store.list_negatives(&t.id, &c.id, &ann.id).await.expect("list").len(), 2);
    let of_ann = store.negatives_of(&t.id, &c.id, std::slice::from_ref(&ann.id), "default").await.expect("negatives");
    assert_eq!(
        of_ann.iter().map(|n| (&n.id, &n.template)).collect::<Vec<_>>(),
        vec![(&first.id, &template(1))],
        "one pack's"
    );
    let both = store.negatives_of(&t.id, &c.id, &[ann.id.clone(), bob.id.clone()], "default").await.expect("negatives");
    assert_eq!(both.len(), 2);
    assert!(matches!(
        store.negatives_of(&other.id, &c.id, std::slice::from_ref(&ann.id), "default").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.events(&t.id, &c.id, None, None, 10).await.expect("events").len(), 3, "each with its audit event");
    store.delete_negative(&t.id, &c.id, &ann.id, &first.id, &audit(&c.id, 5)).await.expect("delete");
    let again = store.delete_negative(&t.id, &c.id, &ann.id, &first.id, &audit(&c.id, 6)).await;
    assert!(matches!(again, Err(StoreError::NotFound)));
    store.delete_subject(&t.id, &c.id, &bob.id, &audit(&c.id, 7)).await.expect("erase");
    assert!(
        store.negatives_of(&t.id, &c.id, std::slice::from_ref(&bob.id), "default").await.expect("negatives").is_empty(),
        "erased with the subject"
    );
}

async fn webhook_outbox(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-outbox").await.expect("tenant");
    let other = store.create_tenant("conformance-outbox-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("outbox"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let hook = |types: Vec<EventType>| NewWebhook {
        id: WebhookId::random(),
        url: "https://hooks.example.org/in".into(),
        event_types: types,
        secret: template(9),
        created_at_ms: 1,
    };
    let doors = store
        .create_webhook(&t.id, &hook(vec![EventType::DoorDecision]), &change(ChangeAction::WebhookCreated))
        .await
        .expect("webhook");
    let all = store
        .create_webhook(&t.id, &hook(EventType::ALL.to_vec()), &change(ChangeAction::WebhookCreated))
        .await
        .expect("webhook");
    assert_eq!(store.list_webhooks(&t.id).await.expect("list").len(), 2);
    assert!(store.list_webhooks(&other.id).await.expect("list").is_empty());
    let event = |action: &str| NewEvent { action: action.into(), ..audit(&c.id, 10) };
    store.append_events(&t.id, &[event(DOOR_ACTION), event("recognize"), event("migrate")]).await.expect("append");
    let s = store.create_subject(&t.id, &c.id, &subject("Ann")).await.expect("subject");
    let enrolled = NewEvent { action: "enroll".into(), ..audit(&c.id, 11) };
    store.add_faces(&t.id, &c.id, &s.id, &[face(1)], &enrolled).await.expect("faces");
    let repeated = face(2);
    let failed = store.add_faces(&t.id, &c.id, &s.id, &[repeated.clone(), repeated], &enrolled).await;
    assert!(failed.is_err(), "a batch with a repeated face id fails");

    let fetched = store.due_deliveries(&due(i64::MAX, 100)).await.expect("due");
    let mine: Vec<_> = fetched.iter().filter(|d| d.tenant_id == t.id).collect();
    let types = |hook: &WebhookId| {
        mine.iter().filter(|d| d.delivery.webhook_id == *hook).map(|d| d.delivery.event_type).collect::<Vec<_>>()
    };
    assert_eq!(types(&doors.id), vec![EventType::DoorDecision], "only what it subscribed to");
    assert_eq!(
        types(&all.id),
        vec![EventType::DoorDecision, EventType::IdentityDecision, EventType::SubjectEnrolled],
        "in order; the failed enrolment queued nothing"
    );
    let first = &mine[0];
    assert_eq!((first.secret.clone(), first.url.as_str()), (template(9), "https://hooks.example.org/in"));
    let payload: serde_json::Value = serde_json::from_str(&first.payload).expect("JSON payload");
    assert_eq!(
        (payload["type"].as_str(), payload["data"]["tenant_id"].as_str()),
        (Some("door.decision"), Some(t.id.as_str()))
    );
    let ids: std::collections::BTreeSet<&str> = mine.iter().map(|d| d.delivery.message_id.as_str()).collect();
    assert_eq!(ids.len(), mine.len(), "one message id per row");

    let attempts: Vec<DeliveryAttempt> = mine
        .iter()
        .enumerate()
        .map(|(i, d)| DeliveryAttempt {
            seq: d.delivery.seq,
            at_ms: 50,
            state: if i == 0 { DeliveryState::Pending } else { DeliveryState::Delivered },
            next_attempt_at_ms: (i == 0).then_some(1_000),
            status: Some(if i == 0 { 503 } else { 204 }),
            error: (i == 0).then(|| "the receiver answered 503".to_string()),
        })
        .collect();
    store.record_deliveries(&attempts).await.expect("record");
    let still_due: Vec<_> =
        store.due_deliveries(&due(999, 100)).await.expect("due").into_iter().filter(|d| d.tenant_id == t.id).collect();
    assert!(still_due.is_empty(), "the retry is not due before its time");
    let retry = store.due_deliveries(&due(1_000, 100)).await.expect("due");
    assert_eq!(retry.iter().filter(|d| d.tenant_id == t.id).count(), 1);
    let log = store.deliveries(&t.id, &doors.id, None, 100).await.expect("log");
    assert_eq!((log[0].attempts, log[0].last_status, log[0].state), (1, Some(503), DeliveryState::Pending));
    let log = store.deliveries(&t.id, &all.id, None, 100).await.expect("log");
    assert!(log.iter().all(|d| d.state == DeliveryState::Delivered && d.delivered_at_ms == Some(50)));
    assert!(matches!(store.deliveries(&other.id, &all.id, None, 100).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.delete_webhook(&other.id, &all.id, &change(ChangeAction::WebhookDeleted)).await,
        Err(StoreError::NotFound)
    ));
    store.delete_webhook(&t.id, &doors.id, &change(ChangeAction::WebhookDeleted)).await.expect("delete");
    let left = store.due_deliveries(&due(i64::MAX, 100)).await.expect("due");
    assert!(left.iter().all(|d| d.delivery.webhook_id != doors.id), "its rows go with it");

    // A fetch takes at most `per_webhook` rows of each webhook and none of those it skips, so one
    // receiver's backlog cannot fill it.
    let (busy, created) = (hook(vec![EventType::DoorDecision]), change(ChangeAction::WebhookCreated));
    let busy = store.create_webhook(&t.id, &busy, &created).await.expect("webhook");
    store.append_events(&t.id, &[event(DOOR_ACTION), event(DOOR_ACTION), event(DOOR_ACTION)]).await.expect("append");
    let fair = DueQuery { now_ms: i64::MAX, limit: 100, per_webhook: 2, skip: Vec::new() };
    let fetched = store.due_deliveries(&fair).await.expect("due");
    for hook_id in [&busy.id, &all.id] {
        assert_eq!(fetched.iter().filter(|d| d.delivery.webhook_id == *hook_id).count(), 2, "two of each");
    }
    let skipping = DueQuery { skip: vec![busy.id.clone()], ..fair };
    assert!(store.due_deliveries(&skipping).await.expect("due").iter().all(|d| d.delivery.webhook_id != busy.id));

    // Erasing a subject takes the queued events naming it, all but its own erasure event.
    let named = NewEvent { action: "recognize".into(), subject_id: Some(s.id.clone()), ..audit(&c.id, 12) };
    store.append_events(&t.id, &[named]).await.expect("append");
    let naming = |rows: &[crate::DueDelivery]| rows.iter().filter(|d| d.payload.contains(s.id.as_str())).count();
    assert_eq!(
        naming(&store.due_deliveries(&due(i64::MAX, 1000)).await.expect("due")),
        1,
        "queued, naming the subject"
    );
    let erasure = NewEvent { action: "erase".into(), subject_id: Some(s.id.clone()), ..audit(&c.id, 13) };
    store.delete_subject(&t.id, &c.id, &s.id, &erasure).await.expect("erase");
    let rows = store.due_deliveries(&due(i64::MAX, 1000)).await.expect("due");
    let left: Vec<_> = rows.iter().filter(|d| d.payload.contains(s.id.as_str())).collect();
    assert_eq!(left.len(), 1, "only the erasure's own event names the subject");
    assert_eq!(left[0].delivery.event_type, EventType::SubjectErased);

    // Queued events follow the collection's retention.
    let policy = CollectionPolicy { retention_days: Some(1), liveness_required: false };
    store.set_collection_policy(&t.id, &c.id, &policy, &change(ChangeAction::CollectionUpdated)).await.expect("policy");
    store.expire_events(now_ms() + 2 * 86_400_000).await.expect("expire");
    let rows = store.due_deliveries(&due(i64::MAX, 1000)).await.expect("due");
    assert!(rows.iter().all(|d| d.tenant_id != t.id), "nothing of the collection outlives its retention");
}

async fn retention_and_consent(store: &dyn FaceStore) {
    const DAY: i64 = 86_400_000;
    let t = store.create_tenant("conformance-retention").await.expect("tenant");
    let other = store.create_tenant("conformance-retention-other").await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("kept"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let forever = store
        .create_collection(&t.id, &collection("forever"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let policy = CollectionPolicy { retention_days: Some(7), liveness_required: true };
    let set = store
        .set_collection_policy(&t.id, &c.id, &policy, &change(ChangeAction::CollectionUpdated))
        .await
        .expect("policy");
    assert_eq!((set.retention_days, set.liveness_required), (Some(7), true));
    assert!(!store.collection(&t.id, &forever.id).await.expect("collection").liveness_required);
    assert!(matches!(
        store.set_collection_policy(&other.id, &c.id, &policy, &change(ChangeAction::CollectionUpdated)).await,
        Err(StoreError::NotFound)
    ));
    let now = 100 * DAY;
    for (collection, at) in [(&c.id, now - 8 * DAY), (&c.id, now - 6 * DAY), (&forever.id, now - 800 * DAY)] {
        store.append_events(&t.id, &[audit(collection, at)]).await.expect("append");
    }
    assert!(store.expire_events(now).await.expect("expire") >= 1);
    let left = store.events(&t.id, &c.id, None, None, 10).await.expect("events");
    assert_eq!(left.iter().map(|e| e.event.at_ms).collect::<Vec<_>>(), vec![now - 6 * DAY], "older than 7 days go");
    assert_eq!(store.events(&t.id, &forever.id, None, None, 10).await.expect("events").len(), 1, "no retention: kept");

    let consent = |expires| Consent { given_at_ms: 0, purpose: "door access".into(), expires_at_ms: expires };
    let with = |name: &str, expires| NewSubject { consent: Some(consent(expires)), ..subject(name) };
    let ann = store.create_subject(&t.id, &c.id, &with("Ann", Some(now - 1))).await.expect("subject");
    let bob = store.create_subject(&t.id, &c.id, &with("Bob", Some(now + DAY))).await.expect("subject");
    store.create_subject(&t.id, &c.id, &with("Cem", None)).await.expect("subject");
    assert_eq!(ann.consent, Some(consent(Some(now - 1))));
    let expired = store.expired_consents(now, 10).await.expect("expired");
    assert_eq!(expired.iter().map(|e| &e.subject_id).collect::<Vec<_>>(), vec![&ann.id]);
    assert_eq!((&expired[0].tenant_id, &expired[0].collection_id), (&t.id, &c.id));
    let renewed = NewSubject { consent: Some(consent(Some(now + 2 * DAY))), ..subject("Bob") };
    store.update_subject(&t.id, &c.id, &bob.id, &renewed).await.expect("renew");
    let unchanged = NewSubject { consent: None, ..subject("Bob") };
    let bob = store.update_subject(&t.id, &c.id, &bob.id, &unchanged).await.expect("update");
    assert_eq!(bob.consent.and_then(|c| c.expires_at_ms), Some(now + 2 * DAY), "an update without consent keeps it");
    assert_eq!(store.expired_consents(now + DAY + 1, 10).await.expect("expired").len(), 1, "Bob renewed");

    let receipt = StoredReceipt {
        collection_id: c.id.clone(),
        subject_id: ann.id.clone(),
        reason: "consent_expired".into(),
        erased_at_ms: now,
        receipt: "{}".into(),
        receipt_sha256: "ab".into(),
    };
    store.save_receipt(&t.id, &receipt).await.expect("save");
    store
        .delete_collection(&t.id, &c.id, &change_at(ChangeAction::CollectionDeleted, now))
        .await
        .expect("delete collection");
    assert_eq!(store.receipts(&t.id, &c.id).await.expect("receipts"), vec![receipt], "receipts outlive the collection");
    assert!(store.receipts(&other.id, &c.id).await.expect("receipts").is_empty());
}
