//! The real `bootstrap` binary against an emulator of the Lambda Runtime API (the documented
//! protocol: `invocation/next`, `invocation/{id}/response`, `invocation/{id}/error`, `init/error`),
//! fed API Gateway REST (v1) and HTTP API (v2) events carrying real photos; its answers must match
//! what `facegate serve` answers for the same requests, and a broken event must not stop it. Webhook
//! events are delivered within the invocation that made them, and the scheduled drain function (an
//! EventBridge event) delivers what is left.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use base64::Engine;
use facegate_testing::{KillOnDrop, facegate_command, lfw_image, model_cache, photo};
use serde_json::{Value, json};

const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What the function sent back for one invocation.
#[derive(Debug)]
enum Outcome {
    Response(String, Value),
    Error(String, Value),
    InitError(Value),
}

#[derive(Clone)]
struct Emulator {
    events: Arc<Mutex<Receiver<(String, Value)>>>,
    outcomes: Sender<(Outcome, Instant)>,
    polled: Sender<Instant>,
}

async fn next(State(emulator): State<Emulator>) -> (HeaderMap, String) {
    let _ = emulator.polled.send(Instant::now());
    let events = emulator.events.clone();
    let received =
        tokio::task::spawn_blocking(move || events.lock().ok().and_then(|rx| rx.recv().ok())).await.ok().flatten();
    let Some((id, event)) = received else { return (HeaderMap::new(), String::new()) };
    let mut headers = HeaderMap::new();
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()) + 60_000;
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).expect("id"));
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).expect("deadline"));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:facegate"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    (headers, event.to_string())
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn response(State(emulator): State<Emulator>, Path(id): Path<String>, body: Bytes) -> &'static str {
    let _ = emulator.outcomes.send((Outcome::Response(id, json_of(&body)), Instant::now()));
    "accepted"
}

async fn error(State(emulator): State<Emulator>, Path(id): Path<String>, body: Bytes) -> &'static str {
    let _ = emulator.outcomes.send((Outcome::Error(id, json_of(&body)), Instant::now()));
    "accepted"
}

async fn init_error(State(emulator): State<Emulator>, body: Bytes) -> &'static str {
    let _ = emulator.outcomes.send((Outcome::InitError(json_of(&body)), Instant::now()));
    "accepted"
}

/// The test's side of the emulator: its address, where to queue events, what came back, and when the
/// function polled for events.
struct RuntimeApi {
    address: String,
    events: Sender<(String, Value)>,
    outcomes: Receiver<(Outcome, Instant)>,
    polled: Receiver<Instant>,
}

/// Starts the emulator on a free port.
fn start_emulator() -> RuntimeApi {
    let (event_tx, event_rx) = channel();
    let (outcome_tx, outcome_rx) = channel();
    let (polled_tx, polled_rx) = channel();
    let emulator = Emulator { events: Arc::new(Mutex::new(event_rx)), outcomes: outcome_tx, polled: polled_tx };
    let (address_tx, address_rx) = channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let app = Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(emulator);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = address_tx.send(listener.local_addr().expect("address").to_string());
            let _ = axum::serve(listener, app).await;
        });
    });
    RuntimeApi {
        address: address_rx.recv().expect("emulator address"),
        events: event_tx,
        outcomes: outcome_rx,
        polled: polled_rx,
    }
}

fn sibling_facegate() -> String {
    let bootstrap = std::path::PathBuf::from(env!("CARGO_BIN_EXE_bootstrap"));
    let facegate = bootstrap.with_file_name("facegate");
    assert!(facegate.exists(), "{} is built by `cargo test --workspace`", facegate.display());
    facegate.display().to_string()
}

