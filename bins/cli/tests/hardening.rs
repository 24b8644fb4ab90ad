//! What a hostile tenant, a stolen low-scope key or a careless operator can do to a door, against the
//! real `facegate serve` process, models and store (issue 23): webhooks held to the egress policy at
//! registration and at connect time, fair admission of slow bodies per tenant, webhook receivers that
//! delay only themselves, request ids made by the server, header and idle timeouts and a connection cap,
//! failed key checks throttled per address and key, and the headers and bounds every answer keeps.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, Server, create_key, read};
use serde_json::{Value, json};

fn nuaa(name: &str) -> Vec<u8> {
    read(&facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(name))
}

const ANN_ENROL: [&str; 2] = ["0004_01_00_01_406.jpg", "0004_01_00_01_55.jpg"];
const ANN: &str = "0004_01_06_03_210.jpg";

/// A collection with Ann enrolled and a door everyone enrolled may pass (no liveness): (collection,
/// Ann's id, door).
fn office(api: &Api) -> (String, String, String) {
    let office = api.collection("office");
    let ann = api.subject(&office, "Ann");
    let images: Vec<_> =
        ANN_ENROL.iter().map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n)).collect();
    let (status, body) = api.enroll(&office, &ann, &images);
    assert_eq!(status, 201, "{body}");
    let policy = json!({ "allow_everyone": true, "timezone": "UTC", "liveness_required": false });
    let (status, door) =
        api.post_json("/v1/doors", json!({ "name": "front", "collection_id": office, "policy": policy }));
    assert_eq!(status, 201, "{door}");
    (office, ann, door["id"].as_str().expect("id").to_string())
}

/// A webhook receiver on loopback: records each request's body (and when), answers 204; or, when
/// `hang`, accepts and never answers.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    connections: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Serves on `address` (e.g. `127.0.0.1:0`) in a thread; the URL to register.
    fn start(&self, address: &str, hang: bool) -> String {
        let listener = TcpListener::bind(address).expect("bind receiver");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        let me = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                *me.connections.lock().expect("lock") += 1;
                let me = me.clone();
                std::thread::spawn(move || {
                    let Some(body) = read_request(&mut stream) else { return };
                    if hang {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    me.seen.lock().expect("lock").push((body, Instant::now()));
                    let _ =
                        stream.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                });
            }
        });
        url
    }

    fn bodies(&self) -> Vec<String> {
        self.seen.lock().expect("lock").iter().map(|(b, _)| b.clone()).collect()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().expect("lock")
    }
}

/// One HTTP/1.1 request read off a socket: its body.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&data[head_end..]).into_owned())
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete(api: &Api, path: &str) -> u16 {
    api.http
        .delete(format!("{}{path}", api.url))
        .header("x-api-key", &api.key)
        .send()
        .expect("delete")
        .status()
        .as_u16()
}

