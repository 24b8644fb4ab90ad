//! Subjects of a collection, their faces (enrolment, erasure) and 1:1 verification. The rules (quality
//! gate, duplicates, thresholds, audit) are the gallery's; these handlers parse, call and render.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use facegate_core::BoundingBox;
use facegate_gallery::{EnrollOptions, FaceChoice, FoundFace, OperatingPoint, Receipt, Rejection, TemplatePacks};
use facegate_store::{
    CollectionId, FaceId, NegativeId, NegativeRecord, NewSubject, PackVersion, Scope, Subject, SubjectId,
};
use serde::Deserialize;

use super::collections::IdentifyQuery;
use super::faces::{analyze, single_image};
use crate::auth::Caller;
use crate::contract::{
    EnrollRefusal, EnrollResponse, EnrolledFace, FaceList, NegativeList, RejectedImage, SubjectBody, SubjectList,
    VerifyResponse,
};
use crate::images::{Pool, field, read_images};
use crate::inference::Extras;
use crate::{ApiError, AppState, ErrorCode, json_body};

fn subject_body(bytes: &[u8]) -> Result<NewSubject, ApiError> {
    let body: SubjectBody = json_body(bytes)?;
    let name = crate::contract::display_name(&body.name)?;
    let metadata = serde_json::Value::Object(body.metadata.unwrap_or_default());
    if metadata.to_string().len() > 16 * 1024 {
        return Err(ApiError::invalid("`metadata` must be at most 16 KiB of JSON"));
    }
    let groups = body.groups.map(|groups| groups.into_iter().map(|g| g.trim().to_string()).collect::<Vec<_>>());
    if let Some(groups) = &groups
        && (groups.len() > 50 || groups.iter().any(|g| g.is_empty() || g.chars().count() > 100))
    {
        return Err(ApiError::invalid("`groups`: at most 50, each 1 to 100 characters"));
    }
    Ok(NewSubject {
        name: name.to_string(),
        metadata,
        groups,
        consent: body.consent,
        created_at_ms: facegate_gallery::now_ms(),
    })
}

/// Creates a subject.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects", tag = "subjects", params(("collection" = CollectionId, Path)),
    request_body = SubjectBody, responses((status = 201, description = "Created", body = Subject)), security(("api_key" = [])))]
pub async fn create_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<CollectionId>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Subject>), ApiError> {
    caller.require(Scope::Enroll)?;
    let new = subject_body(&body)?;
    let subject = state.gallery.create_subject(&caller.actor(), &collection, &new).await?;
    Ok((StatusCode::CREATED, Json(subject)))
}

/// The subjects of a collection.
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects", tag = "subjects", params(("collection" = CollectionId, Path)),
    responses((status = 200, description = "Subjects", body = SubjectList)), security(("api_key" = [])))]
pub async fn list_subjects(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<CollectionId>,
) -> Result<Json<SubjectList>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(SubjectList { subjects: state.gallery.subjects(&caller.actor(), &collection).await? }))
}

/// One subject.
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "The subject", body = Subject)), security(("api_key" = [])))]
pub async fn get_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
) -> Result<Json<Subject>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(state.gallery.subject(&caller.actor(), &collection, &subject).await?))
}

/// Renames a subject or replaces its metadata.
#[utoipa::path(patch, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    request_body = SubjectBody, responses((status = 200, description = "Updated", body = Subject)), security(("api_key" = [])))]
pub async fn update_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
    body: axum::body::Bytes,
) -> Result<Json<Subject>, ApiError> {
    caller.require(Scope::Enroll)?;
    let update = subject_body(&body)?;
    Ok(Json(state.gallery.update_subject(&caller.actor(), &collection, &subject, &update).await?))
}

/// Deletes a subject, erasing its templates; answers an erasure receipt.
#[utoipa::path(delete, path = "/v1/collections/{collection}/subjects/{subject}", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "Erasure receipt", body = Receipt)), security(("api_key" = [])))]
pub async fn delete_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
) -> Result<Json<Receipt>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(state.gallery.delete_subject(&caller.actor(), &collection, &subject).await?))
}

