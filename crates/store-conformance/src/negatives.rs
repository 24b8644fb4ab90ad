//! Ignore lists.

use super::*;

pub(super) async fn ignore_lists(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-ignore", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-ignore-other", 0).await.expect("tenant");
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
