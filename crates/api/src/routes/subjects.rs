//! Subjects of a collection, their faces (enrolment with a quality gate, erasure) and 1:1 verification.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use facegate_gallery::FaceToEnroll;
use facegate_store::{Erasure, NewSubject, Scope, Subject};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::collections::{json_body, load_collection};
use super::faces::{analyze, prominent, single_image};
use crate::auth::Caller;
use crate::images::{field, read_images};
use crate::{ApiError, AppState, ErrorCode, now_ms};

/// Body of subject creation and update.
#[derive(Debug, Deserialize)]
pub struct SubjectBody {
    /// Display name.
    pub name: String,
    /// Free-form JSON (badge number, employee id...).
    #[serde(default)]
    pub metadata: Value,
}

/// An erasure receipt: what was erased, when, what copies may remain where, and a SHA-256 over all of
/// it that the caller can keep.
pub(crate) fn receipt(state: &AppState, erasure: &Erasure) -> Value {
    let store = state.gallery.store();
    let erased = json!({
        "collection_id": erasure.collection_id,
        "subject_ids": erasure.subject_ids,
        "face_ids": erasure.face_ids,
        "templates_erased": erasure.face_ids.len(),
        "erased_at_ms": erasure.erased_at_ms,
        "storage": {
            "backend": store.backend(),
            "physically_erased": erasure.physically_erased,
            "residue": store.erasure_residue(),
        },
    });
    let digest = hex::encode(Sha256::digest(erased.to_string().as_bytes()));
    json!({ "erasure": erased, "receipt_sha256": digest })
}

fn subject_not_found(error: facegate_store::StoreError) -> ApiError {
    match error {
        facegate_store::StoreError::NotFound => ApiError::not_found("subject"),
        other => other.into(),
    }
}

fn subject_body(bytes: &[u8]) -> Result<NewSubject, ApiError> {
    let body: SubjectBody = json_body(bytes)?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("`name` must be 1 to 200 characters"));
    }
    if body.metadata.to_string().len() > 16 * 1024 {
        return Err(ApiError::invalid("`metadata` must be at most 16 KiB of JSON"));
    }
    let metadata = if body.metadata.is_null() { json!({}) } else { body.metadata };
    Ok(NewSubject { name: name.to_string(), metadata, created_at_ms: now_ms() })
}

/// Creates a subject.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects", tag = "subjects", params(("collection" = String, Path)),
    request_body(content_type = "application/json", description = "{\"name\", \"metadata\"?}"), responses((status = 201, description = "Created")), security(("api_key" = [])))]
pub async fn create_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Subject>), ApiError> {
    caller.require(Scope::Enroll)?;
    let new = subject_body(&body)?;
    load_collection(&state, &caller, &collection).await?;
    let subject = state.gallery.store().create_subject(caller.tenant(), &collection, &new).await?;
    Ok((StatusCode::CREATED, Json(subject)))
}

/// The subjects of a collection.
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects", tag = "subjects", params(("collection" = String, Path)), responses((status = 200, description = "Subjects")), security(("api_key" = [])))]
pub async fn list_subjects(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Enroll)?;
    load_collection(&state, &caller, &collection).await?;
    let subjects = state.gallery.store().list_subjects(caller.tenant(), &collection).await?;
    Ok(Json(json!({ "subjects": subjects })))
}

/// One subject.
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path)), responses((status = 200, description = "The subject")), security(("api_key" = [])))]
pub async fn get_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(String, String)>,
) -> Result<Json<Subject>, ApiError> {
    caller.require(Scope::Enroll)?;
    let subject =
        state.gallery.store().subject(caller.tenant(), &collection, &subject).await.map_err(subject_not_found)?;
    Ok(Json(subject))
}

/// Renames a subject or replaces its metadata.
#[utoipa::path(patch, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path)),
    request_body(content_type = "application/json", description = "{\"name\", \"metadata\"?}"), responses((status = 200, description = "Updated")), security(("api_key" = [])))]
pub async fn update_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Subject>, ApiError> {
    caller.require(Scope::Enroll)?;
    let update = subject_body(&body)?;
    let subject = state
        .gallery
        .store()
        .update_subject(caller.tenant(), &collection, &subject, &update)
        .await
        .map_err(subject_not_found)?;
    Ok(Json(subject))
}