/// Deletes one face of a subject, erasing its template; answers an erasure receipt.
#[utoipa::path(delete, path = "/v1/collections/{collection}/subjects/{subject}/faces/{face}", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path), ("face" = FaceId, Path)),
    responses((status = 200, description = "Erasure receipt", body = Receipt)), security(("api_key" = [])))]
pub async fn delete_face(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject, face)): Path<(CollectionId, SubjectId, FaceId)>,
) -> Result<Json<Receipt>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(state.gallery.delete_face(&caller.actor(), &collection, &subject, &face).await?))
}

/// A subject's enrolled faces (no templates).
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}/faces", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "Faces", body = FaceList)), security(("api_key" = [])))]
pub async fn list_faces(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection, subject)): Path<(CollectionId, SubjectId)>,
) -> Result<Json<FaceList>, ApiError> {
    caller.require(Scope::Enroll)?;
    Ok(Json(FaceList { faces: state.gallery.faces(&caller.actor(), &collection, &subject).await? }))
}

/// Query of enrolment (the same names also work as body fields).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollQuery {
    /// `only` (default): an image must hold exactly one face; `largest`: take the largest face.
    pub face: Option<FaceChoice>,
    /// Refuse faces that already match another subject of the collection (default false: enrol and flag).
    pub reject_duplicates: Option<bool>,
    /// Return each enrolled face's aligned crop (`aligned_crop`), to show; it is not stored.
    pub crops: Option<bool>,
}

/// Enrols 1..n images of a subject. Each image passes the quality gate or is refused with a reason;
/// accepted faces are stored together, and any that already matches another subject is flagged.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects/{subject}/faces", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path), EnrollQuery),
    request_body(content((crate::contract::ImagesUpload = "multipart/form-data"), (crate::contract::ImagesJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "1..n images: multipart files, JSON base64 `images`, or one raw image"),
    responses((status = 201, description = "Faces accepted (and images refused)", body = EnrollResponse)), security(("api_key" = [])))]
pub async fn enroll_faces(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(CollectionId, SubjectId)>,
    Query(query): Query<EnrollQuery>,
    request: Request,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiError> {
    caller.require(Scope::Enroll)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    state.gallery.subject(&actor, &collection.id, &subject_id).await?;
    let body = read_images(request, &state, &caller, Pool::Images).await?;
    let face = field(&body.fields, "face")?.or(query.face).unwrap_or_default();
    let reject_duplicates = field(&body.fields, "reject_duplicates")?.or(query.reject_duplicates).unwrap_or(false);
    if body.images.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingImage, "the request carries no image"));
    }
    if body.images.len() > state.config.max_images_per_request {
        return Err(ApiError::invalid(format!("at most {} images per request", state.config.max_images_per_request)));
    }
    let pool = state.pack(&collection.pack)?;
    let operating = OperatingPoint::of(pool.calibration()?, &collection, None)?;
    let (packs, target_pool) = enrolment_packs(&state, &actor, &collection, &pool).await?;
    let crops = field(&body.fields, "crops")?.or(query.crops).unwrap_or(false);
    let extras = Extras::enrolment(collection.keep_crops || target_pool.is_some(), crops);
    let (mut images, unreadable, mut crops) = analyze_all(&state, &pool, body.images, extras).await?;
    if let Some(target_pool) = &target_pool {
        embed_for_target(target_pool, &mut images).await?;
    }
    let options = EnrollOptions { face, reject_duplicates, packs };
    let enrolment = state.gallery.enroll(&actor, &collection, &subject_id, images, options, operating).await?;
    let mut rejected: Vec<RejectedImage> =
        unreadable.into_iter().chain(enrolment.rejected.iter().map(rejected_image)).collect();
    rejected.sort_by_key(|r| r.image_index);
    if enrolment.accepted.is_empty() {
        let code = rejected.first().map_or(ErrorCode::LowQuality, |r| r.reason);
        let details = EnrollRefusal { rejected };
        return Err(ApiError::new(code, "no image was accepted for enrolment").with_details(&details));
    }
    let accepted = enrolment
        .accepted
        .into_iter()
        .map(|face| {
            let crop = crops.iter().position(|(i, bbox, _)| *i == face.image_index && *bbox == face.bbox);
            let aligned_crop = crop.map(|at| BASE64.encode(crops.swap_remove(at).2));
            EnrolledFace { face, aligned_crop }
        })
        .collect();
    Ok((StatusCode::CREATED, Json(EnrollResponse { accepted, rejected })))
}

