//! Collections, subjects, faces, their keys and templates, search.

use super::*;

pub(super) async fn readiness_and_erasure_statement(store: &dyn FaceStore) {
    store.ping().await.expect("a reachable store answers a ping");
    let residue = store.erasure_residue();
    assert!(residue.contains("backup"), "an erasure receipt says what backups still hold: {residue}");
}

pub(super) async fn store_side_search(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-search", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-search-other", 0).await.expect("tenant");
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

pub(super) async fn collections_are_per_tenant(store: &dyn FaceStore) {
    let a = store.create_tenant("conformance-a", 0).await.expect("tenant a");
    let b = store.create_tenant("conformance-b", 0).await.expect("tenant b");
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

pub(super) async fn subjects_faces_and_erasure(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-faces", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-faces-other", 0).await.expect("tenant");
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
    // The gallery's cached search index follows its own changes by this: each add_faces, delete_face
    // and delete_subject moves the revision by exactly one; making or renaming a subject does not.
    assert_eq!(r1, r0 + 2, "each add_faces moves the revision by one, subjects made do not");
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
    assert_eq!(store.collection_revision(&t.id, &c.id).await.expect("revision"), r1, "a rename leaves the templates");

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
    assert_eq!(store.collection_revision(&t.id, &c.id).await.expect("revision"), r1 + 1, "erasure moves it by one");

    let erased = store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 60)).await.expect("delete subject");
    assert_eq!(store.collection_revision(&t.id, &c.id).await.expect("revision"), r1 + 2, "a subject's erasure too");
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

pub(super) async fn failed_writes_change_nothing(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-atomic", 0).await.expect("tenant");
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

pub(super) async fn concurrent_enrolments(store: Arc<dyn FaceStore>) {
    let t = store.create_tenant("conformance-concurrent", 0).await.expect("tenant");
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
