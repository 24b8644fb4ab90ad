//! `facegate keys create | list | revoke`: API keys, straight on the store.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use facegate_api::now_ms;
use facegate_gallery::Keys;
use facegate_store::{FaceStore, Scope};
use serde_json::json;

use facegate_host::Settings;

use crate::args::KeysAction;
use facegate_store::WireName;

pub fn run(settings: &Settings, action: KeysAction) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = facegate_host::open_configured_store(settings).await?;
        match action {
            KeysAction::Create { tenant, scopes, name, json } => create(store, &tenant, &scopes, &name, json).await,
            KeysAction::List => list(store).await,
            KeysAction::Revoke { id } => {
                if Keys::new(store.as_ref()).revoke_any(&id, "cli", now_ms()).await? {
                    println!("revoked {id}");
                    Ok(ExitCode::SUCCESS)
                } else {
                    bail!("no active key with id {id}")
                }
            }
        }
    })
}

fn parse_scopes(names: &[String]) -> Result<Vec<Scope>> {
    names
        .iter()
        .map(|n| Scope::parse(n.trim()).with_context(|| format!("unknown scope `{n}` (detect, enroll, search, admin)")))
        .collect()
}

async fn create(
    store: Arc<dyn FaceStore>,
    tenant: &str,
    scopes: &[String],
    name: &str,
    json: bool,
) -> Result<ExitCode> {
    let scopes = parse_scopes(scopes)?;
    let (id, secret) = facegate_host::create_key(store.as_ref(), tenant, &scopes, name, None, "cli").await?;
    if json {
        println!("{}", json!({ "id": id, "key": secret, "tenant": tenant, "scopes": scopes }));
    } else {
        println!("key id: {id}\ntenant: {tenant}\nkey:    {secret}\n(the key is shown once; only its hash is stored)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(store: Arc<dyn FaceStore>) -> Result<ExitCode> {
    for key in Keys::new(store.as_ref()).list(None).await? {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let state = if key.revoked_at_ms.is_some() { "revoked" } else { "active" };
        println!("{}  tenant {}  {:<8} {}  {}", key.id, key.tenant_id, state, scopes.join(","), key.name);
    }
    Ok(ExitCode::SUCCESS)
}
