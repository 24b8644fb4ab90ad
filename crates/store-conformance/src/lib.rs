//! The conformance suite every [`FaceStore`] backend runs in its tests: `run_all(store).await`
//! panics with a message naming the broken guarantee. It needs a fresh, empty store.
//! One file per area, as the store's traits are.

mod audit;
mod cameras;
mod doors;
mod galleries;
mod migrations;
mod negatives;
mod outbox;
mod readers;
mod sightings;
pub mod synthetic;
mod tenants;

use std::sync::Arc;

use facegate_store::{
    AntiPassback, AntiPassbackCheck, ApiKeyRecord, AuditAction, AuditReason, AuditResult, ChangeAction, CollectionId,
    CollectionPolicy, Consent, DeliveryAttempt, DeliveryState, Direction, Door, DoorPolicy, DoorReason, DueQuery,
    EncryptedTemplate, EventType, FaceId, FaceStore, KeyId, MigratedTemplate, MigrationState, NegativeId, NewChange,
    NewCollection, NewDoor, NewEvent, NewFace, NewMigration, NewNegative, NewSubject, NewTemplate, NewWebhook,
    PackVersion, Scope, StoreError, StoredReceipt, SubjectId, TimeWindow, WebhookId, Weekday, WrappedKey, now_ms,
};
use facegate_store::{Collection, TenantId};

/// Runs every check against one empty store.
pub async fn run_all(store: Arc<dyn FaceStore>) {
    galleries::readiness_and_erasure_statement(store.as_ref()).await;
    tenants::tenants_and_keys(store.as_ref()).await;
    tenants::data_keys(store.as_ref()).await;
    galleries::collections_are_per_tenant(store.as_ref()).await;
    galleries::subjects_faces_and_erasure(store.as_ref()).await;
    galleries::failed_writes_change_nothing(store.as_ref()).await;
    audit::audit_trail(store.as_ref()).await;
    galleries::concurrent_enrolments(store.clone()).await;
    migrations::pack_migration(store.as_ref()).await;
    doors::doors_and_passages(store.as_ref()).await;
    negatives::ignore_lists(store.as_ref()).await;
    sightings::sightings(store.as_ref()).await;
    sightings::cluster_ids(store.as_ref()).await;
    cameras::cameras(store.as_ref()).await;
    outbox::webhook_outbox(store.as_ref()).await;
    readers::readers_and_credentials(store.as_ref()).await;
    audit::retention_and_consent(store.as_ref()).await;
    if store.searches_in_store() {
        galleries::store_side_search(store.as_ref()).await;
    }
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

/// A face of the pack `default` searched by `search_vector` (its sealed template is filler), as the search
/// tests and the store benches enrol them.
pub fn face_searched_by(search_vector: Vec<f32>) -> NewFace {
    NewFace { template: NewTemplate { search_vector, ..pack_template("default", 0) }, ..face(0) }
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
        action: AuditAction::Migrate,
        result: AuditResult::Accepted,
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

/// Creates the collection `name` of `embedding_size`-long templates for `tenant_id` (pack `default`,
/// rate 1e-3), as the suite, other tests and the benches set one up.
///
/// # Panics
/// When the store refuses it.
pub async fn create_collection(
    store: &dyn FaceStore,
    tenant_id: &TenantId,
    name: &str,
    embedding_size: u32,
) -> Collection {
    let new = NewCollection { embedding_size, ..collection(name) };
    store.create_collection(tenant_id, &new, &change(ChangeAction::CollectionCreated)).await.expect("collection")
}

/// A new collection `name` of 128-long templates on the pack `default`.
pub fn collection(name: &str) -> NewCollection {
    NewCollection {
        name: name.into(),
        pack: "default".into(),
        embedding_size: 128,
        target_fmr: 1e-3,
        keep_crops: false,
        created_at_ms: 1_000,
    }
}

/// A new subject `name` (metadata `{"badge": name}`).
pub fn subject(name: &str) -> NewSubject {
    NewSubject {
        name: name.into(),
        metadata: serde_json::json!({ "badge": name }),
        groups: None,
        consent: None,
        created_at_ms: 1_000,
    }
}