/// An admin key of tenant `acme` in the store in `data`, made by the CLI.
fn admin_key(facegate: &str, data: &std::path::Path) -> String {
    let created = facegate_command(facegate, MASTER_KEY)
        .args(["keys", "create", "--tenant", "acme", "--json", "--data-dir"])
        .arg(data)
        .output()
        .expect("keys");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    serde_json::from_slice::<Value>(&created.stdout).expect("json")["key"].as_str().expect("key").to_string()
}

fn v2_event(method: &str, path: &str, query: &str, key: &str, content_type: &str, body: &[u8]) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": { "content-type": content_type, "x-api-key": key, "host": "abc123.execute-api.us-east-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req-v2", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:03:00:00 +0000", "timeEpoch": 1_795_489_200_000u64,
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "emulator" }
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// A REST API (v1) event as the template's `AuthMode=API_KEY` delivers it: API Gateway's own key in
/// `x-api-key`, the facegate key as a bearer token.
fn v1_event(method: &str, path: &str, key: &str, content_type: &str, body: &[u8]) -> Value {
    let gateway_key = "gateway-usage-plan-key-not-a-facegate-key";
    let bearer = format!("Bearer {key}");
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": { "content-type": content_type, "x-api-key": gateway_key, "authorization": bearer },
        "multiValueHeaders": { "content-type": [content_type], "x-api-key": [gateway_key], "authorization": [bearer] },
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": { "proxy": path.trim_start_matches('/') },
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "resourceId": "r", "stage": "prod", "requestId": "req-v1",
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "emulator" }, "resourcePath": "/{proxy+}",
            "httpMethod": method, "path": format!("/prod{path}"), "protocol": "HTTP/1.1", "requestTimeEpoch": 1_795_489_200_000u64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// The JSON body of a proxy-integration response.