#[test]
fn webhooks_never_leave_the_egress_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    // Test servers are loopback-only (facegate_testing::LOOPBACK_EGRESS); this one narrows it to one address.
    let env = [("FACEGATE_EGRESS_ALLOW", "127.0.0.2/32")];
    let mut server = Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &env);
    let api = Api::new(&server, &key);
    let types = json!(["identity.decision"]);
    let register = |api: &Api, url: &str| api.post_json("/v1/webhooks", json!({ "url": url, "event_types": types }));
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://93.184.215.14/hook",
        "https://127.1/hook",
        "https://0x7f000001/hook",
        "https://2130706433/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.1/hook",
        "https://[fd00::1]/hook",
        "http://127.0.0.1:9/hook",
        "https://hooks.example.org/hook",
        "https://user:secret@127.0.0.2/hook",
    ] {
        let (status, body) = register(&api, url);
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{url}: {body}");
    }
    let long = format!("http://127.0.0.2:9/{}", "a".repeat(3000));
    assert_eq!(register(&api, &long).0, 400, "a URL longer than 2048 characters");

    // The one allowed address receives; a receiver on another loopback address is never dialled.
    let (allowed, elsewhere) = (Receiver::default(), Receiver::default());
    let allowed_url = allowed.start("127.0.0.2:0", false);
    let elsewhere_url = elsewhere.start("127.0.0.1:0", false);
    let (status, hook) = register(&api, &allowed_url);
    assert_eq!(status, 201, "{hook}");
    let (status, body) = register(&api, &elsewhere_url);
    assert_eq!(status, 400, "{body}");
    let (office, _, _) = office(&api);
    let (status, _) = api.post_image(&format!("/v1/recognize?collection={office}"), nuaa(ANN), "image/jpeg");
    assert_eq!(status, 200);
    wait_until(Duration::from_secs(10), "the allowed receiver gets the event", || !allowed.bodies().is_empty());

    // A receiver whose address the operator no longer allows is refused at connect time, and the
    // delivery log says so instead of showing what answered.
    server.kill();
    let env = [("FACEGATE_EGRESS_ALLOW", "127.0.0.3/32")];
    let server = Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &env);
    let api = Api::new(&server, &key);
    let before = allowed.connections();
    let (status, _) = api.post_image(&format!("/v1/recognize?collection={office}"), nuaa(ANN), "image/jpeg");
    assert_eq!(status, 200);
    let hook = hook["webhook"]["id"].as_str().expect("id");
    let mut log = Value::Null;
    wait_until(Duration::from_secs(10), "the refusal is logged", || {
        log = api.get(&format!("/v1/webhooks/{hook}/deliveries")).1;
        log["deliveries"].as_array().is_some_and(|d| d.iter().any(|d| d["last_error"].is_string()))
    });
    let refused = log["deliveries"].as_array().expect("deliveries").iter().find(|d| d["last_error"].is_string());
    let refused = refused.expect("a refused delivery");
    assert!(refused["last_error"].as_str().is_some_and(|e| e.starts_with("refused by egress policy")), "{refused}");
    assert!(refused["last_status"].is_null(), "no internal answer is recorded: {refused}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(allowed.connections(), before, "the refused receiver was never dialled");
    assert_eq!(elsewhere.connections(), 0);

    // Webhook changes are configuration changes: the trail keeps the receiver's origin, not its path.
    let (_, trail) = api.get("/v1/changes");
    let created = trail["changes"].as_array().expect("changes").iter().find(|c| c["action"] == "webhook.created");
    let created = created.expect("webhook.created");
    assert_eq!(created["details"]["origin"], json!(allowed_url.trim_end_matches("/hooks")), "{created}");
    assert!(!created.to_string().contains("/hooks"), "{created}");
}

/// Opens a request to `path` declaring a body of `length` bytes, and sends none of it.
fn slow_body(url: &str, key: &str, path: &str, length: usize) -> TcpStream {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\nx-api-key: {key}\r\ncontent-type: image/jpeg\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream
}

/// The status of the answer waiting on `stream`, if one came within `limit`.
fn answer(stream: &mut TcpStream, limit: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(limit)).ok()?;
    let mut data = [0u8; 64];
    let n = stream.read(&mut data).ok()?;
    String::from_utf8_lossy(&data[..n]).split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn one_tenant_cannot_close_another_tenants_doors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = create_key(dir.path(), "hostile", "admin");
    let victim = create_key(dir.path(), "victim", "admin");
    let server = Server::start(dir.path(), &["--workers", "2", "--body-timeout", "8", "--rate-limit", "1000"]);
    let api = Api::new(&server, &victim);
    let (_, _, door) = office(&api);

    // 64 connections of the hostile tenant declare a body and send none of it: the default budget is 64
    // image requests, of which one tenant may hold 32 and one key 16.
    let mut held: Vec<TcpStream> = (0..64).map(|_| slow_body(&server.url, &hostile, "/v1/detect", 100_000)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let (status, body) = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![nuaa(ANN)]);
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((status, body["access"].as_str()), (200, Some("granted")), "the other tenant's door opens: {body}");
        let (status, body) = api.post_image("/v1/detect", nuaa(ANN), "image/jpeg");
        assert_eq!(status, 200, "and its other requests are served: {body}");
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "door attempt of another tenant while 64 slow bodies are held: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    // Slow bodies end at the body timeout: the 16 admitted with 408, the others refused with 503 (they
    // are answered once their unread bodies stop arriving).
    let answers: Vec<Option<u16>> = held.iter_mut().map(|s| answer(s, Duration::from_secs(15))).collect();
    let count = |status| answers.iter().filter(|s| **s == Some(status)).count();
    assert_eq!((count(408), count(503)), (16, 48), "one key holds at most a quarter of the budget: {answers:?}");
    drop(held);
    let (status, _) = Api::new(&server, &hostile).post_image("/v1/detect", nuaa(ANN), "image/jpeg");
    assert_eq!(status, 200, "the hostile tenant's places came back");
}

