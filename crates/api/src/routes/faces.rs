//! Stateless endpoints: detect, embed, compare.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use facegate_core::{AnalyzedFace, Embedding, Extras, PipelineError, decode_image, face_sharpness, largest_face};
use facegate_gallery::{AnalysisError, FaceChoice, OperatingPoint};
use facegate_store::Scope;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::{analyze, prominent, single_image};
use crate::auth::Caller;
use crate::contract::{CompareResponse, DetectResponse, DetectedFaceOut, EmbedResponse, EnrolmentCheck};
use crate::images::{Pool, decode_base64, field, read_images};
use crate::{ApiError, AppState, ErrorCode};

/// Query of `embed`: the pack.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackQuery {
    /// Pack to use (default: the server's default pack).
    pub pack: Option<String>,
}

/// Query of `detect`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetectQuery {
    /// Pack to use (default: the server's default pack).
    pub pack: Option<String>,
    /// Also score each face's liveness (presentation-attack detection) with the pack's liveness models.
    pub liveness: Option<bool>,
    /// Also say whether the image would pass the enrolment quality gate (`enrolment`): live feedback
    /// before an enrolment photo is sent.
    pub quality: Option<bool>,
}

/// Query of `compare`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// Pack to use (default: the server's default pack).
    pub pack: Option<String>,
    /// Target false-match rate of the decision (default 1e-3), within the calibrated range.
    #[param(minimum = 1e-6, maximum = 0.1)]
    pub fmr: Option<f64>,
}

/// Faces in an image: boxes, landmarks, detector scores.
#[utoipa::path(post, path = "/v1/detect", tag = "faces", params(DetectQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image"),
    responses((status = 200, description = "Faces found", body = DetectResponse)), security(("api_key" = [])))]
pub async fn detect(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DetectQuery>,
    request: Request,
) -> Result<Json<DetectResponse>, ApiError> {
    caller.require(Scope::Detect)?;
    let pool = state.pack(query.pack.as_deref().unwrap_or(&state.default_pack))?;
    let bytes = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let (limits, max_faces) = (state.analyser.limits(), state.config.max_faces);
    let with_liveness = query.liveness.unwrap_or(false);
    if with_liveness && !pool.has_liveness() {
        return Err(AnalysisError::NoLiveness.into());
    }
    let gate = query.quality.unwrap_or(false).then(|| *state.gallery.quality_gate());
    let reservation = state.analyser.decoding.reserve_decoding(&bytes, &limits).await?;
    let (width, height, faces, truncated, enrolment, elapsed) = pool
        .run(move |pipeline| {
            let _reservation = reservation;
            let image = decode_image(&bytes, &limits).map_err(PipelineError::from)?;
            let started = std::time::Instant::now();
            let mut found = pipeline.detect(&image)?;
            let enrolment = gate.map(|gate| {
                let largest = largest_face(found.iter().collect()).map(|f| (f, face_sharpness(&image, f)));
                EnrolmentCheck::new(gate.judge(found.len(), largest, FaceChoice::Only), largest.map(|(_, s)| s))
            });
            let truncated = found.len() > max_faces;
            found.truncate(max_faces);
            let mut faces = Vec::with_capacity(found.len());
            for face in found {
                let liveness = if with_liveness { Some(pipeline.liveness(&image, &face)?) } else { None };
                faces.push(DetectedFaceOut { face, liveness });
            }
            Ok((image.width(), image.height(), faces, truncated, enrolment, started.elapsed()))
        })
        .await?;
    state.metrics.stage("detect", elapsed);
    Ok(Json(DetectResponse { width, height, faces, faces_truncated: truncated, enrolment }))
}

/// Faces in an image with their templates.
#[utoipa::path(post, path = "/v1/embed", tag = "faces", params(PackQuery),
    request_body(content((crate::contract::ImageUpload = "multipart/form-data"), (crate::contract::ImageJson = "application/json"), (crate::contract::RawImage = "application/octet-stream")), description = "One image"),
    responses((status = 200, description = "Faces with templates", body = EmbedResponse)), security(("api_key" = [])))]
pub async fn embed(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PackQuery>,
    request: Request,
) -> Result<Json<EmbedResponse>, ApiError> {
    caller.require(Scope::Detect)?;
    let pack = query.pack.unwrap_or_else(|| state.default_pack.clone());
    state.pack(&pack)?;
    let bytes = single_image(&mut read_images(request, &state, &caller, Pool::Images).await?)?;
    let analysis = analyze(&state, &pack, bytes, Extras::default()).await?;
    Ok(Json(EmbedResponse {
        pack,
        width: analysis.width,
        height: analysis.height,
        faces: analysis.faces.into_iter().map(AnalyzedFace::from).collect(),
        faces_truncated: analysis.faces_truncated,
    }))
}

/// One side of a comparison: the largest face of an image, or a template.
async fn side(
    state: &AppState,
    pack: &str,
    fields: &Map<String, Value>,
    name: &str,
    image: Option<Bytes>,
) -> Result<Embedding, ApiError> {
    let bytes = match image {
        Some(bytes) => bytes,
        None => {
            let spec: Option<Map<String, Value>> = field(fields, name)?;
            let spec =
                spec.ok_or_else(|| ApiError::invalid(format!("`{name}` must be given as an image or a template")))?;
            if let Some(template) = field::<Vec<f32>>(&spec, "template")? {
                return Embedding::from_raw(template).ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidTemplate, format!("template `{name}` is zero or not finite"))
                });
            }
            let image =
                spec.get("image").ok_or_else(|| ApiError::invalid(format!("`{name}` needs `image` or `template`")))?;
            decode_base64(image)?
        }
    };
    Ok(prominent(analyze(state, pack, bytes, Extras::default()).await?.faces, &format!("image `{name}`"))?.embedding)
}

/// 1:1 comparison of two faces (each an image or a template) with a decision at a target FMR.
#[utoipa::path(post, path = "/v1/compare", tag = "faces", params(CompareQuery),
    request_body(content((crate::contract::CompareBody = "application/json"), (crate::contract::ImagesUpload = "multipart/form-data")), description = "Two faces, each a base64 image or a template; or multipart with two image files"),
    responses((status = 200, description = "Score and decision", body = CompareResponse)), security(("api_key" = [])))]
pub async fn compare(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CompareQuery>,
    request: Request,
) -> Result<Json<CompareResponse>, ApiError> {
    caller.require(Scope::Detect)?;
    let mut body = read_images(request, &state, &caller, Pool::Images).await?;
    let pack = field::<String>(&body.fields, "pack")?.or(query.pack).unwrap_or_else(|| state.default_pack.clone());
    let pool = state.pack(&pack)?;
    let fmr = field::<f64>(&body.fields, "fmr")?.or(query.fmr).unwrap_or(facegate_core::DEFAULT_TARGET_FMR);
    let (image_a, image_b) = match body.images.len() {
        0 => (None, None),
        2 => {
            let b = body.images.pop();
            (body.images.pop(), b)
        }
        n => return Err(ApiError::invalid(format!("compare takes two images, got {n}"))),
    };
    let a = side(&state, &pack, &body.fields, "a", image_a).await?;
    let b = side(&state, &pack, &body.fields, "b", image_b).await?;
    if a.len() != b.len() {
        return Err(ApiError::new(ErrorCode::InvalidTemplate, "the two templates differ in length"));
    }
    let operating = OperatingPoint::at(pool.calibration()?, fmr)?;
    Ok(Json(CompareResponse::new(a.cosine(&b), operating, pack)))
}
