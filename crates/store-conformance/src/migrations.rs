//! Moving a collection to another pack.

use super::*;

/// A collection moves to another pack: kept frames are handed out until each face has a target
/// template, the switch is refused while any is left, faces without a frame are reported, a face erased
/// mid-way takes its frame and templates with it, and after the switch only target templates are searched.
pub(super) async fn pack_migration(store: &dyn FaceStore) {
    let t = store.create_tenant("conformance-migration", 0).await.expect("tenant");
    let other = store.create_tenant("conformance-migration-other", 0).await.expect("tenant");
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
    let migrated = |crops: &[facegate_store::StoredCrop]| -> Vec<MigratedTemplate> {
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
