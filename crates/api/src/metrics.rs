//! Prometheus metrics: requests by route and status, request latency by route, pipeline latency by
//! stage, and templates held in memory. Served as text at `GET /metrics`.
//!
//! Anyone may scrape the process's figures (requests, latencies, pipeline stages), which say nothing of
//! any tenant's galleries. Templates held, in all and per collection, are shown only to a scrape made with
//! an admin key, and only for that key's tenant.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use facegate_gallery::IndexedSize;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabel {
    collection: String,
}

/// What one scrape may see of the galleries: nothing for an anonymous scrape; for an admin key, its
/// tenant's collections with an index in memory.
pub struct GalleryView<'a> {
    /// The scraping admin's tenant's collections, or `None` for an anonymous scrape.
    pub tenant_collections: Option<&'a [IndexedSize]>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// The metrics kept across scrapes.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    stages: Family<StageLabel, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            stages: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    /// Records the time of one pipeline stage (`decode`, `detect`, `align`, `embed`, `search`).
    pub fn stage(&self, stage: &'static str, elapsed: Duration) {
        self.stages.get_or_create(&StageLabel { stage }).observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the gallery figures this scrape may see.
    pub fn render(&self, galleries: &GalleryView<'_>) -> String {
        let mut registry = Registry::with_prefix("facegate");
        registry.register("http_requests", "HTTP requests by route and status", self.requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", self.latency.clone());
        registry.register("stage_duration_seconds", "Pipeline latency by stage", self.stages.clone());
        if let Some(tenant_collections) = galleries.tenant_collections {
            let total = Gauge::<i64>::default();
            let templates: usize = tenant_collections.iter().map(|s| s.templates).sum();
            total.set(i64::try_from(templates).unwrap_or(i64::MAX));
            registry.register("gallery_templates_total", "Templates held in memory, the tenant's collections", total);
            let bytes = Gauge::<i64>::default();
            bytes.set(i64::try_from(tenant_collections.iter().map(|s| s.bytes).sum::<usize>()).unwrap_or(i64::MAX));
            registry.register(
                "gallery_index_bytes",
                "Heap memory of the tenant's search indexes in memory (templates, 8-bit copies, ids)",
                bytes,
            );
            let collections = Gauge::<i64>::default();
            collections.set(i64::try_from(tenant_collections.len()).unwrap_or(i64::MAX));
            registry.register(
                "gallery_collections_indexed",
                "The tenant's collections with a search index in memory",
                collections,
            );
            let per_collection = Family::<CollectionLabel, Gauge>::default();
            for size in tenant_collections {
                per_collection
                    .get_or_create(&CollectionLabel { collection: size.collection_id.to_string() })
                    .set(i64::try_from(size.templates).unwrap_or(i64::MAX));
            }
            registry.register(
                "gallery_templates",
                "Templates held in memory per collection of the scraping key's tenant",
                per_collection,
            );
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware counting requests and their latency by matched route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics.requests.get_or_create(&RequestLabels { route: route.clone(), status: response.status().as_u16() }).inc();
    metrics.latency.get_or_create(&RouteLabel { route }).observe(started.elapsed().as_secs_f64());
    response
}
