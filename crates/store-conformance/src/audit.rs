//! The audit trail, retention and consent expiry.

use super::*;

pub(super) async fn audit_trail(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-audit", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-audit-other", 0).await.expect("tenant");
    let c = store
        .create_collection(&t.id, &collection("door"), &change(ChangeAction::CollectionCreated))
        .await
        .expect("collection");
    let event = |at_ms, result: AuditResult| NewEvent {
        collection_id: c.id.clone(),
        at_ms,
        key_id: "k".into(),
        request_id: "r".into(),
        action: AuditAction::Recognize,
        result,
        subject_id: None,
        score: Some(0.5),
        face_index: Some(0),
        door_id: None,
        reason: None,
        liveness: None,
        correlation_id: (result == AuditResult::Unknown).then(|| "client-42".to_string()),
    };
    store
        .append_events(
            &t.id,
            &[event(100, AuditResult::Unknown), event(200, AuditResult::Match), event(300, AuditResult::Match)],
        )
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
    assert!(matches!(
        store.append_events(&other.id, &[event(400, AuditResult::Match)]).await,
        Err(StoreError::NotFound)
    ));
}

pub(super) async fn retention_and_consent(store: &dyn FaceStore) {
    const DAY: i64 = 86_400_000;
    let t = store.create_tenant("conformance-retention", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-retention-other", 0).await.expect("tenant");
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
