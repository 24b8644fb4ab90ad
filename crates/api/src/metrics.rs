//! Prometheus metrics: requests by route and status, request latency by route, pipeline latency by
//! stage, and templates held in memory per collection. Served as text at `GET /metrics`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
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

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// The registry and its metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    stages: Family<StageLabel, Histogram, fn() -> Histogram>,
    gallery: Family<CollectionLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("facegate");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let stages = Family::<StageLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let gallery = Family::<CollectionLabel, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("stage_duration_seconds", "Pipeline latency by stage", stages.clone());
        registry.register("gallery_templates", "Templates held in memory per collection", gallery.clone());
        Self { registry: Mutex::new(registry), requests, latency, stages, gallery }
    }
}

impl Metrics {
    /// Records the time of one pipeline stage (`decode`, `detect`, `align`, `embed`, `search`).
    pub fn stage(&self, stage: &'static str, elapsed: Duration) {
        self.stages.get_or_create(&StageLabel { stage }).observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the gallery sizes refreshed from `sizes`.
    pub fn render(&self, sizes: &[(String, usize)]) -> String {
        for (collection, size) in sizes {
            self.gallery.get_or_create(&CollectionLabel { collection: collection.clone() }).set(*size as i64);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
