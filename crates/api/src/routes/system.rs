//! Health, models, the OpenAPI document and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use facegate_store::Scope;
use serde_json::{Value, json};

use crate::PoolStatus;
use crate::auth::Caller;
use crate::metrics::GalleryView;
use crate::{ApiError, AppState, ErrorCode};

/// Readiness: 200 when every pack has its pipelines accounted for and the store answers, else 503
/// `not_ready` with the same report in the error's details.
#[utoipa::path(get, path = "/v1/health", tag = "system", responses((status = 200, description = "Ready to serve"), (status = 503, description = "Not ready: no usable pipeline, or the store is unreachable")))]
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut names: Vec<&String> = state.packs.keys().collect();
    names.sort();
    let pools: Vec<(&String, PoolStatus)> = names.iter().map(|name| (*name, state.packs[*name].status())).collect();
    let reachable = state.gallery.store().ping().await.is_ok();
    let ready = reachable && pools.iter().all(|(_, pool)| pool.ready());
    let report = json!({
        "status": if ready { "ok" } else { "not_ready" },
        "store": { "backend": state.gallery.store().backend(), "reachable": reachable },
        "key_provider": state.gallery.key_provider(),
        "packs": names,
        "pipelines": pools.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if ready {
        return Ok(Json(report));
    }
    Err(ApiError::new(ErrorCode::NotReady, "this instance cannot serve requests now")
        .with_details(report)
        .retry_after(1))
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

/// Prometheus text exposition. Without a key: totals only, naming no tenant or collection. With an
/// admin key: also templates per collection of that key's tenant.
pub async fn metrics(State(state): State<AppState>, caller: Option<Caller>) -> Result<impl IntoResponse, ApiError> {
    let sizes = state.gallery.indexed_sizes();
    let mut tenant_collections = Vec::new();
    if let Some(caller) = caller {
        caller.require(Scope::Admin)?;
        tenant_collections = sizes
            .iter()
            .filter(|s| s.tenant_id == caller.tenant())
            .map(|s| (s.collection_id.clone(), s.templates))
            .collect();
    }
    let view = GalleryView {
        total_templates: sizes.iter().map(|s| s.templates).sum(),
        collections: sizes.len(),
        tenant_collections: &tenant_collections,
    };
    let body = state.metrics.render(&view);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body))
}
