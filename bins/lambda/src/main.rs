//! `bootstrap`: the facegate API on AWS Lambda, behind API Gateway (REST v1 or HTTP v2 events) or a
//! Function URL. Init (before the first event) reads the one `Settings` (Lambda defaults, then the
//! `FACEGATE_*` environment the SAM template sets) and builds the same state and axum router that
//! `facegate serve` runs; [`aws`] holds what only Lambda needs (KMS data keys, the caller's address).
//! Behind a REST API, `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` lets routes see `/v1/...`.

mod aws;

use anyhow::Result;
use facegate_host::{HostKind, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG").unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .without_time()
        .init();
    let (settings, state) = init().await.inspect_err(|error| tracing::error!("init failed: {error:#}"))?;
    if settings.outbox_drain {
        // The scheduled invocation (an EventBridge rule in the SAM template): apply retention, deliver
        // what is left.
        return lambda_runtime::run(lambda_runtime::service_fn(
            move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
                let state = state.clone();
                async move {
                    let round = facegate_api::deliver_pending(&state).await;
                    tracing::info!(attempted = round.attempted, delivered = round.delivered, "outbox drained");
                    Ok::<_, lambda_runtime::Error>(
                        serde_json::json!({ "attempted": round.attempted, "delivered": round.delivered }),
                    )
                }
            },
        ))
        .await;
    }
    lambda_http::run(facegate_api::router(state).layer(axum::middleware::map_request(aws::client_address))).await
}

async fn init() -> Result<(Settings, facegate_api::AppState)> {
    let started = std::time::Instant::now();
    let base = Settings { home: aws::task_root(), ..Settings::defaults(HostKind::Lambda) };
    let settings = Settings::load(HostKind::Lambda, base, None, std::env::vars(), toml::Table::new())?;
    let keys = aws::key_provider(&settings)?;
    let manifest = facegate_models::builtin_manifest()?;
    let state = facegate_host::build_state(&settings, manifest, Default::default(), keys).await?;
    tracing::info!(init_ms = started.elapsed().as_millis() as u64, "facegate ready");
    Ok((settings, state))
}
