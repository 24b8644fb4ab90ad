//! One file per resource; [`routes`] lists every endpoint.

mod cameras;
mod changes;
mod collections;
mod common;
mod doors;
mod faces;
mod integrations;
mod keys;
mod live;
mod migrations;
mod readers;
mod sightings;
mod subjects;
mod system;
mod videos;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};

use crate::AppState;

/// Largest body of the endpoints that take JSON fields only (no images).
const JSON_BODY_BYTES: usize = 64 * 1024;

fn json_only(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(DefaultBodyLimit::max(JSON_BODY_BYTES))
}

pub(crate) use cameras::{
    __path_create_camera, __path_delete_camera, __path_get_camera, __path_list_cameras, __path_replace_camera,
};
pub(crate) use changes::__path_changes;
pub(crate) use collections::__path_create_collection;
pub(crate) use collections::{
    __path_delete_collection, __path_events, __path_get_collection, __path_list_collections, __path_receipts,
    __path_recognize, __path_recognize_in, __path_search, __path_update_collection,
};
pub(crate) use doors::{
    __path_attempt, __path_attendance, __path_create_door, __path_delete_door, __path_get_door, __path_list_doors,
    __path_replace_door, __path_reset_presence, __path_reset_subject_presence,
};
pub(crate) use faces::{__path_compare, __path_detect, __path_embed};
pub(crate) use integrations::{__path_delete_mqtt, __path_get_mqtt, __path_put_mqtt};
pub(crate) use keys::{__path_create_key, __path_current_key, __path_list_keys, __path_revoke_key};
pub(crate) use live::{__path_audit_stream, __path_stream};
pub use migrations::resume_migrations;
pub(crate) use migrations::{__path_get_migration, __path_start_migration};
pub use readers::start_readers;
pub(crate) use readers::{
    __path_delete_reader, __path_get_credentials, __path_get_reader, __path_put_credentials, __path_put_reader,
};
pub(crate) use sightings::{
    __path_best_shot, __path_clusters, __path_linked_best_shot, __path_name_cluster, __path_not_this_person,
    __path_presence, __path_search_sightings, __path_sightings,
};
pub(crate) use subjects::{
    __path_add_negative, __path_create_subject, __path_delete_face, __path_delete_negative, __path_delete_subject,
    __path_enroll_faces, __path_get_subject, __path_list_faces, __path_list_negatives, __path_list_subjects,
    __path_update_subject, __path_verify,
};
pub(crate) use system::{__path_health, __path_metrics, __path_models, __path_openapi};
pub(crate) use videos::__path_watch_video;
pub(crate) use webhooks::{__path_create_webhook, __path_delete_webhook, __path_deliveries, __path_list_webhooks};

/// Every endpoint of the API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(system::health))
        .route("/v1/models", get(system::models))
        .route("/v1/openapi.json", get(system::openapi))
        .route("/metrics", get(system::metrics))
        .route("/v1/detect", post(faces::detect))
        .route("/v1/embed", post(faces::embed))
        .route("/v1/compare", post(faces::compare))
        .route("/v1/recognize", post(collections::recognize))
        .route("/v1/collections", json_only(post(collections::create_collection).get(collections::list_collections)))
        .route(
            "/v1/collections/{collection}",
            get(collections::get_collection)
                .patch(collections::update_collection)
                .delete(collections::delete_collection),
        )
        .route("/v1/collections/{collection}/receipts", get(collections::receipts))
        .route("/v1/collections/{collection}/recognize", post(collections::recognize_in))
        .route("/v1/collections/{collection}/search", post(collections::search))
        .route("/v1/collections/{collection}/events", get(collections::events))
        .route("/v1/collections/{collection}/events/stream", get(live::audit_stream))
        .route("/v1/collections/{collection}/sightings", get(sightings::sightings))
        .route("/v1/collections/{collection}/sightings/search", post(sightings::search_sightings))
        .route("/v1/collections/{collection}/sightings/{seq}/best-shot", get(sightings::best_shot))
        .route("/v1/best-shots/{tenant}/{collection}/{seq}", get(sightings::linked_best_shot))
        .route("/v1/collections/{collection}/sightings/{seq}/not-this-person", post(sightings::not_this_person))
        .route("/v1/collections/{collection}/clusters", get(sightings::clusters))
        .route("/v1/collections/{collection}/clusters/{cluster}/name", post(sightings::name_cluster))
        .route("/v1/collections/{collection}/presence", get(sightings::presence))
        .route("/v1/collections/{collection}/videos", post(videos::watch_video))
        .route("/v1/collections/{collection}/attendance", get(doors::attendance))
        .route("/v1/doors", json_only(post(doors::create_door).get(doors::list_doors)))
        .route("/v1/doors/{door}", json_only(get(doors::get_door).put(doors::replace_door).delete(doors::delete_door)))
        .route("/v1/doors/{door}/attempts", post(doors::attempt))
        .route(
            "/v1/doors/{door}/reader",
            json_only(get(readers::get_reader).put(readers::put_reader).delete(readers::delete_reader)),
        )
        .route(
            "/v1/collections/{collection}/subjects/{subject}/credentials",
            json_only(get(readers::get_credentials).put(readers::put_credentials)),
        )
        .route("/v1/doors/{door}/presence", axum::routing::delete(doors::reset_presence))
        .route("/v1/doors/{door}/presence/{subject}", axum::routing::delete(doors::reset_subject_presence))
        .route("/v1/cameras", json_only(post(cameras::create_camera).get(cameras::list_cameras)))
        .route(
            "/v1/cameras/{camera}",
            json_only(get(cameras::get_camera).put(cameras::replace_camera).delete(cameras::delete_camera)),
        )
        .route("/v1/events/stream", get(live::stream))
        .route("/v1/changes", get(changes::changes))
        .route("/v1/webhooks", json_only(post(webhooks::create_webhook).get(webhooks::list_webhooks)))
        .route("/v1/webhooks/{webhook}", axum::routing::delete(webhooks::delete_webhook))
        .route("/v1/webhooks/{webhook}/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/integrations/mqtt",
            json_only(get(integrations::get_mqtt).put(integrations::put_mqtt).delete(integrations::delete_mqtt)),
        )
        .route("/v1/keys", json_only(post(keys::create_key).get(keys::list_keys)))
        .route("/v1/keys/current", get(keys::current_key))
        .route("/v1/keys/{key}", axum::routing::delete(keys::revoke_key))
        .route(
            "/v1/collections/{collection}/migrations",
            json_only(post(migrations::start_migration).get(migrations::get_migration)),
        )
        .route(
            "/v1/collections/{collection}/subjects",
            json_only(post(subjects::create_subject).get(subjects::list_subjects)),
        )
        .route(
            "/v1/collections/{collection}/subjects/{subject}",
            json_only(get(subjects::get_subject).patch(subjects::update_subject).delete(subjects::delete_subject)),
        )
        .route(
            "/v1/collections/{collection}/subjects/{subject}/faces",
            post(subjects::enroll_faces).get(subjects::list_faces),
        )
        .route(
            "/v1/collections/{collection}/subjects/{subject}/faces/{face}",
            axum::routing::delete(subjects::delete_face),
        )
        .route("/v1/collections/{collection}/subjects/{subject}/verify", post(subjects::verify))
        .route(
            "/v1/collections/{collection}/subjects/{subject}/negatives",
            post(subjects::add_negative).get(subjects::list_negatives),
        )
        .route(
            "/v1/collections/{collection}/subjects/{subject}/negatives/{negative}",
            axum::routing::delete(subjects::delete_negative),
        )
}
