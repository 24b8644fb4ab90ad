//! The API's behaviour through `router(state)` with `tower::ServiceExt::oneshot`, no sockets: keys and
//! scopes, the error envelope, decisions on the real models and an embedded store, and the OpenAPI
//! document against the routes that exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use facegate_api::{ApiConfig, AppState, PipelinePool, router};
use facegate_gallery::{Gallery, LocalKeyProvider};
use facegate_store::{FaceStore, Scope};
use facegate_store_sqlite::SqliteStore;
use facegate_testing::{lfw_image, pipeline_with};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    app: Router,
    admin: String,
    detect_only: String,
    /// An admin key of another tenant.
    stranger: String,
    store: Arc<dyn FaceStore>,
    _dir: tempfile::TempDir,
}

async fn key(store: &dyn FaceStore, tenant: &str, scopes: &[Scope]) -> String {
    let keys = facegate_gallery::Keys::new(store);
    let tenant = keys.tenant(tenant, 0).await.expect("tenant");
    let actor = facegate_gallery::Actor::new(tenant.id, "test".into(), facegate_store::RequestId::random());
    keys.create(&actor, "test", scopes, None, 0).await.expect("key").1
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("gallery.db")).expect("store"));
    let admin = key(store.as_ref(), "acme", &[Scope::Admin]).await;
    let detect_only = key(store.as_ref(), "acme", &[Scope::Detect]).await;
    let stranger = key(store.as_ref(), "globex", &[Scope::Admin]).await;
    let keys = Arc::new(LocalKeyProvider::from_hex(&"ab".repeat(32)).expect("master key"));
    let mut config = facegate_core::PipelineConfig::default();
    config.detector.max_faces = ApiConfig::default().max_faces + 1;
    let pool = Arc::new(PipelinePool::new(vec![pipeline_with("mobilefacenet", config)]));
    let packs = HashMap::from([("mobilefacenet".to_string(), pool)]);
    let state = AppState::new(packs, "mobilefacenet".into(), Gallery::new(store.clone(), keys), ApiConfig::default());
    Harness { app: router(state), admin, detect_only, stranger, store, _dir: dir }
}

