//! What only the Lambda host needs: where the function's files are, data keys from AWS KMS (with the
//! function's credentials), and the caller's address as API Gateway saw it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use facegate_gallery::KeyProvider;
use facegate_gallery::kms::{KmsConfig, KmsKeyProvider};
use facegate_host::Settings;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The function's files (models in `models/`, ONNX Runtime in `runtime/`): the task root, else the
/// folder of this executable.
pub fn task_root() -> PathBuf {
    env("LAMBDA_TASK_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from)))
        .unwrap_or_else(|| PathBuf::from("/var/task"))
}

/// KMS when the settings name a key (credentials and region from the function's environment), else
/// the local master key.
pub fn key_provider(settings: &Settings) -> Result<Arc<dyn KeyProvider>> {
    let Some(key_id) = settings.kms_key_id.clone() else {
        return Ok(Arc::new(facegate_host::configured_local_keys(settings)?));
    };
    Ok(Arc::new(KmsKeyProvider::new(KmsConfig {
        key_id,
        region: env("AWS_REGION").context("AWS_REGION is needed with FACEGATE_KMS_KEY_ID")?,
        endpoint: settings.kms_endpoint.clone(),
        access_key_id: env("AWS_ACCESS_KEY_ID").context("AWS credentials are needed for KMS")?,
        secret_access_key: env("AWS_SECRET_ACCESS_KEY").context("AWS credentials are needed for KMS")?,
        session_token: env("AWS_SESSION_TOKEN"),
    })))
}

/// The API Gateway's view of the client address, where the API reads a socket's peer: failed key
/// checks are throttled per address.
pub async fn client_address(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let source = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = source.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip, 0)));
    }
    request
}
