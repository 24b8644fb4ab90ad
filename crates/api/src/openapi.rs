//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "facegate", description = "Face detection, verification and identification with galleries."),
    paths(
        health, models, detect, embed, compare, recognize, search, create_collection, list_collections,
        get_collection, delete_collection, events, create_subject, list_subjects, get_subject, update_subject,
        delete_subject, enroll_faces, list_faces, delete_face, verify
    ),
    modifiers(&Security)
)]
struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}
