//! The OpenAPI 3.1 document, generated from the handlers' annotations and the [`crate::contract`]
//! types. Every operation also lists the error statuses, each with the [`ErrorEnvelope`] schema and
//! the codes that answer with it (from [`ErrorCode::ALL`]: one home for codes and statuses).

use std::collections::BTreeMap;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::ErrorCode;
use crate::contract::ErrorEnvelope;
use crate::routes::*;
use facegate_store::WireName;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    }
}

/// Adds every error status to every operation, each with the envelope schema and its codes.
struct Errors;

impl Modify for Errors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        for code in ErrorCode::ALL {
            by_status.entry(code.status().as_u16()).or_default().push(code.as_str());
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, codes) in &by_status {
                    let response = ResponseBuilder::new()
                        .description(format!("Error envelope; `error.code` is one of: {}", codes.join(", ")))
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
                        )
                        .build();
                    operation.responses.responses.entry(status.to_string()).or_insert(response.into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "facegate", description = "Face detection, verification and identification with galleries."),
    paths(
        health, models, openapi, metrics, detect, embed, compare, recognize, recognize_in, search, create_collection,
        list_collections, get_collection, delete_collection, events, create_subject, list_subjects, get_subject,
        update_subject, delete_subject, enroll_faces, list_faces, delete_face, verify, start_migration, get_migration,
        create_door, list_doors, get_door, replace_door, delete_door, attempt, attendance, add_negative, list_negatives,
        delete_negative, create_webhook, list_webhooks, delete_webhook, deliveries, update_collection, receipts,
        create_key, list_keys, current_key, revoke_key, changes, reset_presence, reset_subject_presence,
        sightings, create_camera, list_cameras, get_camera, replace_camera, delete_camera,
        watch_video, presence, stream, audit_stream, search_sightings, best_shot, linked_best_shot, not_this_person, clusters, name_cluster, get_mqtt,
        put_mqtt, delete_mqtt, get_reader, put_reader, delete_reader, get_credentials, put_credentials
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&Security, &Errors)
)]
struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}