fn body_of(response: &Value) -> Value {
    let text = response["body"].as_str().unwrap_or_default();
    let bytes = if response["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(text).expect("base64 body")
    } else {
        text.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn same_faces(lambda: &Value, local: &Value) {
    let (a, b) = (lambda["faces"].as_array().expect("faces"), local["faces"].as_array().expect("faces"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for field in ["x", "y", "width", "height"] {
            let (p, q) = (x["bbox"][field].as_f64().expect("bbox"), y["bbox"][field].as_f64().expect("bbox"));
            assert!((p - q).abs() < 1e-3, "{field}: {p} vs {q}");
        }
    }
}

#[test]
fn bootstrap_serves_api_gateway_events_like_the_local_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let facegate = sibling_facegate();
    let key = admin_key(&facegate, data.path());

    // The local server, used to enrol and as the reference.
    let mut server = facegate_command(&facegate, MASTER_KEY)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("address");
    let server = KillOnDrop(server);
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("url").to_string();
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, content_type: &str, body: Vec<u8>| -> Value {
        http.post(format!("{url}{path}"))
            .header("x-api-key", &key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("request")
            .json()
            .expect("json")
    };
    let collection = post("/v1/collections", "application/json", br#"{"name":"lobby"}"#.to_vec())["id"]
        .as_str()
        .expect("id")
        .to_string();
    let subject = post(
        &format!("/v1/collections/{collection}/subjects"),
        "application/json",
        br#"{"name":"Colin Powell"}"#.to_vec(),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let enrolled = post(
        &format!("/v1/collections/{collection}/subjects/{subject}/faces?face=largest"),
        "image/jpeg",
        std::fs::read(lfw_image("Colin_Powell", 1)).expect("image"),
    );
    assert_eq!(enrolled["accepted"].as_array().map(Vec::len), Some(1), "{enrolled}");

    // The function, on the emulated runtime, over the same store.
    let (RuntimeApi { events, outcomes, .. }, _bootstrap, init) = start_function(data.path(), &[]);

    let invoke = |id: &str, event: Value| -> (Outcome, Duration) {
        let sent = Instant::now();
        events.send((id.to_string(), event)).expect("queue");
        let (outcome, at) = outcomes.recv_timeout(Duration::from_secs(60)).expect("an answer");
        (outcome, at - sent)
    };

    let photo_bytes = std::fs::read(lfw_image("Colin_Powell", 10)).expect("image");
    let (first, first_latency) = invoke(
        "inv-1",
        v2_event("POST", "/v1/recognize", &format!("collection={collection}"), &key, "image/jpeg", &photo_bytes),
    );
    let Outcome::Response(id, response) = first else { panic!("recognize failed: {first:?}") };
    assert_eq!((id.as_str(), response["statusCode"].as_u64()), ("inv-1", Some(200)), "{response}");
    let lambda_answer = body_of(&response);
    let local_answer = post(&format!("/v1/recognize?collection={collection}"), "image/jpeg", photo_bytes.clone());
    let pick = |answer: &Value| {
        let area = |f: &Value| f["bbox"]["width"].as_f64().unwrap_or(0.0) * f["bbox"]["height"].as_f64().unwrap_or(0.0);
        answer["faces"]
            .as_array()
            .and_then(|f| f.iter().max_by(|a, b| area(a).total_cmp(&area(b))))
            .cloned()
            .expect("face")
    };
    let (l, s) = (pick(&lambda_answer), pick(&local_answer));
    assert_eq!((l["result"].as_str(), l["subject"]["id"].as_str()), (Some("match"), Some(subject.as_str())));
    assert_eq!(l["subject"], s["subject"]);
    assert!((l["score"].as_f64().expect("score") - s["score"].as_f64().expect("score")).abs() < 1e-5);
    same_faces(&lambda_answer, &local_answer);

    // A REST API (v1) event: detect on a group photo.
    let group = std::fs::read(photo("group_t1.jpg")).expect("photo");
    let (detect, _) = invoke("inv-2", v1_event("POST", "/v1/detect", &key, "image/jpeg", &group));
    let Outcome::Response(_, response) = detect else { panic!("detect failed: {detect:?}") };
    assert_eq!(response["statusCode"].as_u64(), Some(200), "{response}");
    same_faces(&body_of(&response), &post("/v1/detect", "image/jpeg", group));

    // A stored video, watched as one job within the invocation (a stream does not fit a function): the
    // same tracks and decisions as the local server's.
    let clip = std::fs::read(facegate_testing::shared_dir().join("data/video/hamilton/short_hamilton_clip.mp4"))
        .expect("clip");
    let videos = format!("/v1/collections/{collection}/videos");
    let (watched, _) = invoke("inv-video", v2_event("POST", &videos, "camera=archive", &key, "video/mp4", &clip));
    let Outcome::Response(_, response) = watched else { panic!("video failed: {watched:?}") };
    assert_eq!(response["statusCode"].as_u64(), Some(200), "{response}");
    let (by_lambda, by_server) = (body_of(&response), post(&format!("{videos}?camera=archive"), "video/mp4", clip));
    let shape = |answer: &Value| -> Vec<(Value, Value, Value, Value)> {
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .map(|e| (e["type"].clone(), e["track_id"].clone(), e["stream_time_s"].clone(), e["decision"].clone()))
            .collect()
    };
    assert!(by_lambda["frames_analysed"].as_u64().unwrap_or(0) > 80, "{by_lambda}");
    assert!(shape(&by_lambda).iter().any(|(kind, ..)| kind == "face.track.ended"), "{by_lambda}");
    assert_eq!(shape(&by_lambda), shape(&by_server));

    // Errors come back as the same envelope: a bad key, and a body that is not an image.
    let (unauthorized, _) =
        invoke("inv-3", v2_event("GET", "/v1/collections", "", "fgk_wrong", "application/json", b""));
    let Outcome::Response(_, response) = unauthorized else { panic!("{unauthorized:?}") };
    assert_eq!(
        (response["statusCode"].as_u64(), body_of(&response)["error"]["code"].as_str()),
        (Some(401), Some("unauthorized"))
    );
    let (garbage, _) = invoke("inv-4", v1_event("POST", "/v1/detect", &key, "image/jpeg", b"not an image"));
    let Outcome::Response(_, response) = garbage else { panic!("{garbage:?}") };
    assert_eq!(body_of(&response)["error"]["code"], "unsupported_image");

    // The console comes from the function too: no key needed, with its security policy.
    let (console, _) = invoke("inv-console", v1_event("GET", "/console/", "", "", b""));
    let Outcome::Response(_, response) = console else { panic!("{console:?}") };
    assert_eq!(response["statusCode"].as_u64(), Some(200), "{response}");
    let header = |name: &str| {
        let single = response["headers"][name].as_str();
        single.or_else(|| response["multiValueHeaders"][name][0].as_str()).map(str::to_string)
    };
    assert_eq!(header("content-security-policy").as_deref(), Some(facegate_api::CONTENT_SECURITY_POLICY));
    let text = response["body"].as_str().unwrap_or_default();
    let html = if response["isBase64Encoded"] == true {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).expect("base64")).expect("utf-8")
    } else {
        text.to_string()
    };
    assert!(html.contains("<div id=\"root\">"), "the console's page: {html}");

    // A broken event gets an error report, and the function keeps serving.
    let (broken, _) = invoke("inv-5", json!({ "not": "an API Gateway event" }));
    let Outcome::Error(id, report) = broken else { panic!("a broken event is reported as an error: {broken:?}") };
    assert_eq!(id, "inv-5");
    assert!(report["errorType"].is_string() && report["errorMessage"].is_string(), "{report}");
    let mut warm = Vec::new();
    for i in 0..10 {
        let (again, latency) = invoke(
            &format!("warm-{i}"),
            v2_event("POST", "/v1/recognize", &format!("collection={collection}"), &key, "image/jpeg", &photo_bytes),
        );
        let Outcome::Response(_, response) = again else { panic!("after the broken event: {again:?}") };
        assert_eq!(response["statusCode"].as_u64(), Some(200));
        warm.push(latency);
    }
    warm.sort();
    eprintln!(
        "Lambda emulation: init (exec to first poll) {} ms, first event {} ms, warm recognize p50 {} ms",
        init.as_millis(),
        first_latency.as_millis(),
        warm[warm.len() / 2].as_millis()
    );
    drop(server);
}

/// A webhook receiver: every request's arrival time and body; answers 503 while `refusing`.
#[derive(Clone, Default)]
struct Hooks {
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
    refusing: Arc<Mutex<bool>>,
}

impl Hooks {
    fn start(&self) -> String {
        let hooks = self.clone();
        let (address_tx, address_rx) = channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let app = Router::new().route(
                    "/hooks",
                    post(move |body: Bytes| {
                        let hooks = hooks.clone();
                        async move {
                            if *hooks.refusing.lock().expect("lock") {
                                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            hooks.received.lock().expect("lock").push((Instant::now(), json_of(&body)));
                            axum::http::StatusCode::OK
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let _ = address_tx.send(listener.local_addr().expect("address").to_string());
                let _ = axum::serve(listener, app).await;
            });
        });
        format!("http://{}/hooks", address_rx.recv().expect("receiver address"))
    }

    fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

/// Starts `bootstrap` on an emulated runtime over the store in `data`, with extra settings; returns the
/// emulator, the process and its init time (exec to its first poll for an event).
fn start_function(data: &std::path::Path, extra: &[(&str, &str)]) -> (RuntimeApi, KillOnDrop, Duration) {
    let api = start_emulator();
    let spawned = Instant::now();
    let bootstrap = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "facegate")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        // As the SAM template sets it: REST API paths arrive without the stage prefix.
        .env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")
        .env("FACEGATE_HOME", model_cache().home())
        .env("FACEGATE_DATA_DIR", data)
        .env("FACEGATE_MASTER_KEY", MASTER_KEY)
        .envs(facegate_testing::LOOPBACK_EGRESS)
        .envs(extra.iter().copied())
        .spawn()
        .expect("bootstrap starts");
    let bootstrap = KillOnDrop(bootstrap);
    let ready = api.polled.recv_timeout(Duration::from_secs(30)).expect("bootstrap polls for its first event");
    if let Ok((Outcome::InitError(report), _)) = api.outcomes.try_recv() {
        panic!("init failed: {report}");
    }
    (api, bootstrap, ready - spawned)
}

#[test]
fn the_function_delivers_webhooks_within_the_invocation_and_the_schedule_drains_the_rest() {
    let data = tempfile::tempdir().expect("tempdir");
    let key = admin_key(&sibling_facegate(), data.path());
    let hooks = Hooks::default();
    let url = hooks.start();

    // Set-up through the function itself: a collection and a webhook on identity decisions.
    let (api, function, _) = start_function(data.path(), &[]);
    let invoke = |api: &RuntimeApi, id: &str, event: Value| -> (Value, Instant) {
        api.events.send((id.to_string(), event)).expect("queue");
        match api.outcomes.recv_timeout(Duration::from_secs(60)).expect("an answer") {
            (Outcome::Response(_, response), at) => (response, at),
            other => panic!("{other:?}"),
        }
    };
    let json_event = |id: &str, method: &str, path: &str, query: &str, body: Value| {
        let (response, _) =
            invoke(&api, id, v2_event(method, path, query, &key, "application/json", body.to_string().as_bytes()));
        body_of(&response)
    };
    let collection = json_event("c", "POST", "/v1/collections", "", json!({ "name": "lobby" }))["id"]
        .as_str()
        .expect("collection")
        .to_string();
    let hook = json_event("w", "POST", "/v1/webhooks", "", json!({ "url": url, "event_types": ["identity.decision"] }));
    assert!(hook["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{hook}");

    // A decision: its event reaches the receiver before the invocation answers.
    let photo_bytes = std::fs::read(lfw_image("Colin_Powell", 10)).expect("image");
    let recognize =
        v2_event("POST", "/v1/recognize", &format!("collection={collection}"), &key, "image/jpeg", &photo_bytes);
    let (response, answered) = invoke(&api, "r1", recognize.clone());
    assert_eq!(response["statusCode"].as_u64(), Some(200), "{response}");
    // One identity decision per face of the photo.
    let faces = body_of(&response)["faces"].as_array().map_or(0, Vec::len);
    let received = hooks.received.lock().expect("lock").clone();
    assert!(faces >= 1 && received.len() == faces, "delivered within the invocation: {} of {faces}", received.len());
    assert!(received.iter().all(|(at, _)| *at <= answered), "before the answer");
    assert!(received.iter().all(|(_, body)| body["type"] == "identity.decision"), "{received:?}");

    // The receiver is down during the next decision: the event waits in the outbox.
    *hooks.refusing.lock().expect("lock") = true;
    let (response, _) = invoke(&api, "r2", recognize);
    assert_eq!(response["statusCode"].as_u64(), Some(200), "{response}");
    assert_eq!(hooks.count(), faces);
    drop(function);
    *hooks.refusing.lock().expect("lock") = false;
    std::thread::sleep(Duration::from_millis(1100)); // the first retry comes due after 1 s

    // The scheduled function (EventBridge) drains it.
    let (drain, _drainer, _) = start_function(data.path(), &[("FACEGATE_OUTBOX_DRAIN", "1")]);
    let scheduled = json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/facegate-drain"], "detail": {}
    });
    let (report, _) = invoke(&drain, "d1", scheduled);
    let left = Some(faces as u64);
    assert_eq!((report["attempted"].as_u64(), report["delivered"].as_u64()), (left, left), "{report}");
    assert_eq!(hooks.count(), 2 * faces, "the decisions made while the receiver was down arrived");
}
