//! Subjects of a collection, their faces (enrolment, erasure) and 1:1 verification. The rules (quality
//! gate, duplicates, thresholds, audit) are the gallery's; these handlers parse, call and render.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use facegate_gallery::{EnrollOptions, Enrolment, FaceChoice, ProbeOptions, Receipt, Rejection};
use facegate_store::{CollectionId, FaceId, NegativeId, NegativeRecord, NewSubject, Scope, Subject, SubjectId};
use serde::Deserialize;

use super::common::{IdentifyQuery, single_image};
use crate::auth::Caller;
use crate::contract::{
    EnrollRefusal, EnrollResponse, EnrolledFace, FaceList, NegativeList, RejectedImage, SubjectBody, SubjectList,
    VerifyResponse,
};
use crate::images::{Pool, field, read_images};
use crate::{ApiError, AppState, ErrorCode, JsonObject};

fn subject_body(body: SubjectBody) -> Result<NewSubject, ApiError> {
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
        created_at_ms: 0, // the gallery times it
    })
}

/// Creates a subject.
#[utoipa::path(post, path = "/v1/collections/{collection}/subjects", tag = "subjects", params(("collection" = CollectionId, Path)),
    request_body = SubjectBody, responses((status = 201, description = "Created", body = Subject)), security(("api_key" = [])))]
pub async fn create_subject(
    State(state): State<AppState>,
    caller: Caller,
    Path(collection): Path<CollectionId>,
    JsonObject(body): JsonObject<SubjectBody>,
) -> Result<(StatusCode, Json<Subject>), ApiError> {
    caller.require(Scope::Enroll)?;
    let new = subject_body(body)?;
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
    JsonObject(body): JsonObject<SubjectBody>,
) -> Result<Json<Subject>, ApiError> {
    caller.require(Scope::Enroll)?;
    let update = subject_body(body)?;
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
    let body = read_images(request, &state, &caller, Pool::Images).await?;
    let options = EnrollOptions {
        face: field(&body.fields, "face")?.or(query.face).unwrap_or_default(),
        reject_duplicates: field(&body.fields, "reject_duplicates")?.or(query.reject_duplicates).unwrap_or(false),
        crops: field(&body.fields, "crops")?.or(query.crops).unwrap_or(false),
    };
    if body.images.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingImage, "the request carries no image"));
    }
    if body.images.len() > state.config.max_images_per_request {
        return Err(ApiError::invalid(format!("at most {} images per request", state.config.max_images_per_request)));
    }
    let enrolment = state.gallery.enroll(&caller.actor(), &collection_id, &subject_id, body.images, options).await?;
    Ok((StatusCode::CREATED, Json(enrolment_answer(enrolment)?)))
}

/// What an enrolment says: the faces stored (with their crops, where asked for) and every refused
/// image, in image order; 4xx with the first refusal's code when nothing was stored.
fn enrolment_answer(enrolment: Enrolment) -> Result<EnrollResponse, ApiError> {
    let answer = enrolment_parts(enrolment);
    if answer.accepted.is_empty() {
        let code = answer.rejected.first().map_or(ErrorCode::LowQuality, |r| r.reason);
        let details = EnrollRefusal { rejected: answer.rejected };
        return Err(ApiError::new(code, "no image was accepted for enrolment").with_details(&details));
    }
    Ok(answer)
}

/// An enrolment as the API tells it: the faces stored and every refused image, in image order.
pub(super) fn enrolment_parts(enrolment: Enrolment) -> EnrollResponse {
    let unreadable = enrolment.unreadable.into_iter().map(|u| {
        let error = ApiError::from(u.error);
        RejectedImage { image_index: u.image_index, reason: error.code, message: error.message }
    });
    let mut rejected: Vec<RejectedImage> = unreadable.chain(enrolment.rejected.iter().map(rejected_image)).collect();
    rejected.sort_by_key(|r| r.image_index);
    let accepted = enrolment
        .accepted
        .into_iter()
        .map(|mut face| {
            let aligned_crop = face.aligned_crop.take().map(|jpeg| BASE64.encode(jpeg));
            EnrolledFace { face, aligned_crop }
        })
        .collect();
    EnrollResponse { accepted, rejected }
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
    let image = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let options = ProbeOptions { top_k: 1, fmr: query.fmr, liveness: query.liveness.unwrap_or(false) };
    let verification = state.gallery.verify(&caller.actor(), &collection_id, &subject_id, image, options).await?;
    Ok(Json(VerifyResponse {
        subject_id,
        score: verification.score,
        same_person: verification.same_person,
        threshold: verification.operating.threshold,
        target_fmr: verification.operating.target_fmr,
        bbox: verification.bbox,
        liveness: verification.liveness,
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
    let image = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let record = state.gallery.add_negative(&caller.actor(), &collection_id, &subject_id, image).await?;
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
