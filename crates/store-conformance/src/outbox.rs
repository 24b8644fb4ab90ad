//! Webhooks and the outbox.

use super::*;
use facegate_store::WireName;

pub(super) async fn webhook_outbox(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-outbox", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-outbox-other", 0).await.expect("tenant");
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
    let event = |action: AuditAction| NewEvent { action, ..audit(&c.id, 10) };
    store
        .append_events(&t.id, &[event(AuditAction::Door), event(AuditAction::Recognize), event(AuditAction::Migrate)])
        .await
        .expect("append");
    let s = store.create_subject(&t.id, &c.id, &subject("Ann")).await.expect("subject");
    let enrolled = NewEvent { action: AuditAction::Enroll, ..audit(&c.id, 11) };
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

    // Replaced in place: new destination, types and secret; its log stays; only its tenant may.
    let logged = store.deliveries(&t.id, &all.id, None, 100).await.expect("log").len();
    let replacement = NewWebhook {
        id: all.id.clone(),
        url: "mqtts://broker.example.org:8883".into(),
        event_types: vec![EventType::IdentitySighted],
        secret: template(8),
        created_at_ms: 99,
    };
    assert!(matches!(
        store.replace_webhook(&other.id, &replacement, &change(ChangeAction::IntegrationConfigured)).await,
        Err(StoreError::NotFound)
    ));
    let replaced = store
        .replace_webhook(&t.id, &replacement, &change(ChangeAction::IntegrationConfigured))
        .await
        .expect("replace");
    assert_eq!(
        (replaced.url.as_str(), replaced.event_types.clone(), replaced.created_at_ms),
        ("mqtts://broker.example.org:8883", vec![EventType::IdentitySighted], all.created_at_ms),
        "the creation time stays"
    );
    assert_eq!(store.webhook_secret(&t.id, &all.id).await.expect("secret"), template(8));
    assert!(matches!(store.webhook_secret(&other.id, &all.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.deliveries(&t.id, &all.id, None, 100).await.expect("log").len(), logged, "the log stays");
    let restored = NewWebhook { id: all.id.clone(), ..hook(EventType::ALL.to_vec()) };
    store.replace_webhook(&t.id, &restored, &change(ChangeAction::IntegrationConfigured)).await.expect("replace");

    // A fetch takes at most `per_webhook` rows of each webhook and none of those it skips, so one
    // receiver's backlog cannot fill it.
    let (busy, created) = (hook(vec![EventType::DoorDecision]), change(ChangeAction::WebhookCreated));
    let busy = store.create_webhook(&t.id, &busy, &created).await.expect("webhook");
    store
        .append_events(&t.id, &[event(AuditAction::Door), event(AuditAction::Door), event(AuditAction::Door)])
        .await
        .expect("append");
    let fair = DueQuery { now_ms: i64::MAX, limit: 100, per_webhook: 2, skip: Vec::new() };
    let fetched = store.due_deliveries(&fair).await.expect("due");
    for hook_id in [&busy.id, &all.id] {
        assert_eq!(fetched.iter().filter(|d| d.delivery.webhook_id == *hook_id).count(), 2, "two of each");
    }
    let skipping = DueQuery { skip: vec![busy.id.clone()], ..fair };
    assert!(store.due_deliveries(&skipping).await.expect("due").iter().all(|d| d.delivery.webhook_id != busy.id));

    // Erasing a subject takes the queued events naming it, all but its own erasure event.
    let named = NewEvent { action: AuditAction::Recognize, subject_id: Some(s.id.clone()), ..audit(&c.id, 12) };
    store.append_events(&t.id, &[named]).await.expect("append");
    // A camera's decision, published as it is (not an audit event), to the webhooks subscribed to it.
    let sighted = facegate_store::OutboundEvent {
        event_type: EventType::IdentitySighted,
        collection_id: c.id.clone(),
        subject_id: Some(s.id.clone()),
        at_ms: 12,
        payload: format!(r#"{{"type":"identity.sighted","data":{{"subject":{{"id":"{}"}}}}}}"#, s.id),
    };
    store.publish(&t.id, std::slice::from_ref(&sighted)).await.expect("publish");
    let refused = store.publish(&other.id, std::slice::from_ref(&sighted)).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "another tenant's collection");
    let rows = store.due_deliveries(&due(i64::MAX, 1000)).await.expect("due");
    let published: Vec<_> = rows.iter().filter(|d| d.delivery.event_type == EventType::IdentitySighted).collect();
    assert_eq!(published.len(), 1, "to the webhook subscribed to it only");
    assert_eq!(
        (published[0].delivery.webhook_id.clone(), published[0].payload.clone()),
        (all.id.clone(), sighted.payload)
    );
    let naming =
        |rows: &[facegate_store::DueDelivery]| rows.iter().filter(|d| d.payload.contains(s.id.as_str())).count();
    assert_eq!(
        naming(&store.due_deliveries(&due(i64::MAX, 1000)).await.expect("due")),
        2,
        "queued, naming the subject"
    );
    let erasure = NewEvent { action: AuditAction::Erase, subject_id: Some(s.id.clone()), ..audit(&c.id, 13) };
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
