//! Sightings of video tracks.

use facegate_store::{NewSighting, SightingDecision, SightingFilter};

use super::*;

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
    for sighting in &all {
        store.record_sighting(&t.id, sighting).await.expect("record");
    }
    let refused = store.record_sighting(&other.id, &all[0]).await;
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
    store.delete_subject(&t.id, &c.id, &ann.id, &audit(&c.id, 9)).await.expect("erase");
    let left = find(SightingFilter::default()).await;
    assert_eq!(left.iter().map(|s| s.sighting.subject_id.as_ref()).collect::<Vec<_>>(), [None, Some(&bob.id)]);

    // They follow the collection's retention: 7 days after a face was last seen, its sighting goes.
    let policy = CollectionPolicy { retention_days: Some(7), liveness_required: false };
    store.set_collection_policy(&t.id, &c.id, &policy, &change(ChangeAction::CollectionUpdated)).await.expect("policy");
    store.expire_events(2_500 + 7 * 86_400_000).await.expect("expire");
    assert_eq!(find(SightingFilter::default()).await.len(), 2, "within the retention: kept");
    store.expire_events(3_500 + 7 * 86_400_000 + 1).await.expect("expire");
    assert!(find(SightingFilter::default()).await.is_empty(), "past the retention: gone");
}
