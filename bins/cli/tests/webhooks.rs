//! Webhooks through a real `facegate serve` process and a local receiver that checks every Standard
//! Webhooks signature with its own HMAC: events made while the receiver is down are kept in the outbox,
//! the server is killed with SIGKILL before it could deliver them, and the restarted server delivers
//! every one (a message seen twice carries the same id and body). Prints the delivery latency and the
//! outbox drain rate.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Api, Server, create_key, read};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: String,
    signature_ok: bool,
    at: Instant,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Requests answered 503 before the receiver starts accepting.
    refuse_first: Arc<Mutex<usize>>,
    secret: Arc<Mutex<Vec<u8>>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }

    /// Distinct message ids received so far.
    fn ids(&self) -> HashMap<String, Vec<Received>> {
        let mut by_id: HashMap<String, Vec<Received>> = HashMap::new();
        for r in self.seen() {
            by_id.entry(r.id.clone()).or_default().push(r);
        }
        by_id
    }

    fn wait_for(&self, distinct: usize, limit: Duration) -> Instant {
        let started = Instant::now();
        while self.ids().len() < distinct {
            assert!(started.elapsed() < limit, "only {} of {distinct} events arrived", self.ids().len());
            std::thread::sleep(Duration::from_millis(5));
        }
        Instant::now()
    }
}

/// Checks `webhook-signature` against the HMAC-SHA256 of `id.timestamp.body` under the secret.
fn verify(secret: &[u8], headers: &axum::http::HeaderMap, body: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (id, timestamp, signatures) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (t - facegate_api::now_ms() / 1000).abs() < 300);
    fresh && signatures.split(' ').any(|s| s == expected)
}

/// Serves the receiver on `listener` in a thread of its own.
fn serve(receiver: Receiver, listener: std::net::TcpListener) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/hooks",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let receiver = receiver.clone();
                    async move {
                        let mut refuse = receiver.refuse_first.lock().expect("lock");
                        if *refuse > 0 {
                            *refuse -= 1;
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let secret = receiver.secret.lock().expect("lock").clone();
                        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                        let signature_ok = verify(&secret, &headers, &body);
                        let received = Received { id: id.to_string(), body, signature_ok, at: Instant::now() };
                        receiver.seen.lock().expect("lock").push(received);
                        axum::http::StatusCode::NO_CONTENT
                    }
                }),
            );
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("receiver");
        });
    });
}

