//! Doors, passages and anti-passback presence.

use super::*;

pub(super) async fn doors_and_passages(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-doors", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-doors-other", 0).await.expect("tenant");
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

    let decision = |door: &Door, at_ms, result: AuditResult| NewEvent {
        action: AuditAction::Door,
        result,
        subject_id: Some(ann.id.clone()),
        door_id: Some(door.id.clone()),
        reason: (result != AuditResult::Granted).then_some(AuditReason::Door(DoorReason::AntiPassback)),
        liveness: Some(0.9),
        score: Some(0.7),
        ..audit(&c.id, at_ms)
    };
    // Anti-passback: at the exit (paired with the entry), a person passes once, then not again until they
    // pass the entry; presence is its own record, so expiring the trail does not reset it.
    let passed = |door: &Door, at_ms| decision(door, at_ms, AuditResult::Granted);
    assert!(
        store
            .record_passage(
                &t.id,
                &passed(&exit, 100),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 100, AuditResult::Denied) })
            )
            .await
            .expect("pass")
    );
    assert!(
        !store
            .record_passage(
                &t.id,
                &passed(&exit, 150),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 150, AuditResult::Denied) })
            )
            .await
            .expect("pass"),
        "twice"
    );
    assert!(store.is_present(&t.id, &exit.id, &ann.id).await.expect("present"), "present at the exit");
    assert!(!store.is_present(&other.id, &exit.id, &ann.id).await.expect("present"), "another tenant's door");
    assert!(store.record_passage(&t.id, &passed(&entry, 200), None).await.expect("pass"), "the entry clears it");
    assert!(!store.is_present(&t.id, &exit.id, &ann.id).await.expect("present"), "cleared by the entry");
    assert!(
        store
            .record_passage(
                &t.id,
                &passed(&exit, 300),
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 300, AuditResult::Denied) })
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
    assert_eq!(
        (denied[0].event.at_ms, denied[0].event.reason),
        (150, Some(AuditReason::Door(DoorReason::AntiPassback)))
    );
    let refused = store
        .record_passage(
            &other.id,
            &passed(&exit, 400),
            Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 400, AuditResult::Denied) }),
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
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 500, AuditResult::Denied) })
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
                Some(AntiPassbackCheck { paired_door: &entry.id, denied: &decision(&exit, 600, AuditResult::Denied) })
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
