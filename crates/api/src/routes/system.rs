//! Health, models, the OpenAPI document and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness and what this instance serves.
#[utoipa::path(get, path = "/v1/health", tag = "system", responses((status = 200, description = "The service is up")))]
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let mut packs: Vec<&String> = state.packs.keys().collect();
    packs.sort();
    Json(json!({
        "status": "ok",
        "store": state.gallery.store().backend(),
        "key_provider": state.gallery.key_provider(),
        "packs": packs,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Loaded packs: models, licences, embedding size and calibration.
#[utoipa::path(get, path = "/v1/models", tag = "system", responses((status = 200, description = "Loaded model packs")))]
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let mut packs = Vec::new();
    for (name, pool) in state.packs.iter() {
        let Some(pipeline) = pool.first() else { continue };
        let (detector, embedder) = (pipeline.detector_spec(), pipeline.embedder_spec());
        packs.push(json!({
            "name": name,
            "default": *name == state.default_pack,
            "detector": { "name": detector.name, "licence": detector.licence, "sha256": detector.sha256 },
            "embedder": {
                "name": embedder.name,
                "licence": embedder.licence,
                "sha256": embedder.sha256,
                "embedding_size": embedder.embedding_size,
            },
            "head": pipeline.pack().head.as_ref().map(|h| json!({ "sha256": h.sha256, "output_size": h.output_size })),
            "embedding_size": pipeline.embedding_size(),
            "calibration": pipeline.calibration().points(),
            "calibration_note": if pipeline.pack().calibration.is_empty() {
                embedder.calibration_note.clone()
            } else {
                Some(format!("pack `{name}`'s own table (made when its head was trained)"))
            },
        }));
    }
    packs.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!({ "packs": packs }))
}

/// The OpenAPI 3 document of this API.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document())
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(&state.gallery.indexed_sizes());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