#[test]
fn a_hanging_receiver_delays_only_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow_key = create_key(dir.path(), "slow", "admin");
    let healthy_key = create_key(dir.path(), "healthy", "admin");
    let server = Server::start(dir.path(), &["--rate-limit", "1000"]);
    let (hanging, healthy) = (Receiver::default(), Receiver::default());
    let hanging_url = hanging.start("127.0.0.1:0", true);
    let healthy_url = healthy.start("127.0.0.1:0", false);
    let slow = Api::new(&server, &slow_key);
    let fine = Api::new(&server, &healthy_key);
    let types = json!(["door.decision"]);
    assert_eq!(slow.post_json("/v1/webhooks", json!({ "url": hanging_url, "event_types": types })).0, 201);
    assert_eq!(fine.post_json("/v1/webhooks", json!({ "url": healthy_url, "event_types": types })).0, 201);
    let (_, _, slow_door) = office(&slow);
    let (_, _, fine_door) = office(&fine);
    for _ in 0..3 {
        assert_eq!(slow.post_images(&format!("/v1/doors/{slow_door}/attempts"), vec![nuaa(ANN)]).0, 200);
    }
    wait_until(Duration::from_secs(5), "the hanging receiver is dialled", || hanging.connections() > 0);
    let decided = Instant::now();
    assert_eq!(fine.post_images(&format!("/v1/doors/{fine_door}/attempts"), vec![nuaa(ANN)]).0, 200);
    wait_until(Duration::from_secs(3), "the healthy receiver gets its event", || !healthy.bodies().is_empty());
    let delay = healthy.seen.lock().expect("lock")[0].1 - decided;
    eprintln!("webhook delay of a healthy receiver while another hangs: {:.1} ms", delay.as_secs_f64() * 1000.0);
    assert!(delay < Duration::from_secs(2), "{delay:?}");
}

#[test]
fn request_ids_are_made_by_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let (office, _, _) = office(&api);
    let recognize = |client_id: &str| {
        let response = api
            .http
            .post(format!("{}/v1/recognize?collection={office}", server.url))
            .header("x-api-key", &key)
            .header("x-request-id", client_id)
            .header("content-type", "image/jpeg")
            .body(nuaa(ANN))
            .send()
            .expect("recognize");
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        (header("x-request-id").expect("x-request-id"), header("x-correlation-id"))
    };
    let hostile = format!("<b>{}</b>", "x".repeat(5_000));
    let (id, correlation) = recognize(&hostile);
    assert_eq!((id.len(), correlation), (36, None), "a server-made UUID; the hostile value is dropped");
    let (plain_id, correlation) = recognize("trace-42");
    assert_ne!(plain_id, "trace-42");
    assert_eq!(correlation.as_deref(), Some("trace-42"), "a plain client id comes back as the correlation id");
    let (_, trail) = api.get(&format!("/v1/collections/{office}/events"));
    let events = trail["events"].as_array().expect("events");
    assert!(!trail.to_string().contains("xxxxxxxxxx"), "nothing of the hostile id is stored");
    let mine = events.iter().find(|e| e["request_id"] == json!(plain_id)).expect("the event of the second request");
    assert_eq!(mine["correlation_id"], json!("trace-42"), "{mine}");
    assert!(events.iter().any(|e| e["request_id"] == json!(id)), "{trail}");
}

#[test]
fn slow_idle_and_surplus_connections_are_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &["--header-timeout", "2", "--max-connections", "20"]);
    let address = server.url.trim_start_matches("http://").to_string();
    let closed_within = |stream: &mut TcpStream, limit: Duration| {
        stream.set_read_timeout(Some(limit)).expect("timeout");
        let started = Instant::now();
        let mut sink = [0u8; 1024];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    // A half-sent request head (slowloris).
    let mut slowloris = TcpStream::connect(&address).expect("connect");
    slowloris.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\nx-a: ").expect("partial head");
    let closed = closed_within(&mut slowloris, Duration::from_secs(8));
    assert!(closed.is_some_and(|t| t < Duration::from_secs(5)), "a half-sent head is cut off: {closed:?}");
    // An idle keep-alive connection after its answer.
    let mut idle = TcpStream::connect(&address).expect("connect");
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n").expect("request");
    let closed = closed_within(&mut idle, Duration::from_secs(8));
    assert!(closed.is_some_and(|t| t < Duration::from_secs(5)), "an idle connection is closed: {closed:?}");
    // Past the connection limit, new connections are closed at once; the server serves on.
    let mut held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&address).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut surplus = TcpStream::connect(&address).expect("the kernel still accepts");
    let closed = closed_within(&mut surplus, Duration::from_secs(2));
    assert!(closed.is_some(), "a connection past the limit is closed");
    for stream in &mut held {
        let _ = stream.shutdown(Shutdown::Both);
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(Api::new(&server, &key).get("/v1/collections").0, 200);
}