/// Deletes a subject, erasing its templates; answers an erasure receipt.
#[utoipa::path(delete, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path)), responses((status = 200, description = "Erasure receipt")), security(("api_key" = [])))]
pub async fn delete_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Enroll)?;
    let erasure = state
        .gallery
        .store()
        .delete_subject(caller.tenant(), &collection, &subject, now_ms())
        .await
        .map_err(subject_not_found)?;
    record(&state, &caller, &collection, "erase", "erased", Some(subject), None).await?;
    Ok(Json(receipt(&state, &erasure)))
}

/// Deletes one face of a subject, erasing its template.
#[utoipa::path(delete, path = "/v1/collections/{collection}/subjects/{subject}/faces/{face}", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path), ("face" = String, Path)), responses((status = 200, description = "Erasure receipt")), security(("api_key" = [])))]
pub async fn delete_face(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject, face)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Enroll)?;
    let erasure =
        state.gallery.store().delete_face(caller.tenant(), &collection, &subject, &face, now_ms()).await.map_err(
            |e| match e {
                facegate_store::StoreError::NotFound => ApiError::not_found("face"),
                other => other.into(),
            },
        )?;
    Ok(Json(receipt(&state, &erasure)))
}

/// A subject's enrolled faces (no templates).
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}/faces", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path)), responses((status = 200, description = "Faces")), security(("api_key" = [])))]
pub async fn list_faces(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Enroll)?;
    let faces =
        state.gallery.store().list_faces(caller.tenant(), &collection, &subject).await.map_err(subject_not_found)?;
    Ok(Json(json!({ "faces": faces })))
}

async fn record(
    state: &AppState,
    caller: &Caller,
    collection: &str,
    action: &str,
    result: &str,
    subject_id: Option<String>,
    score: Option<f32>,
) -> Result<(), ApiError> {
    let event = caller.event(collection, action, result, subject_id, score, None);
    Ok(state.gallery.store().append_events(caller.tenant(), &[event]).await?)
}

/// Query of enrolment.
#[derive(Debug, Default, Deserialize)]
pub struct EnrollQuery {
    /// `only` (default): an image must hold exactly one face; `largest`: take the largest face.
    pub face: Option<String>,
    /// Reject faces that already match another subject of the collection.
    pub reject_duplicates: Option<bool>,
}

/// Enrols 1..n images of a subject. Each image passes the quality gate or is rejected with a reason;
/// accepted faces are stored together, and any that already matches another subject is flagged.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects/{subject}/faces", tag = "subjects", params(("collection" = String, Path), ("subject" = String, Path), ("face" = Option<String>, Query), ("reject_duplicates" = Option<bool>, Query)),
    request_body(content_type = "multipart/form-data", description = "1..n images (multipart files, JSON base64 `images`, or one raw image)"),
    responses((status = 201, description = "accepted[] and rejected[]"), (status = 422, description = "Every image rejected")), security(("api_key" = [])))]
