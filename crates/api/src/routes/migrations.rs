//! Moving a collection to another pack: start (the work runs in the background of this process and
//! resumes when a server starts), and progress. The rules are the gallery's ([`Gallery::run_migration`]).
//!
//! [`Gallery::run_migration`]: facegate_gallery::Gallery::run_migration

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use facegate_gallery::{Actor, Analyser, GalleryError};
use facegate_store::{CollectionId, KeyId, Migration, PackVersion, RequestId, Scope, TenantId};

use crate::auth::Caller;
use crate::contract::{MigrationList, StartMigration};
use crate::{ApiError, AppState, JsonObject};

/// The key id the background runner acts under in the audit trail.
const RUNNER_KEY: &str = "migration";

/// Starts re-embedding the collection's kept faces with another pack. The collection keeps answering
/// with its current pack and switches when every kept face has a template of the target; faces
/// without a kept frame are listed in the progress (`faces_without_crop`): those people must enrol again.
#[utoipa::path(post, path = "/v1/collections/{collection}/migrations", tag = "collections", params(("collection" = CollectionId, Path)),
    request_body = StartMigration,
    responses((status = 202, description = "Started; poll the progress", body = Migration)), security(("api_key" = [])))]
pub async fn start_migration(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
    JsonObject(request): JsonObject<StartMigration>,
) -> Result<(StatusCode, Json<Migration>), ApiError> {
    caller.require(Scope::Admin)?;
    let pool = state.pack(&request.pack)?;
    let target = PackVersion { pack: request.pack, version: pool.template_version() };
    let actor = caller.actor();
    let migration = state.gallery.start_migration(&actor, &collection_id, target, pool.embedding_size()).await?;
    spawn_runner(&state, actor.tenant_id, collection_id);
    Ok((StatusCode::ACCEPTED, Json(migration)))
}

/// The collection's migrations with their progress: its latest one, or none if it never had one.
#[utoipa::path(get, path = "/v1/collections/{collection}/migrations", tag = "collections", params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "The latest migration, if any", body = MigrationList)), security(("api_key" = [])))]
pub async fn get_migration(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection_id): Path<CollectionId>,
) -> Result<Json<MigrationList>, ApiError> {
    caller.require(Scope::Admin)?;
    let latest = state.gallery.latest_migration(&caller.actor(), &collection_id).await?;
    Ok(Json(MigrationList { migrations: latest.into_iter().collect() }))
}

/// Resumes every running migration of the store (a server's start: one killed mid-way goes on).
///
/// # Errors
/// Store failures while listing them.
pub async fn resume_migrations(state: &AppState) -> Result<usize, GalleryError> {
    let running = state.gallery.running_migrations().await?;
    let count = running.len();
    for (tenant_id, collection_id) in running {
        spawn_runner(state, tenant_id, collection_id);
    }
    Ok(count)
}

/// Runs a collection's migration in the background unless this process already runs it.
fn spawn_runner(state: &AppState, tenant_id: TenantId, collection_id: CollectionId) {
    let Some(guard) = state.migrating.claim(&collection_id) else { return };
    let state = state.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let actor = Actor::new(tenant_id, KeyId::from(RUNNER_KEY), RequestId::random());
        match run(&state, &actor, &collection_id).await {
            Ok(done) => tracing::info!(
                collection = %collection_id,
                pack = %done.target.pack,
                migrated = done.faces_migrated,
                without_crop = done.faces_without_crop.len(),
                "migration finished"
            ),
            Err(error) => tracing::warn!(
                collection = %collection_id,
                error = %error.message,
                "migration stopped; it resumes at the next start"
            ),
        }
    });
}

async fn run(state: &AppState, actor: &Actor, collection_id: &CollectionId) -> Result<Migration, ApiError> {
    let migration = state.gallery.migration(actor, collection_id).await?;
    let pool = state.pack(&migration.target.pack)?;
    let version = pool.template_version();
    let batch = state.config.migration_batch;
    let (analyser, pack) = (state.analyser.clone(), migration.target.pack.clone());
    let embed = |frames| {
        let (analyser, pack) = (analyser.clone(), pack.clone());
        async move { analyser.embed_kept(&pack, frames).await.map_err(|e| e.to_string()) }
    };
    let progress = |m: &Migration| tracing::debug!(migrated = m.faces_migrated, total = m.faces_total, "migrating");
    Ok(state.gallery.run_migration(actor, collection_id, &version, batch, embed, progress).await?)
}