impl Harness {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", content_type);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response =
            self.app.clone().oneshot(request.body(Body::from(body)).expect("request")).await.expect("answer");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(method, path, Some(&self.admin), "application/json", body.to_string().into_bytes()).await
    }

    async fn image(&self, path: &str, file: &std::path::Path) -> (StatusCode, Value) {
        let bytes = std::fs::read(file).expect("photo");
        self.call(Method::POST, path, Some(&self.admin), "image/jpeg", bytes).await
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn keys_scopes_and_the_error_envelope() {
    let h = harness().await;
    let (status, body) = h.call(Method::GET, "/v1/collections", None, "application/json", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "{body}");
    assert!(body["request_id"].is_string(), "every error names its request: {body}");
    let (status, body) = h.call(Method::GET, "/v1/collections", Some("fgk_wrong"), "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (status, body) = h.call(Method::GET, "/v1/collections", Some(&h.detect_only), "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = h.call(Method::GET, "/v1/nowhere", Some(&h.admin), "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = h.call(Method::PUT, "/v1/collections", Some(&h.admin), "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let (status, body) =
        h.call(Method::POST, "/v1/collections", Some(&h.admin), "application/json", b"{".to_vec()).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"));
    let (status, body) = h.json(Method::POST, "/v1/collections", json!({ "name": "   " })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{body}");
    let (status, body) = h.json(Method::POST, "/v1/collections", json!({ "name": "x", "target_fmr": 0.5 })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "fmr_out_of_range"), "{body}");
    let (status, body) = h.json(Method::POST, "/v1/collections", json!({ "name": "x", "pack": "nope" })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "unknown_pack"), "{body}");
    let (status, _) = h.json(Method::POST, "/v1/collections", json!({ "name": "doors" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = h.json(Method::POST, "/v1/collections", json!({ "name": "doors" })).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"));
    let (status, body) = h.json(Method::POST, "/v1/collections/no-such/subjects", json!({ "name": "Ann" })).await;
    assert_eq!((status, body["error"]["message"].as_str()), (StatusCode::NOT_FOUND, Some("collection not found")));
}

#[tokio::test]
async fn enrol_recognise_verify_search_and_erase_on_the_real_models() {
    let h = harness().await;
    let (_, collection) = h.json(Method::POST, "/v1/collections", json!({ "name": "front-door" })).await;
    let c = collection["id"].as_str().expect("id").to_string();
    let (_, subject) = h
        .json(
            Method::POST,
            &format!("/v1/collections/{c}/subjects"),
            json!({ "name": "Colin Powell", "metadata": { "badge": 7 } }),
        )
        .await;
    let s = subject["id"].as_str().expect("id").to_string();
    let (status, body) =
        h.json(Method::POST, &format!("/v1/collections/{c}/subjects"), json!({ "name": "x", "metadata": [1] })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "metadata is an object: {body}");

    let (status, enrolled) =
        h.image(&format!("/v1/collections/{c}/subjects/{s}/faces"), &lfw_image("Colin_Powell", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    assert_eq!(enrolled["accepted"].as_array().map(Vec::len), Some(1));

    let (status, recognised) = h.image(&format!("/v1/collections/{c}/recognize"), &lfw_image("Colin_Powell", 10)).await;
    assert_eq!(status, StatusCode::OK, "{recognised}");
    let face = recognised["faces"].as_array().and_then(|f| f.iter().find(|f| f["result"] == "match")).expect("a match");
    assert_eq!(
        (face["subject"]["id"].as_str(), face["subject"]["metadata"]["badge"].as_i64()),
        (Some(s.as_str()), Some(7))
    );

    let (status, stranger) = h.image(&format!("/v1/recognize?collection={c}"), &lfw_image("Serena_Williams", 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        stranger["faces"].as_array().expect("faces").iter().all(|f| f["result"] == "unknown" && f["subject"].is_null())
    );

    let (status, verified) =
        h.image(&format!("/v1/collections/{c}/subjects/{s}/verify"), &lfw_image("Colin_Powell", 11)).await;
    assert_eq!((status, verified["same_person"].as_bool()), (StatusCode::OK, Some(true)), "{verified}");
    let (status, searched) =
        h.image(&format!("/v1/collections/{c}/search?top_k=1"), &lfw_image("Colin_Powell", 12)).await;
    assert_eq!((status, searched["result"].as_str()), (StatusCode::OK, Some("match")), "{searched}");
    let (status, body) =
        h.image(&format!("/v1/collections/{c}/search?top_k=101"), &lfw_image("Colin_Powell", 12)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "top_k is 1 to 100");

    let (status, receipt) =
        h.call(Method::DELETE, &format!("/v1/collections/{c}/subjects/{s}"), Some(&h.admin), "", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["erasure"]["templates_erased"], 1);
    assert_eq!(receipt["receipt_sha256"].as_str().map(str::len), Some(64));
    let (_, trail) = h.call(Method::GET, &format!("/v1/collections/{c}/events"), Some(&h.admin), "", Vec::new()).await;
    let mut actions: Vec<&str> =
        trail["events"].as_array().expect("events").iter().filter_map(|e| e["action"].as_str()).collect();
    actions.dedup(); // one `recognize` event per face found
    assert_eq!(actions, ["enroll", "recognize", "verify", "search", "erase"], "{trail}");
    let (status, after) = h.image(&format!("/v1/collections/{c}/recognize"), &lfw_image("Colin_Powell", 10)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(after["faces"].as_array().expect("faces").iter().all(|f| f["result"] == "unknown"), "erased: {after}");
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_that_answer() {
    let h = harness().await;
    let (status, document) = h.call(Method::GET, "/v1/openapi.json", None, "", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{collection}", "c").replace("{subject}", "s").replace("{face}", "f");
        for (method, operation) in item.as_object().expect("operations") {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            // The event stream never ends for a key that may read it: a key without the scope shows it
            // is routed (its stream is read in the server tests).
            let key = if path == "/v1/events/stream" { &h.detect_only } else { &h.admin };
            let (status, body) = h.call(method.clone(), &concrete, Some(key), "application/json", Vec::new()).await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && body["error"]["message"] == "no such endpoint");
            assert!(!unrouted, "{method} {path} is documented but not routed: {status} {body}");
            let responses = operation["responses"].as_object().expect("responses");
            for error in ["400", "401", "403", "404", "413", "422", "429", "500", "503"] {
                assert_eq!(
                    responses[error]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorEnvelope",
                    "{method} {path} {error}"
                );
            }
        }
    }
    assert_eq!(operations, 73, "every route of the router is documented");
    let fmr = |name: &str| -> (f64, f64) {
        let schema = &document["components"]["schemas"][name]["properties"];
        let field = if schema["target_fmr"].is_object() { &schema["target_fmr"] } else { &schema["fmr"] };
        (field["minimum"].as_f64().expect("minimum"), field["maximum"].as_f64().expect("maximum"))
    };
    let range = facegate_core::CALIBRATION_FMRS;
    let calibrated = (range.iter().copied().fold(f64::INFINITY, f64::min), range.iter().copied().fold(0.0, f64::max));
    assert_eq!(fmr("CreateCollection"), calibrated, "the documented FMR range is the calibrated one");
    assert_eq!(fmr("CompareBody"), calibrated);
}

#[tokio::test]
async fn keys_are_managed_over_http_within_the_tenant() {
    let h = harness().await;
    let (status, me) = h.call(Method::GET, "/v1/keys/current", Some(&h.detect_only), "", Vec::new()).await;
    assert_eq!((status, me["scopes"].clone()), (StatusCode::OK, json!(["detect"])), "{me}");
    let body = json!({ "name": "kiosk", "scopes": ["search"] }).to_string().into_bytes();
    let (status, body) = h.call(Method::POST, "/v1/keys", Some(&h.detect_only), "application/json", body).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "only admins manage keys");
    let (status, created) = h.json(Method::POST, "/v1/keys", json!({ "name": " kiosk ", "scopes": ["search"] })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (id, secret) = (created["id"].as_str().expect("id"), created["secret"].as_str().expect("secret"));
    assert_eq!((created["name"].as_str(), created["scopes"].clone()), (Some("kiosk"), json!(["search"])));
    let (status, me) = h.call(Method::GET, "/v1/keys/current", Some(secret), "", Vec::new()).await;
    assert_eq!((status, me["id"].as_str()), (StatusCode::OK, Some(id)), "the new key works at once: {me}");
    for bad in [
        json!({ "name": "", "scopes": ["search"] }),
        json!({ "name": "x", "scopes": [] }),
        json!({ "name": "x", "scopes": ["root"] }),
    ] {
        let (status, body) = h.json(Method::POST, "/v1/keys", bad.clone()).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{bad}: {body}");
    }
    let (_, list) = h.json(Method::GET, "/v1/keys", Value::Null).await;
    let names: Vec<&str> = list["keys"].as_array().expect("keys").iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names, ["test", "test", "kiosk"], "the tenant's keys only: {list}");
    assert!(
        list["keys"].as_array().expect("keys").iter().all(|k| k.get("secret").is_none() && k.get("key_hash").is_none())
    );
    async fn revoke(h: &Harness, key: &str, id: &str) -> (StatusCode, Value) {
        h.call(Method::DELETE, &format!("/v1/keys/{id}"), Some(key), "", Vec::new()).await
    }
    let (status, body) = revoke(&h, &h.stranger, id).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "another tenant cannot revoke it: {body}");
    let (status, body) = revoke(&h, secret, id).await;
    assert_eq!(code(&body), "forbidden", "{status} {body}");
    let (status, _) = revoke(&h, &h.admin, id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = revoke(&h, &h.admin, id).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"), "already revoked: {body}");
    let (status, body) = h.call(Method::GET, "/v1/keys/current", Some(secret), "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "revoked at once: {body}");
    let (_, me) = h.call(Method::GET, "/v1/keys/current", Some(&h.admin), "", Vec::new()).await;
    let (status, body) = revoke(&h, &h.admin, me["id"].as_str().expect("id")).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"), "no key revokes itself: {body}");
}

/// The console (built by `scripts/console.sh build` before the Rust build) is served with a strict policy.
#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let h = harness().await;
    for path in ["/console", "/console/"] {
        let request = Request::builder().uri(path).body(Body::empty()).expect("request");
        let response = h.app.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{path}: is console/dist built?");
        let header = |name: &str| response.headers()[name].to_str().expect("ascii").to_string();
        assert!(header("content-type").starts_with("text/html"));
        let csp = header("content-security-policy");
        assert_eq!(csp, facegate_api::CONTENT_SECURITY_POLICY);
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval")
        );
        assert_eq!(header("x-frame-options"), "DENY");
        let html = response.into_body().collect().await.expect("body").to_bytes();
        let html = String::from_utf8_lossy(&html).to_string();
        assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");
        let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script file");
        let request = Request::builder().uri(script).body(Body::empty()).expect("request");
        let response = h.app.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{script}");
        assert!(response.headers()["content-type"].to_str().expect("ascii").contains("javascript"));
    }
    let (status, body) = h.call(Method::GET, "/console/assets/nothing.js", None, "", Vec::new()).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
}

/// The console's API client is generated at its build from `console/openapi.json`; this keeps that file
/// the router's own document, so the console cannot drift from the contract. After an API change:
/// `FACEGATE_UPDATE_OPENAPI=1 cargo test -p facegate-api --test router the_console`, then rebuild.
#[test]
fn the_console_is_built_on_this_document() {
    let path = facegate_testing::workspace_root().join("console/openapi.json");
    let document: Value = serde_json::from_str(&facegate_api::openapi_document()).expect("document");
    if std::env::var_os("FACEGATE_UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&document).expect("json") + "\n";
        std::fs::write(&path, text).expect("write console/openapi.json");
    }
    let committed: Value = serde_json::from_slice(&std::fs::read(&path).expect("console/openapi.json")).expect("json");
    assert!(committed == document, "console/openapi.json is not the router's document: refresh it (see this test)");
}

/// The enrolment gate's verdict before a photo is sent (`detect?quality=true`, the console's live
/// feedback), and the aligned crops an enrolment returns when asked (`crops=true`).
#[tokio::test]
async fn detect_says_whether_a_photo_would_enrol_and_enrolment_shows_its_crops() {
    let h = harness().await;
    let (status, one) = h.image("/v1/detect?quality=true", &lfw_image("Colin_Powell", 1)).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["enrolment"]["enrollable"], json!(true), "{one}");
    assert!(one["enrolment"]["sharpness"].as_f64().expect("sharpness") > 40.0, "{one}");
    let (_, group) = h.image("/v1/detect?quality=true", &facegate_testing::photo("group_t1.jpg")).await;
    assert_eq!(
        (group["enrolment"]["enrollable"].clone(), group["enrolment"]["reason"].as_str()),
        (json!(false), Some("multiple_faces")),
        "{group}"
    );
    assert!(group["enrolment"]["message"].as_str().expect("message").contains("faces found"), "{group}");
    let (_, plain) = h.image("/v1/detect", &lfw_image("Colin_Powell", 1)).await;
    assert!(plain.get("enrolment").is_none(), "only when asked: {plain}");

    let (_, collection) = h.json(Method::POST, "/v1/collections", json!({ "name": "crops" })).await;
    let c = collection["id"].as_str().expect("id");
    let (_, subject) = h.json(Method::POST, &format!("/v1/collections/{c}/subjects"), json!({ "name": "Colin" })).await;
    let s = subject["id"].as_str().expect("id");
    let faces = format!("/v1/collections/{c}/subjects/{s}/faces");
    let (status, enrolled) = h.image(&format!("{faces}?crops=true"), &lfw_image("Colin_Powell", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let crop = enrolled["accepted"][0]["aligned_crop"].as_str().expect("aligned_crop");
    let jpeg = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, crop).expect("base64");
    let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((image.width(), image.height()), (112, 112));
    let (_, again) = h.image(&faces, &lfw_image("Colin_Powell", 2)).await;
    assert!(again["accepted"][0].get("aligned_crop").is_none(), "only when asked: {again}");
}

#[tokio::test]
async fn sightings_are_searched_by_person_camera_decision_and_time_and_erased_with_the_person() {
    use facegate_store::{NewSighting, SightingDecision};
    let h = harness().await;
    let (_, collection) = h.json(Method::POST, "/v1/collections", json!({ "name": "lobby" })).await;
    let c = collection["id"].as_str().expect("id").to_string();
    let (_, ann) = h.json(Method::POST, &format!("/v1/collections/{c}/subjects"), json!({ "name": "Ann" })).await;
    let ann_id = ann["id"].as_str().expect("id").to_string();
    // Three decided tracks, as `facegate watch` records them.
    let tenant = h.store.tenant_by_name("acme").await.expect("tenant").expect("acme");
    let seen = |camera: &str, track_id: u64, named: bool, first_seen_ms: i64| NewSighting {
        collection_id: c.as_str().into(),
        camera: camera.into(),
        track_id,
        decision: if named { SightingDecision::Named } else { SightingDecision::Unknown },
        subject_id: named.then(|| ann_id.as_str().into()),
        cluster_id: (!named).then_some(1),
        score: Some(0.6),
        first_seen_ms,
        last_seen_ms: first_seen_ms + 1_000,
        stream_first_s: 0.0,
        stream_last_s: 1.0,
    };
    for sighting in [seen("front", 1, true, 10_000), seen("front", 2, false, 20_000), seen("back", 1, true, 30_000)] {
        h.store.record_sighting(&tenant.id, &sighting, None).await.expect("record");
    }
    let (h, c) = (&h, &c);
    let get = |query: &str| {
        let path = format!("/v1/collections/{c}/sightings{query}");
        async move { h.call(Method::GET, &path, Some(&h.admin), "", Vec::new()).await }
    };
    let (status, all) = get("").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let names: Vec<&str> =
        all["sightings"].as_array().expect("list").iter().map(|s| s["subject_name"].as_str().unwrap_or("-")).collect();
    assert_eq!(names, ["Ann", "-", "Ann"], "{all}");
    assert_eq!(all["sightings"][1]["cluster_id"], 1);
    assert_eq!(all["sightings"][0]["camera"], "front");
    let count = |body: &Value| body["sightings"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&get(&format!("?subject={ann_id}")).await.1), 2);
    assert_eq!(count(&get("?camera=back").await.1), 1);
    assert_eq!(count(&get("?decision=unknown").await.1), 1);
    assert_eq!(count(&get("?from=20500&until=30000").await.1), 1, "seen from 20 000 to 21 000 ms");
    let (_, first) = get("?limit=1").await;
    let after = first["next_after"].as_i64().expect("cursor");
    assert_eq!(count(&get(&format!("?after={after}")).await.1), 2, "the rest after the cursor");
    assert_eq!(count(&get("?from=20500&until=20500").await.1), 1, "seen at that instant");
    assert_eq!(count(&get("?from=25000&until=25000").await.1), 0, "nobody seen at that instant");
    for bad in ["?limit=0", "?limit=10001", "?decision=maybe", "?from=soon"] {
        let (status, body) = get(bad).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_request"), "{bad}: {body}");
    }
    let path = format!("/v1/collections/{c}/sightings");
    let (status, _) = h.call(Method::GET, &path, Some(&h.detect_only), "", Vec::new()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "they tell where people were: admin only");
    let (status, _) = h.call(Method::GET, &path, Some(&h.stranger), "", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's collection");
    // Erasing Ann erases where she was seen.
    let (status, receipt) =
        h.json(Method::DELETE, &format!("/v1/collections/{c}/subjects/{ann_id}"), Value::Null).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(receipt["erasure"]["sightings_erased"], 2, "the receipt says so: {receipt}");
    let (_, left) = get("").await;
    assert_eq!(count(&left), 1);
    assert_eq!(left["sightings"][0]["decision"], "unknown");
}