fn frame(name: &str) -> Vec<u8> {
    read(&facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(name))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn every_event_is_delivered_signed_after_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    // The backlog below is sent faster than the default per-key rate limit allows.
    let flags = ["--rate-limit", "1000"];
    let mut server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);
    // The receiver's port, reserved now and served only after the kill: until then, deliveries fail.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    drop(listener);
    let types = json!(["door.decision", "subject.enrolled", "subject.erased", "identity.decision"]);
    let (status, created) = api.post_json("/v1/webhooks", json!({ "url": url, "event_types": types }));
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret");
    let secret = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64");
    let hook = created["webhook"]["id"].as_str().expect("id").to_string();
    let (status, body) = api.post_json("/v1/webhooks", json!({ "url": "http://example.org/in", "event_types": types }));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "plain http elsewhere: {body}"
    );

    let office = api.collection("office");
    let ann = api.subject(&office, "Ann");
    let images = ["0004_01_00_01_406.jpg", "0004_01_00_01_55.jpg"]
        .map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n));
    let (status, body) = api.enroll(&office, &ann, &images);
    assert_eq!(status, 201, "{body}");
    let (status, door) = api.post_json(
        "/v1/doors",
        json!({ "name": "lobby", "collection_id": office, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
    );
    assert_eq!(status, 201, "{door}");
    let attempts = format!("/v1/doors/{}/attempts", door["id"].as_str().expect("door id"));
    let mut decisions = Vec::new();
    for name in ["0004_01_06_03_210.jpg", "0004_01_06_03_92.jpg", "0013_01_07_03_240.jpg"] {
        let (status, decision) = api.post_images(&attempts, vec![frame(name)]);
        assert_eq!(status, 200, "{decision}");
        decisions.push(decision);
    }
    // Identity decisions by template (no image work): the backlog the restarted server drains.
    let (status, embedded) = api.post_image("/v1/embed", frame("0004_01_06_03_210.jpg"), "image/jpeg");
    assert_eq!(status, 200, "{embedded}");
    let template = common::main_face(&embedded)["embedding"].clone();
    let backlog = 200;
    for _ in 0..backlog {
        let (status, body) =
            api.post_json(&format!("/v1/collections/{office}/search"), json!({ "template": template }));
        assert_eq!(status, 200, "{body}");
    }
    let expected = 1 + decisions.len() + backlog;
    let (status, log) = api.get(&format!("/v1/webhooks/{hook}/deliveries?limit=10000"));
    assert_eq!(status, 200, "{log}");
    let log = log["deliveries"].as_array().expect("deliveries").clone();
    assert_eq!(log.len(), expected, "every event is in the outbox");
    assert!(log.iter().all(|d| d["state"] == "pending"), "the receiver is down");
    assert!(log.iter().any(|d| d["attempts"].as_u64() >= Some(1) && d["last_error"].is_string()), "and was tried");

    server.kill(); // SIGKILL: nothing is flushed or handed over.
    let receiver = Receiver::default();
    *receiver.secret.lock().expect("lock") = secret;
    *receiver.refuse_first.lock().expect("lock") = 1;
    let listener = std::net::TcpListener::bind(url.trim_start_matches("http://").trim_end_matches("/hooks"))
        .expect("the receiver's port is free again");
    serve(receiver.clone(), listener);

    let restarted = Instant::now();
    let server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);
    let drained = receiver.wait_for(expected, Duration::from_secs(120));
    let drain_s = (drained - restarted).as_secs_f64();
    // The drain rate of the rows due at the restart: the first burst of arrivals (gaps under 100 ms);
    // rows whose retry backoff had grown while the receiver was down come later, when due.
    let mut arrivals: Vec<Instant> = receiver.seen().iter().map(|r| r.at).collect();
    arrivals.sort();
    let burst = arrivals.windows(2).take_while(|w| w[1] - w[0] < Duration::from_millis(100)).count() + 1;
    let burst_s = (arrivals[burst - 1] - arrivals[0]).as_secs_f64().max(1e-3);
    eprintln!(
        "outbox after SIGKILL and restart: all {expected} events delivered {drain_s:.2} s after the restart (retry \
         backoff included); the {burst} due at once drained at {:.0} events/s",
        burst as f64 / burst_s
    );

    let by_id = receiver.ids();
    assert_eq!(by_id.len(), expected, "every event, each under one id");
    for (id, copies) in &by_id {
        assert!(copies.iter().all(|c| c.signature_ok), "{id}: every signature verifies");
        assert!(copies.iter().all(|c| c.body == copies[0].body), "{id}: a message seen twice is the same message");
    }
    let bodies: Vec<Value> = by_id.values().map(|c| serde_json::from_str(&c[0].body).expect("JSON body")).collect();
    let of_type = |t: &str| bodies.iter().filter(|b| b["type"] == t).count();
    assert_eq!((of_type("subject.enrolled"), of_type("door.decision"), of_type("identity.decision")), (1, 3, backlog));
    let granted: Vec<&Value> = bodies.iter().filter(|b| b["type"] == "door.decision").map(|b| &b["data"]).collect();
    assert_eq!(granted.iter().filter(|d| d["result"] == "granted").count(), 2, "{granted:?}");
    assert!(granted.iter().all(|d| d["door_id"] == door["id"] && d["tenant_id"].is_string()), "{granted:?}");
    // The sender records a delivery when the receiver's answer is back, just after the receiver saw it.
    let recorded = Instant::now();
    loop {
        let (status, log) = api.get(&format!("/v1/webhooks/{hook}/deliveries?limit=10000"));
        assert_eq!(status, 200);
        let log = log["deliveries"].as_array().expect("deliveries").clone();
        if log.iter().all(|d| d["state"] == "delivered" && d["delivered_at_ms"].is_i64()) {
            break;
        }
        assert!(recorded.elapsed() < Duration::from_secs(10), "the log says so: {log:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Delivery latency on a running server: from the decision's answer to the receiver.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let before = receiver.ids().len();
        let (status, _) = api.post_images(&attempts, vec![frame("0004_01_06_03_92.jpg")]);
        assert_eq!(status, 200);
        let answered = Instant::now();
        receiver.wait_for(before + 1, Duration::from_secs(10));
        let arrived = receiver.seen().last().expect("an event").at;
        latencies.push(arrived.saturating_duration_since(answered).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "webhook delivery latency after the answer (20 door decisions): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    // An erasure is an event too.
    let before = receiver.ids().len();
    let response = api
        .http
        .delete(format!("{}/v1/collections/{office}/subjects/{ann}", api.url))
        .header("x-api-key", &api.key)
        .send()
        .expect("delete");
    assert_eq!(response.status().as_u16(), 200);
    receiver.wait_for(before + 1, Duration::from_secs(10));
    let last = receiver.seen().last().cloned().expect("an event");
    let erased: Value = serde_json::from_str(&last.body).expect("JSON");
    assert_eq!(
        (erased["type"].as_str(), erased["data"]["subject_id"].as_str()),
        (Some("subject.erased"), Some(ann.as_str()))
    );
}

/// A camera's events reach webhooks as their own signed events (`face.track.started`,
/// `identity.sighted`, `identity.unknown`, `face.track.ended`) with the watch event's fields: here from a video uploaded to the server, whose
/// answer lists the same events.
#[test]
fn a_cameras_events_reach_webhooks_as_their_own_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let video = common::enrol_hamilton(dir.path());
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let receiver = Receiver::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
    let types = json!(["face.track.started", "identity.sighted", "identity.unknown", "face.track.ended"]);
    let (status, created) = api.post_json("/v1/webhooks", json!({ "url": url, "event_types": types }));
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").strip_prefix("whsec_").expect("whsec_ prefix");
    *receiver.secret.lock().expect("lock") = STANDARD.decode(secret).expect("base64");
    serve(receiver.clone(), listener);

    let (_, body) = api.get("/v1/collections");
    let collection = body["collections"][0]["id"].as_str().expect("the enrolled collection").to_string();
    let path = format!("/v1/collections/{collection}/videos?camera=stage");
    let (status, seen) = api.post_image(&path, read(&video.join("short_hamilton_clip.mp4")), "video/mp4");
    assert_eq!(status, 200, "{seen}");
    let decisions: Vec<&Value> =
        seen["events"].as_array().expect("events").iter().filter(|e| e["type"] != "door.decision").collect();
    assert!(decisions.iter().any(|e| e["type"] == "face.track.ended"), "{decisions:?}");
    assert!(decisions.iter().any(|e| e["type"] == "identity.unknown"), "the clip has strangers");
    receiver.wait_for(decisions.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let received = receiver.ids();
    assert_eq!(received.len(), decisions.len(), "one message per event, no more");
    let mut bodies: Vec<Value> = received
        .values()
        .map(|copies| {
            assert!(copies.iter().all(|r| r.signature_ok), "signed");
            serde_json::from_str(&copies[0].body).expect("JSON")
        })
        .collect();
    bodies.sort_by(|a, b| {
        let key = |v: &Value| (v["data"]["stream_time_s"].as_f64().unwrap_or_default(), v["data"]["track_id"].as_u64());
        key(a).partial_cmp(&key(b)).expect("order")
    });
    let told =
        |e: &Value| (e["type"].clone(), e["track_id"].clone(), e["subject"]["name"].clone(), e["cluster_id"].clone());
    let sent: Vec<_> = bodies.iter().map(|b| told(&b["data"])).collect();
    let mut answered: Vec<String> = decisions.iter().map(|e| format!("{:?}", told(e))).collect();
    answered.sort();
    let mut by_track: Vec<String> = sent.iter().map(|t| format!("{t:?}")).collect();
    by_track.sort();
    assert_eq!(by_track, answered, "the same events as the upload's answer");
    for body in &bodies {
        assert_eq!(body["type"], body["data"]["type"], "{body}");
        assert_eq!(
            (body["data"]["camera"].as_str(), body["data"]["collection_id"].as_str()),
            (Some("stage"), Some(collection.as_str()))
        );
        // Scores and threshold with a decision: not when a face appears, nor at the end of one never
        // large enough to be looked at.
        let decided = body["type"] != "face.track.started" && body["data"]["decision"] != "too_small";
        assert!(body["data"]["threshold"].is_number() == decided && body["data"]["bbox"].is_object(), "{body}");
        if body["type"] == "face.track.ended" {
            assert!(body["data"]["decision"].is_string() && body["data"]["last_seen_s"].is_number(), "{body}");
        }
    }
    let names: Vec<&str> = bodies
        .iter()
        .filter(|b| b["type"] == "identity.sighted")
        .filter_map(|b| b["data"]["subject"]["name"].as_str())
        .collect();
    assert_eq!(names, ["lin_manuel_miranda", "lin_manuel_miranda", "barack_obama"]);
}