/// The packs an enrolment's templates are made by: the collection's, and during a migration its
/// target where this server has it loaded at the migration's version (with that pack's pipelines).
async fn enrolment_packs(
    state: &AppState,
    actor: &facegate_gallery::Actor,
    collection: &facegate_store::Collection,
    pool: &crate::PipelinePool,
) -> Result<(TemplatePacks, Option<std::sync::Arc<crate::PipelinePool>>), ApiError> {
    let migration = state.gallery.running_migration(actor, &collection.id).await?;
    let target_pool = migration.as_ref().and_then(|m| state.packs.get(&m.target.pack).cloned());
    let current = PackVersion { pack: collection.pack.clone(), version: pool.template_version() };
    let target_version = target_pool.as_ref().map(|p| p.template_version());
    let packs = TemplatePacks::new(current, migration.as_ref(), target_version.as_deref());
    let target_pool = target_pool.filter(|_| packs.target.is_some());
    Ok((packs, target_pool))
}

/// Each found face's template of a migration's target pack, from its kept frame.
async fn embed_for_target(
    target: &crate::PipelinePool,
    images: &mut [(usize, Vec<FoundFace>)],
) -> Result<(), ApiError> {
    let faces: Vec<&mut FoundFace> = images.iter_mut().flat_map(|(_, faces)| faces.iter_mut()).collect();
    let frames: Vec<_> = faces.iter().filter_map(|f| f.kept.clone()).collect();
    let mut embeddings = target.embed_kept(frames).await?.into_iter();
    for face in faces.into_iter().filter(|f| f.kept.is_some()) {
        face.target_embedding = embeddings.next();
    }
    Ok(())
}

/// The faces of each readable enrolment image, the images that could not be read (with their 4xx
/// code), and each face's aligned crop (image, box, JPEG) where asked for.
async fn analyze_all(
    state: &AppState,
    pool: &crate::PipelinePool,
    images: Vec<axum::body::Bytes>,
    extras: Extras,
) -> Result<(Vec<(usize, Vec<FoundFace>)>, Vec<RejectedImage>, Vec<(usize, BoundingBox, Vec<u8>)>), ApiError> {
    let (mut found, mut unreadable, mut crops) = (Vec::new(), Vec::new(), Vec::new());
    for (image_index, bytes) in images.into_iter().enumerate() {
        match analyze(state, pool, bytes, extras).await {
            Ok(mut analysis) => {
                let faces = analysis.faces.iter().map(|f| f.face.bbox);
                let cropped = faces.zip(std::mem::take(&mut analysis.crops));
                crops.extend(cropped.filter_map(|(bbox, crop)| Some((image_index, bbox, crop?))));
                found.push((image_index, found_faces(analysis)));
            }
            Err(error) if error.status().is_client_error() => {
                unreadable.push(RejectedImage { image_index, reason: error.code, message: error.message });
            }
            Err(error) => return Err(error),
        }
    }
    Ok((found, unreadable, crops))
}

fn found_faces(analysis: crate::inference::Analysis) -> Vec<FoundFace> {
    let sharpness = analysis.sharpness;
    let mut kept = analysis.kept.into_iter();
    analysis
        .faces
        .into_iter()
        .enumerate()
        .map(|(i, f)| FoundFace {
            face: f.face,
            embedding: f.embedding,
            sharpness: sharpness.get(i).copied().unwrap_or(0.0),
            kept: kept.next().flatten(),
            target_embedding: None,
        })
        .collect()
}