pub async fn enroll_faces(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(String, String)>,
    Query(query): Query<EnrollQuery>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Enroll)?;
    let collection = load_collection(&state, &caller, &collection_id).await?;
    state.gallery.store().subject(caller.tenant(), &collection.id, &subject_id).await.map_err(subject_not_found)?;
    let body = read_images(request, &state).await?;
    let take_largest = match field::<String>(&body.fields, "face")?.or(query.face).as_deref() {
        None | Some("only") => false,
        Some("largest") => true,
        Some(other) => return Err(ApiError::invalid(format!("`face` must be `only` or `largest`, not `{other}`"))),
    };
    let reject_duplicates =
        field::<bool>(&body.fields, "reject_duplicates")?.or(query.reject_duplicates).unwrap_or(false);
    if body.images.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingImage, "the request carries no image"));
    }
    if body.images.len() > state.config.max_images_per_request {
        return Err(ApiError::invalid(format!("at most {} images per request", state.config.max_images_per_request)));
    }
    let pool = state.pack(&collection.pack)?;
    let threshold = pool
        .first()
        .ok_or_else(|| ApiError::internal("empty pool"))?
        .calibration()
        .threshold_for(collection.target_fmr)?;
    let gate = state.config.quality;
    let (mut accepted, mut rejected, mut to_store) = (Vec::new(), Vec::new(), Vec::new());
    for (image_index, bytes) in body.images.into_iter().enumerate() {
        let mut reject = |code: ErrorCode, message: String| rejected.push((image_index, code, message));
        let analysis = match analyze(&state, &pool, bytes, true).await {
            Ok(analysis) => analysis,
            Err(error) if error.status().is_client_error() => {
                reject(error.code, error.message);
                continue;
            }
            Err(error) => return Err(error),
        };
        let face_count = analysis.faces.len();
        if face_count == 0 {
            reject(ErrorCode::NoFace, "no face found".into());
            continue;
        }
        if face_count > 1 && !take_largest {
            reject(ErrorCode::MultipleFaces, format!("{face_count} faces found; send one, or set face=largest"));
            continue;
        }
        let (position, face) = analysis
            .faces
            .into_iter()
            .enumerate()
            .max_by(|a, b| a.1.face.bbox.area().total_cmp(&b.1.face.bbox.area()))
            .ok_or_else(|| ApiError::internal("no face after check"))?;
        let sharpness = analysis.sharpness.get(position).copied().unwrap_or(0.0);
        let size = face.face.bbox.width.min(face.face.bbox.height);
        if let Some(reason) = gate.reject_reason(size, face.face.score, sharpness) {
            reject(ErrorCode::LowQuality, reason);
            continue;
        }
        let duplicate = super::collections::search_gallery(&state, &caller, &collection, &face.embedding, 2)
            .await?
            .into_iter()
            .find(|c| c.subject_id != subject_id && c.score >= threshold);
        if let (Some(duplicate), true) = (&duplicate, reject_duplicates) {
            reject(
                ErrorCode::Duplicate,
                format!("the face matches subject {} (score {:.3})", duplicate.subject_id, duplicate.score),
            );
            continue;
        }
        accepted.push(json!({
            "image_index": image_index,
            "bbox": face.face.bbox,
            "detection_score": face.face.score,
            "sharpness": sharpness,
            "possible_duplicate": duplicate.map(|d| json!({ "subject_id": d.subject_id, "score": d.score })),
        }));
        to_store.push(FaceToEnroll {
            template: face.embedding.as_slice().to_vec(),
            detection_score: face.face.score,
            sharpness,
            face_size: size,
        });
    }
    let first_reason = rejected.first().map(|(_, code, _)| *code);
    let rejected: Vec<Value> = rejected
        .into_iter()
        .map(|(image_index, code, message)| json!({ "image_index": image_index, "reason": code, "message": message }))
        .collect();
    if to_store.is_empty() {
        let code = first_reason.unwrap_or(ErrorCode::LowQuality);
        return Err(
            ApiError::new(code, "no image was accepted for enrolment").with_details(json!({ "rejected": rejected }))
        );
    }
    let records = state.gallery.enroll(caller.tenant(), &collection, &subject_id, &to_store, now_ms()).await?;
    for (item, record) in accepted.iter_mut().zip(&records) {
        item["face_id"] = json!(record.id);
    }
    record(&state, &caller, &collection.id, "enroll", "accepted", Some(subject_id), None).await?;
    Ok((StatusCode::CREATED, Json(json!({ "accepted": accepted, "rejected": rejected }))))
}

/// 1:1 verification of the largest face of an image against a subject's templates.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects/{subject}/verify", tag = "identification", params(("collection" = String, Path), ("subject" = String, Path), ("fmr" = Option<f64>, Query)),
    request_body(content_type = "image/jpeg", description = "An image"), responses((status = 200, description = "Score and decision")), security(("api_key" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(String, String)>,
    Query(query): Query<super::collections::IdentifyQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Search)?;
    let collection = load_collection(&state, &caller, &collection_id).await?;
    let templates =
        state.gallery.subject_templates(caller.tenant(), &collection.id, &subject_id).await.map_err(|e| match e {
            facegate_gallery::GalleryError::Store(store) => subject_not_found(store),
            other => other.into(),
        })?;
    if templates.is_empty() {
        return Err(ApiError::new(ErrorCode::NoTemplates, "the subject has no enrolled faces"));
    }
    let pool = state.pack(&collection.pack)?;
    let target_fmr = query.fmr.unwrap_or(collection.target_fmr);
    let bytes = single_image(&mut read_images(request, &state).await?)?;
    let face = prominent(analyze(&state, &pool, bytes, false).await?.faces, "the image")?;
    let score =
        templates.iter().map(|t| facegate_core::cosine(face.embedding.as_slice(), t)).fold(f32::NEG_INFINITY, f32::max);
    let decision =
        pool.first().ok_or_else(|| ApiError::internal("empty pool"))?.calibration().decide(score, target_fmr)?;
    let result = if decision.same { "match" } else { "no_match" };
    record(&state, &caller, &collection.id, "verify", result, Some(subject_id.clone()), Some(score)).await?;
    Ok(Json(json!({
        "subject_id": subject_id,
        "score": score,
        "same_person": decision.same,
        "threshold": decision.threshold,
        "target_fmr": decision.target_fmr,
        "bbox": face.face.bbox,
    })))
}
