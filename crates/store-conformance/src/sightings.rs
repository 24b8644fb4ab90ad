//! Sightings of video tracks.

use facegate_store::{
    EncryptedTemplate, NewSighting, SightingDecision, SightingEvidence, SightingFilter, SightingLabel,
};

use super::*;

/// Ids of groups of unknown faces: handed out once each, above any given floor, per collection, never
/// twice even when asked for at once.
pub(super) async fn cluster_ids(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-cluster-ids", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-cluster-ids-other", 0).await.expect("tenant");
    let made = |name: &'static str| {
        let t = t.id.clone();
        async move {
            store.create_collection(&t, &collection(name), &change(ChangeAction::CollectionCreated)).await.expect("c")
        }
    };
    let (c, d) = (made("groups").await, made("other-groups").await);
    assert_eq!(store.new_cluster_id(&t.id, &c.id, 0).await.expect("id"), 1);
    assert_eq!(store.new_cluster_id(&t.id, &c.id, 0).await.expect("id"), 2);
    assert_eq!(store.new_cluster_id(&t.id, &c.id, 10).await.expect("id"), 10, "groups made before the count");
    assert_eq!(store.new_cluster_id(&t.id, &c.id, 3).await.expect("id"), 11, "a lower floor changes nothing");
    assert_eq!(store.new_cluster_id(&t.id, &d.id, 0).await.expect("id"), 1, "each collection counts its own");
    let at_once = futures::future::join_all((0..8).map(|_| store.new_cluster_id(&t.id, &c.id, 0))).await;
    let mut ids: Vec<u64> = at_once.into_iter().map(|id| id.expect("id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, (12..20).collect::<Vec<u64>>(), "asked for at once, each id once");
    let refused = store.new_cluster_id(&other.id, &c.id, 0).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's collection");
    let missing = store.new_cluster_id(&t.id, &CollectionId::from("nope"), 0).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub(super) async fn sightings(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-sightings", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-sightings-other", 0).await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("sightings"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let ann = store.create_subject(&t.id, &c.id, &subject("Ann")).await.expect("subject");
    let bob = store.create_subject(&t.id, &c.id, &subject("Bob")).await.expect("subject");
    let seen = |camera: &str, track_id: u64, who: Option<&SubjectId>, first_seen_ms: i64| NewSighting {
        collection_id: c.id.clone(),
        camera: camera.into(),
        track_id,
        decision: if who.is_some() { SightingDecision::Named } else { SightingDecision::Unknown },
        subject_id: who.cloned(),
        cluster_id: who.is_none().then_some(7),
        score: Some(0.5),
        first_seen_ms,
        last_seen_ms: first_seen_ms + 500,
        stream_first_s: 1.25,
        stream_last_s: 1.75,
    };
    let all = [
        seen("front", 1, Some(&ann.id), 1_000),
        seen("front", 2, None, 2_000),
        seen("back", 1, Some(&bob.id), 3_000),
        seen("back", 2, Some(&ann.id), 4_000),
    ];
    let sealed = |byte: u8| EncryptedTemplate { nonce: vec![byte; 12], ciphertext: vec![byte; 48] };
    let kept =
        |byte: u8, shot: bool| SightingEvidence { template: sealed(byte), best_shot: shot.then(|| sealed(byte + 100)) };
    let mut seqs = Vec::new();
    for (i, sighting) in all.iter().enumerate() {
        // The first keeps nothing (recorded before sightings kept evidence); the second no best shot.
        let evidence = (i > 0).then(|| kept(i as u8, i > 1));
        seqs.push(store.record_sighting(&t.id, sighting, evidence.as_ref()).await.expect("record"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "each answers its seq: {seqs:?}");
    let refused = store.record_sighting(&other.id, &all[0], None).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's collection");
    let find = |filter: SightingFilter| {
        let (t, c) = (t.id.clone(), c.id.clone());
        async move {
            let filter = SightingFilter { limit: if filter.limit == 0 { 10 } else { filter.limit }, ..filter };
            store.sightings(&t, &c, &filter).await.expect("sightings")
        }
    };
    let every = find(SightingFilter::default()).await;
    assert_eq!(every.iter().map(|s| &s.sighting).collect::<Vec<_>>(), all.iter().collect::<Vec<_>>(), "as stored");
    assert!(every.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    let names: Vec<Option<&str>> = every.iter().map(|s| s.subject_name.as_deref()).collect();
    assert_eq!(names, [Some("Ann"), None, Some("Bob"), Some("Ann")], "with the names of the people seen");
    let of_ann = find(SightingFilter { subject_id: Some(ann.id.clone()), ..SightingFilter::default() }).await;
    assert_eq!(of_ann.iter().map(|s| s.sighting.track_id).collect::<Vec<_>>(), [1, 2], "one person's");
    let back = find(SightingFilter { camera: Some("back".into()), ..SightingFilter::default() }).await;
    assert_eq!(back.len(), 2, "one camera's");
    let unknown = find(SightingFilter { decision: Some(SightingDecision::Unknown), ..SightingFilter::default() }).await;
    assert_eq!(unknown.iter().map(|s| s.sighting.cluster_id).collect::<Vec<_>>(), [Some(7)]);
    // Still seen at 2 300 ms (the unknown, 2 000..2 500), and not yet seen at 4 000 ms.
    let window =
        find(SightingFilter { from_ms: Some(2_300), until_ms: Some(4_000), ..SightingFilter::default() }).await;
    assert_eq!(window.iter().map(|s| s.sighting.first_seen_ms).collect::<Vec<_>>(), [2_000, 3_000], "a window");
    let page = find(SightingFilter { after_seq: Some(every[1].seq), limit: 1, ..SightingFilter::default() }).await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, every[2].seq, "a page after the cursor");
    let hidden = store.sightings(&other.id, &c.id, &SightingFilter { limit: 10, ..SightingFilter::default() }).await;
    assert!(matches!(hidden, Err(StoreError::NotFound)), "another tenant's collection");
    let of_group = find(SightingFilter { cluster_id: Some(7), ..SightingFilter::default() }).await;
    assert_eq!(of_group.iter().map(|s| s.seq).collect::<Vec<_>>(), [seqs[1]], "one group's");

    // Evidence: the templates of those that kept one, and one sighting whole.
    let ten = SightingFilter { limit: 10, ..SightingFilter::default() };
    let templates = store.sighting_templates(&t.id, &c.id, &ten).await.expect("templates");
    assert_eq!(templates.iter().map(|(s, _)| s.seq).collect::<Vec<_>>(), seqs[1..], "only those that kept one");
    assert_eq!(templates[0].1, sealed(1));
    let filtered = SightingFilter { subject_id: Some(ann.id.clone()), limit: 10, ..SightingFilter::default() };
    let of_ann = store.sighting_templates(&t.id, &c.id, &filtered).await.expect("templates");
    assert_eq!(of_ann.iter().map(|(s, _)| s.seq).collect::<Vec<_>>(), [seqs[3]], "filtered as sightings are");
    let whole = store.sighting(&t.id, &c.id, seqs[2]).await.expect("sighting");
    assert_eq!((whole.sighting.seq, whole.evidence), (seqs[2], Some(kept(2, true))));
    assert_eq!(whole.sighting.subject_name.as_deref(), Some("Bob"));
    assert_eq!(store.sighting(&t.id, &c.id, seqs[0]).await.expect("sighting").evidence, None, "kept nothing");
    assert_eq!(store.sighting(&t.id, &c.id, seqs[1]).await.expect("sighting").evidence, Some(kept(1, false)));
    for missing in [store.sighting(&t.id, &c.id, seqs[3] + 100).await, store.sighting(&other.id, &c.id, seqs[1]).await]
    {
        assert!(matches!(missing, Err(StoreError::NotFound)), "a missing sighting, another tenant's");
    }

    // Relabelled: the unknown face named (its evidence sealed again), then back to a group.
    let named = SightingLabel {
        decision: SightingDecision::Named,
        subject_id: Some(bob.id.clone()),
        cluster_id: Some(7),
        evidence: kept(50, true),
    };
    store.relabel_sighting(&t.id, &c.id, seqs[1], &named).await.expect("relabel");
    let now = store.sighting(&t.id, &c.id, seqs[1]).await.expect("sighting");
    assert_eq!(
        (now.sighting.sighting.decision, now.sighting.sighting.subject_id.as_ref(), now.evidence),
        (SightingDecision::Named, Some(&bob.id), Some(kept(50, true)))
    );
    assert_eq!(now.sighting.sighting.camera, "front", "the rest as it was");
    let stranger = SubjectId::from("no-such-subject");
    let wrong = SightingLabel { subject_id: Some(stranger), ..named.clone() };
    let refused = store.relabel_sighting(&t.id, &c.id, seqs[1], &wrong).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "a subject of nobody");
    let refused = store.relabel_sighting(&t.id, &c.id, seqs[3] + 100, &named).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "a missing sighting");
    let refused = store.relabel_sighting(&other.id, &c.id, seqs[1], &named).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's");
    let unknown = SightingLabel { decision: SightingDecision::Unknown, subject_id: None, cluster_id: Some(8), ..named };
    store.relabel_sighting(&t.id, &c.id, seqs[1], &unknown).await.expect("relabel");
    let now = store.sighting(&t.id, &c.id, seqs[1]).await.expect("sighting");
    assert_eq!((now.sighting.sighting.subject_id, now.sighting.sighting.cluster_id), (None, Some(8)));

    let erasure = store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 9)).await.expect("erase");
    assert_eq!(erasure.sightings, 2, "the receipt counts the sightings erased");
    assert!(matches!(store.sighting(&t.id, &c.id, seqs[3]).await, Err(StoreError::NotFound)), "gone with Ann");
    let left = find(SightingFilter::default()).await;
    assert_eq!(left.iter().map(|s| s.sighting.subject_id.as_ref()).collect::<Vec<_>>(), [None, Some(&bob.id)]);

    // They follow the collection's retention: 7 days after a face was last seen, its sighting goes.
    let policy = CollectionPolicy { retention_days: Some(7), liveness_required: false };
    store.set_collection_policy(&t.id, &c.id, &policy, &change(ChangeAction::CollectionUpdated)).await.expect("policy");
    store.expire_events(2_500 + 7 * 86_400_000).await.expect("expire");
    assert_eq!(find(SightingFilter::default()).await.len(), 2, "within the retention: kept");
    store.expire_events(3_500 + 7 * 86_400_000 + 1).await.expect("expire");
    assert!(find(SightingFilter::default()).await.is_empty(), "past the retention: gone");

    // A camera's own retention: its sightings go a day after they were last seen; another camera's (of a
    // collection without retention) stay.
    let c2 = store
        .create_collection(&t.id, &collection("sightings-cameras"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let camera = facegate_store::NewCamera {
        id: facegate_store::CameraId::random(),
        collection_id: c2.id.clone(),
        name: "gate".into(),
        source: Some(facegate_store::CameraSource { display: "rtsp://gate.cam/s".into(), sealed: template(3) }),
        settings: facegate_store::CameraSettings {
            retention_days: Some(1),
            ..facegate_store::CameraSettings::default()
        },
        at_ms: 0,
    };
    store.create_camera(&t.id, &camera, &change(ChangeAction::CameraCreated)).await.expect("camera");
    let at = |camera: &str, track_id: u64, first_seen_ms: i64| NewSighting {
        collection_id: c2.id.clone(),
        camera: camera.into(),
        track_id,
        decision: SightingDecision::Unknown,
        subject_id: None,
        cluster_id: Some(1),
        score: None,
        first_seen_ms,
        last_seen_ms: first_seen_ms + 500,
        stream_first_s: 0.0,
        stream_last_s: 0.5,
    };
    for sighting in [at("gate", 1, 0), at("gate", 2, 3 * 86_400_000), at("upload", 1, 0)] {
        store.record_sighting(&t.id, &sighting, Some(&kept(9, true))).await.expect("record");
    }
    store.expire_events(2 * 86_400_000).await.expect("expire");
    let ten = SightingFilter { limit: 10, ..SightingFilter::default() };
    let left = store.sightings(&t.id, &c2.id, &ten).await.expect("sightings");
    let left: Vec<(&str, u64)> = left.iter().map(|s| (s.sighting.camera.as_str(), s.sighting.track_id)).collect();
    assert_eq!(left, [("gate", 2), ("upload", 1)], "the camera's old sighting went, nobody else's");
}