fn rejected_image(rejection: &Rejection) -> RejectedImage {
    RejectedImage {
        image_index: rejection.image_index,
        reason: rejection.reason.into(),
        message: rejection.message.clone(),
    }
}

/// 1:1 verification of the largest face of an image against a subject's templates.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects/{subject}/verify", tag = "identification", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path), IdentifyQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image"),
    responses((status = 200, description = "Score and decision", body = VerifyResponse)), security(("api_key" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(CollectionId, SubjectId)>,
    Query(query): Query<IdentifyQuery>,
    request: Request,
) -> Result<Json<VerifyResponse>, ApiError> {
    caller.require(Scope::Search)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    let templates = state.gallery.verification_templates(&actor, &collection, &subject_id).await?;
    let pool = state.pack(&collection.pack)?;
    let operating = OperatingPoint::of(pool.calibration()?, &collection, query.fmr)?;
    let bytes = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let (face, liveness) = analyze(&state, &pool, bytes, Extras::probe_against(query.liveness, &collection))
        .await?
        .largest("the image")?;
    let verification =
        state.gallery.verify(&actor, &collection, &templates, face.embedding.as_slice(), operating).await?;
    Ok(Json(VerifyResponse {
        subject_id,
        score: verification.score,
        same_person: verification.same_person,
        threshold: operating.threshold,
        target_fmr: operating.target_fmr,
        bbox: face.face.bbox,
        liveness,
    }))
}

/// Marks the person in an image as "not this subject" (a false match seen in the field): their template
/// joins the subject's ignore list, and a probe closer to it than to the subject is no longer taken for
/// the subject (recognize, door attempts).
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects/{subject}/negatives", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image of the stranger (the largest face is taken)"),
    responses((status = 201, description = "Added to the ignore list", body = NegativeRecord)), security(("api_key" = [])))]
pub async fn add_negative(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(CollectionId, SubjectId)>,
    request: Request,
) -> Result<(StatusCode, Json<NegativeRecord>), ApiError> {
    caller.require(Scope::Enroll)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    state.gallery.subject(&actor, &collection.id, &subject_id).await?;
    let pool = state.pack(&collection.pack)?;
    let bytes = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let (face, _) = analyze(&state, &pool, bytes, Extras::default()).await?.largest("the image")?;
    let pack = PackVersion { pack: collection.pack.clone(), version: pool.template_version() };
    let record = state.gallery.add_negative(&actor, &collection, &subject_id, face.embedding.as_slice(), pack).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// A subject's ignore list (no templates).
#[utoipa::path(get, path = "/v1/collections/{collection}/subjects/{subject}/negatives", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path)),
    responses((status = 200, description = "The ignore list", body = NegativeList)), security(("api_key" = [])))]
pub async fn list_negatives(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id)): Path<(CollectionId, SubjectId)>,
) -> Result<Json<NegativeList>, ApiError> {
    caller.require(Scope::Enroll)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    Ok(Json(NegativeList { negatives: state.gallery.negatives(&actor, &collection, &subject_id).await? }))
}

/// Erases one entry of a subject's ignore list.
#[utoipa::path(delete, path = "/v1/collections/{collection}/subjects/{subject}/negatives/{negative}", tag = "subjects", params(("collection" = CollectionId, Path), ("subject" = SubjectId, Path), ("negative" = NegativeId, Path)),
    responses((status = 204, description = "Erased")), security(("api_key" = [])))]
pub async fn delete_negative(
    State(state): State<AppState>,
    caller: Caller,
    Path((collection_id, subject_id, negative_id)): Path<(CollectionId, SubjectId, NegativeId)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::Enroll)?;
    let actor = caller.actor();
    let collection = state.gallery.collection(&actor, &collection_id).await?;
    state.gallery.delete_negative(&actor, &collection, &subject_id, &negative_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