#[test]
fn failed_key_checks_are_throttled_per_address_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &["--rate-limit", "1000"]);
    let api = Api::new(&server, &admin);
    let (status, created) = api.post_json("/v1/keys", json!({ "name": "kiosk", "scopes": ["search"] }));
    assert_eq!(status, 201, "{created}");
    let (revoked_id, revoked) = (created["id"].as_str().expect("id"), created["secret"].as_str().expect("secret"));
    let revoked = Api::new(&server, revoked);
    assert_eq!(revoked.get("/v1/collections").0, 200);
    assert_eq!(delete(&api, &format!("/v1/keys/{revoked_id}")), 204);
    let answers: Vec<u16> = (0..25).map(|_| revoked.get("/v1/collections").0).collect();
    assert!(answers[..20].iter().all(|s| *s == 401), "{answers:?}");
    assert!(answers[20..].iter().all(|s| *s == 429), "a revoked key used again and again is throttled: {answers:?}");
    // Its failures are its own: the admin key and a key never used before still get in.
    assert_eq!(api.get("/v1/collections").0, 200);
    let (status, created) = api.post_json("/v1/keys", json!({ "name": "new", "scopes": ["search"] }));
    assert_eq!(status, 201);
    assert_eq!(Api::new(&server, created["secret"].as_str().expect("secret")).get("/v1/collections").0, 200);
    // Key changes are in the configuration trail, naming no secret.
    let (_, trail) = api.get("/v1/changes");
    let actions: Vec<&str> =
        trail["changes"].as_array().expect("changes").iter().filter_map(|c| c["action"].as_str()).collect();
    assert_eq!(actions, ["key.created", "key.created", "key.revoked", "key.created"], "{trail}");
    assert_eq!(trail["changes"][0]["key_id"], json!("cli"), "the first key came from the command line: {trail}");
    assert!(!trail.to_string().contains("fgk_"), "{trail}");
}

#[test]
fn answers_are_neither_cached_nor_sniffed_and_bounds_keep_their_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let response = api
        .http
        .post(format!("{}/v1/keys", server.url))
        .header("x-api-key", &key)
        .json(&json!({ "name": "door", "scopes": ["search"] }))
        .send()
        .expect("create key");
    assert_eq!(response.status().as_u16(), 201);
    for (name, value) in [("cache-control", "no-store"), ("x-content-type-options", "nosniff")] {
        assert_eq!(response.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    let error = api.http.get(format!("{}/v1/nothing", server.url)).send().expect("404");
    assert_eq!(error.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let console = api.http.get(format!("{}/console/no-such-file.js", server.url)).send().expect("console 404");
    assert_eq!(console.status().as_u16(), 404);
    let body: Value = console.json().expect("an envelope");
    assert_eq!(body["error"]["code"], json!("not_found"), "{body}");

    // Too many header fields: 431 in the envelope, not a bare status.
    let mut request = api.http.get(format!("{}/v1/collections", server.url)).header("x-api-key", &key);
    for i in 0..150 {
        request = request.header(format!("x-h{i}"), "v");
    }
    let response = request.send().expect("many headers");
    assert_eq!(response.status().as_u16(), 431);
    let body: Value = response.json().expect("an envelope");
    assert_eq!(body["error"]["code"], json!("headers_too_large"), "{body}");

    // A BMP header claiming 100000² pixels is too large, like any other format's.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[54, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0]);
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&100_000i32.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0]);
    bmp.extend_from_slice(&[0; 24]);
    let (status, body) = api.post_image("/v1/detect", bmp, "image/bmp");
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("image_too_large")), "{body}");

    // A spreadsheet never runs a subject's name from the attendance sheet.
    let (office, ann, door) = office(&api);
    let formula = "=HYPERLINK(\"http://x.example\",\"y\")";
    let renamed = api.patch_json(&format!("/v1/collections/{office}/subjects/{ann}"), json!({ "name": formula }));
    assert_eq!(renamed.0, 200, "{renamed:?}");
    assert_eq!(api.post_images(&format!("/v1/doors/{door}/attempts"), vec![nuaa(ANN)]).1["access"], json!("granted"));
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    let (status, _, csv) =
        api.get_text(&format!("/v1/collections/{office}/attendance?from={today}&to={today}&format=csv"));
    assert_eq!(status, 200, "{csv}");
    assert!(csv.contains(&format!(",\"'{}\",", formula.replace('"', "\"\""))), "{csv}");
}
