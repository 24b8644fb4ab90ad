//! Health, models, the OpenAPI document and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use facegate_store::Scope;

use crate::auth::Caller;
use crate::contract::{HeadInfo, HealthReport, ModelInfo, ModelsResponse, PackInfo, StoreHealth};
use crate::metrics::GalleryView;
use crate::{ApiError, AppState, ErrorCode};

/// Readiness: 200 when every pack has its pipelines accounted for and the store answers, else 503
/// `not_ready` with the same report in the error's details.
#[utoipa::path(get, path = "/v1/health", tag = "system", responses((status = 200, description = "Ready to serve", body = HealthReport)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<HealthReport>, ApiError> {
    let pipelines: std::collections::BTreeMap<String, _> =
        state.packs.iter().map(|(name, pool)| (name.clone(), pool.status())).collect();
    let (backend, reachable) = state.gallery.store_health().await;
    let ready = reachable && pipelines.values().all(|pool| pool.ready());
    let report = HealthReport {
        status: if ready { "ok" } else { "not_ready" }.into(),
        store: StoreHealth { backend: backend.into(), reachable },
        key_provider: state.gallery.key_provider().into(),
        packs: pipelines.keys().cloned().collect(),
        pipelines,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    if ready {
        return Ok(Json(report));
    }
    Err(ApiError::new(ErrorCode::NotReady, "this instance cannot serve requests now")
        .with_details(&report)
        .retry_after(1))
}

fn model_info(spec: &facegate_core::ModelSpec) -> ModelInfo {
    ModelInfo {
        name: spec.name.clone(),
        licence: spec.licence.clone(),
        sha256: spec.sha256.clone(),
        embedding_size: spec.embedding_size,
    }
}

/// Loaded packs: models, licences, embedding size and calibration.
#[utoipa::path(get, path = "/v1/models", tag = "system", responses((status = 200, description = "Loaded model packs", body = ModelsResponse)))]
pub async fn models(State(state): State<AppState>) -> Json<ModelsResponse> {
    let mut packs: Vec<PackInfo> = state
        .packs
        .iter()
        .filter_map(|(name, pool)| {
            let pipeline = pool.first()?;
            let own_table = !pipeline.pack().calibration.is_empty();
            Some(PackInfo {
                name: name.clone(),
                default: *name == state.default_pack,
                detector: ModelInfo { embedding_size: None, ..model_info(pipeline.detector_spec()) },
                embedder: model_info(pipeline.embedder_spec()),
                head: pipeline
                    .pack()
                    .head
                    .as_ref()
                    .map(|h| HeadInfo { sha256: h.sha256.clone(), output_size: h.output_size }),
                embedding_size: pipeline.embedding_size(),
                mirror: pipeline.config().embedder.mirror_policy(),
                embedder_runtime: pipeline.embedder_runtime().clone(),
                calibration: pipeline.calibration().points().to_vec(),
                calibration_note: if own_table {
                    Some(format!("pack `{name}`'s own table (made when its head was trained)"))
                } else {
                    pipeline.embedder_spec().calibration_note.clone()
                },
            })
        })
        .collect();
    packs.sort_by(|a, b| a.name.cmp(&b.name));
    Json(ModelsResponse { packs })
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system", responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document())
}

/// Prometheus text exposition. Without a key: the process's figures only (requests, latencies, stages),
/// nothing of any tenant's galleries. With an admin key: also the templates held for that key's tenant,
/// in all and per collection.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)), security((), ("api_key" = [])))]
pub async fn metrics(State(state): State<AppState>, caller: Option<Caller>) -> Result<impl IntoResponse, ApiError> {
    let mut tenant_collections = None;
    if let Some(caller) = caller {
        caller.require(Scope::Admin)?;
        let mut sizes = state.gallery.indexed_sizes();
        sizes.retain(|s| s.tenant_id == *caller.tenant());
        tenant_collections = Some(sizes);
    }
    let view = GalleryView { tenant_collections: tenant_collections.as_deref() };
    let body = state.metrics.render(&view);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body))
}
