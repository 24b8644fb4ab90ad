//! The API through a real `facegate serve` process over HTTP, on the real models, store and photos.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Api, PEOPLE, Server, client, create_key, enrol_hamilton, enrol_people, facegate, main_face, read};
use facegate_testing::walkby::{Walk, walk_by_video};
use facegate_testing::{lfw_image, photo};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

#[test]
fn enrolled_people_are_recognised_and_strangers_are_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let collection = api.collection("front-door");
    let subjects = enrol_people(&api, &collection);

    for (person, subject) in PEOPLE.iter().zip(&subjects) {
        for n in [10, 11] {
            let (status, body) = api.recognize(&collection, &lfw_image(person, n));
            assert_eq!(status, 200, "{body}");
            let face = main_face(&body);
            assert_eq!(face["result"], "match", "{person} {n}: {body}");
            assert_eq!(face["subject"]["id"], subject.as_str());
            assert_eq!(face["subject"]["name"], *person);
            assert!(face["score"].as_f64().expect("score") >= body["threshold"].as_f64().expect("threshold"));
        }
    }
    for (stranger, n) in [("Serena_Williams", 1), ("Hugo_Chavez", 2), ("Gerhard_Schroeder", 1)] {
        let (status, body) = api.recognize(&collection, &lfw_image(stranger, n));
        assert_eq!(status, 200);
        let face = main_face(&body);
        assert_eq!(face["result"], "unknown", "{stranger}: {body}");
        assert!(face["subject"].is_null());
    }

    // 1:1 verify, search, compare, detect.
    let (status, body) = api.post_image(
        &format!("/v1/collections/{collection}/subjects/{}/verify", subjects[1]),
        read(&lfw_image("Colin_Powell", 20)),
        "image/jpeg",
    );
    assert_eq!((status, body["same_person"].clone()), (200, json!(true)), "{body}");
    let (status, body) = api.post_image(
        &format!("/v1/collections/{collection}/subjects/{}/verify", subjects[1]),
        read(&lfw_image("Tony_Blair", 20)),
        "image/jpeg",
    );
    assert_eq!((status, body["same_person"].clone()), (200, json!(false)), "{body}");
    let (status, body) = api.post_image(
        &format!("/v1/collections/{collection}/search?top_k=3"),
        read(&lfw_image("Tony_Blair", 30)),
        "image/jpeg",
    );
    assert_eq!(status, 200);
    assert_eq!(body["candidates"].as_array().expect("candidates").len(), 3);
    assert_eq!(body["candidates"][0]["subject_id"], subjects[2].as_str());
    use base64::Engine;
    let b64 = |p: PathBuf| base64::engine::general_purpose::STANDARD.encode(read(&p));
    let (status, body) = api.post_json(
        "/v1/compare",
        json!({ "a": { "image": b64(lfw_image("Colin_Powell", 1)) }, "b": { "image": b64(lfw_image("Colin_Powell", 2)) } }),
    );
    assert_eq!((status, body["same_person"].clone()), (200, json!(true)), "{body}");
    let (status, body) = api.post_image("/v1/detect", read(&photo("group_t1.jpg")), "image/jpeg");
    assert_eq!((status, body["faces"].as_array().map(Vec::len)), (200, Some(6)));

    // The audit trail holds every decision, and `since` pages through it.
    let (status, body) = api.get(&format!("/v1/collections/{collection}/events"));
    assert_eq!(status, 200);
    let events = body["events"].as_array().expect("events");
    let recognitions = events.iter().filter(|e| e["action"] == "recognize").count();
    assert!(recognitions >= 9, "one event per face of the 9 recognitions: {recognitions}");
    assert!(events.iter().any(|e| e["action"] == "recognize" && e["result"] == "unknown"));
    assert!(events.iter().all(|e| e["key_id"].is_string() && e["at_ms"].is_i64()));
    let since = events[2]["at_ms"].as_i64().expect("time");
    let (_, later) = api.get(&format!("/v1/collections/{collection}/events?since={since}"));
    assert!(later["events"].as_array().expect("events").iter().all(|e| e["at_ms"].as_i64() > Some(since)));
    let (_, first_page) = api.get(&format!("/v1/collections/{collection}/events?limit=4"));
    let after = first_page["next_after"].as_i64().expect("cursor");
    let (_, rest) = api.get(&format!("/v1/collections/{collection}/events?after={after}"));
    let paged: Vec<&Value> =
        first_page["events"].as_array().expect("page").iter().chain(rest["events"].as_array().expect("rest")).collect();
    assert_eq!(paged.len(), events.len(), "paging with `after` returns every event once");

    // Erasure: the subject's templates are gone and the receipt says so.
    let response = api
        .http
        .delete(format!("{}/v1/collections/{collection}/subjects/{}", api.url, subjects[0]))
        .header("x-api-key", &key)
        .send()
        .expect("delete");
    assert_eq!(response.status().as_u16(), 200);
    let receipt: Value = response.json().expect("receipt");
    assert_eq!(receipt["erasure"]["templates_erased"], 3);
    assert_eq!(receipt["receipt_sha256"].as_str().map(str::len), Some(64));
    let (_, body) = api.recognize(&collection, &lfw_image("George_W_Bush", 10));
    assert_eq!(main_face(&body)["result"], "unknown", "erased person is no longer recognised");

    // OpenAPI and metrics are served.
    let openapi: Value =
        api.http.get(format!("{}/v1/openapi.json", api.url)).send().expect("openapi").json().expect("json");
    assert!(openapi["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(openapi["paths"]["/v1/recognize"]["post"].is_object());
    let metrics = api.http.get(format!("{}/metrics", api.url)).send().expect("metrics").text().expect("text");
    assert!(metrics.contains("facegate_http_requests_total") && metrics.contains("stage=\"embed\""), "{metrics}");
    assert!(!metrics.contains("facegate_gallery_templates"), "no gallery figures without a key: {metrics}");
    let scraped = api.http.get(format!("{}/metrics", api.url)).header("x-api-key", &api.key).send().expect("metrics");
    assert!(scraped.text().expect("text").contains("facegate_gallery_templates"), "an admin sees its tenant's");
}

#[test]
fn keys_scopes_and_tenants_are_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = create_key(dir.path(), "acme", "admin");
    let detect_only = create_key(dir.path(), "acme", "detect");
    let other_tenant = create_key(dir.path(), "globex", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &admin);
    let collection = api.collection("staff");

    let anonymous = client()
        .post(format!("{}/v1/recognize?collection={collection}", server.url))
        .body(read(&lfw_image("Tony_Blair", 1)))
        .send()
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().expect("envelope");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    let (status, body) = Api::new(&server, "fgk_not-a-real-key").get("/v1/collections");
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthorized")));

    let limited = Api::new(&server, &detect_only);
    let (status, body) = limited.recognize(&collection, &lfw_image("Tony_Blair", 1));
    assert_eq!((status, body["error"]["code"].clone()), (403, json!("forbidden")));
    let (status, _) = limited.post_image("/v1/detect", read(&lfw_image("Tony_Blair", 1)), "image/jpeg");
    assert_eq!(status, 200, "detect scope may detect");

    let outsider = Api::new(&server, &other_tenant);
    let (status, body) = outsider.get(&format!("/v1/collections/{collection}"));
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("not_found")));
    let (status, _) = outsider.recognize(&collection, &lfw_image("Tony_Blair", 1));
    assert_eq!(status, 404);
    let (_, listed) = outsider.get("/v1/collections");
    assert_eq!(listed["collections"].as_array().map(Vec::len), Some(0));

    // A revoked key stops working at once.
    let list = facegate().args(["keys", "list", "--data-dir"]).arg(dir.path()).output().expect("list");
    let listing = String::from_utf8_lossy(&list.stdout);
    let detect_id = listing
        .lines()
        .find(|l| l.contains(" detect "))
        .and_then(|l| l.split_whitespace().next())
        .expect("detect key listed")
        .to_string();
    assert!(!listing.contains(&detect_only), "secrets are never listed");
    let revoked =
        facegate().args(["keys", "revoke", &detect_id, "--data-dir"]).arg(dir.path()).output().expect("revoke");
    assert!(revoked.status.success());
    let (status, _) = limited.post_image("/v1/detect", read(&lfw_image("Tony_Blair", 1)), "image/jpeg");
    assert_eq!(status, 401);
}

#[test]
fn each_key_is_rate_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let other = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &["--rate-limit", "2"]);
    let api = Api::new(&server, &key);
    let statuses: Vec<u16> = (0..12).map(|_| api.get("/v1/collections").0).collect();
    assert!(statuses.contains(&200) && statuses.contains(&429), "{statuses:?}");
    let (status, body) = api.get("/v1/collections");
    if status == 429 {
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    assert_eq!(Api::new(&server, &other).get("/v1/collections").0, 200, "another key has its own budget");
}

#[test]
fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key_file)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut child = facegate()
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key_file)
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address");
    let url = line.split_whitespace().find(|w| w.starts_with("https://")).expect("https address").to_string();
    let fetched = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(format!("{url}/v1/health"))
        .output()
        .expect("curl runs");
    let _ = child.kill();
    let _ = child.wait();
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let health: Value = serde_json::from_slice(&fetched.stdout).expect("json");
    assert_eq!(health["status"], "ok");
}

#[test]
fn bad_input_gets_its_4xx_code_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &["--max-body-bytes", "400000"]);
    let api = Api::new(&server, &key);
    let collection = api.collection("lab");
    let subject = api.subject(&collection, "Colin");
    let (status, _) = api.enroll(&collection, &subject, &[lfw_image("Colin_Powell", 1)]);
    assert_eq!(status, 201);
    let faces_path = format!("/v1/collections/{collection}/subjects/{subject}/faces");

    let jpeg = read(&lfw_image("Colin_Powell", 2));
    let mut blank = Vec::new();
    image::DynamicImage::new_rgb8(300, 300)
        .write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Png)
        .expect("png");
    let blurred = {
        let sharp = image::load_from_memory(&jpeg).expect("decode");
        let mut out = Vec::new();
        sharp.blur(4.0).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).expect("png");
        out
    };
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("empty body", Vec::new(), "image/jpeg", 422, "empty_image"),
        ("text", b"just some text, no pixels".to_vec(), "image/jpeg", 422, "unsupported_image"),
        ("truncated jpeg", jpeg[..jpeg.len() / 2].to_vec(), "image/jpeg", 422, "invalid_image"),
        ("too large", vec![0u8; 500_000], "image/jpeg", 413, "payload_too_large"),
        ("no face", blank, "image/png", 422, "no_face"),
        ("two people", read(&photo("sample2.jpg")), "image/jpeg", 422, "multiple_faces"),
        ("blurred", blurred, "image/png", 422, "low_quality"),
        ("wrong content type", jpeg.clone(), "text/plain", 415, "unsupported_media_type"),
        ("bad json", b"{not json".to_vec(), "application/json", 400, "invalid_request"),
    ];
    for (what, body, content_type, status, code) in cases {
        let (got, envelope) = api.post_image(&faces_path, body, content_type);
        assert_eq!((got, envelope["error"]["code"].as_str()), (status, Some(code)), "{what}: {envelope}");
        assert!(envelope["request_id"].is_string(), "{what}");
        assert_eq!(api.face_count(&collection, &subject), 1, "{what} changed the gallery");
    }
    let (status, body) =
        api.post_image(&format!("/v1/recognize?collection={collection}"), b"garbage".to_vec(), "image/jpeg");
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("unsupported_image")));
    let (status, body) = api.post_image("/v1/recognize?collection=no-such-collection", jpeg.clone(), "image/jpeg");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) = api.post_image("/v1/recognize", jpeg.clone(), "image/jpeg");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, body) = api.post_json("/v1/collections", json!({ "name": "lab" }));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, body) = api.post_json("/v1/collections", json!({ "name": "x", "target_fmr": 1e-12 }));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("fmr_out_of_range")));
    let (status, body) = api.get("/v1/no-such-endpoint");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    // A mixed batch stores the good image and reports the bad one.
    let (status, body) =
        api.enroll_with(&collection, &subject, &[lfw_image("Colin_Powell", 3), photo("sample2.jpg")], "face=only");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["rejected"][0]["reason"], "multiple_faces");
    assert_eq!(api.face_count(&collection, &subject), 2);
    let (_, body) = api.recognize(&collection, &lfw_image("Colin_Powell", 10));
    assert_eq!(main_face(&body)["result"], "match", "the gallery still works: {body}");
}

#[test]
fn acknowledged_enrolments_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let mut server = Server::start(dir.path(), &["--workers", "2"]);
    let api = Api::new(&server, &key);
    let collection = api.collection("burst");
    let subjects: Vec<String> = (0..4).map(|i| api.subject(&collection, &format!("person-{i}"))).collect();
    let acknowledged = Arc::new(Mutex::new(Vec::<Vec<(String, String)>>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let (api, subject, acknowledged, stop) =
                (Api::new(&server, &key), subject.clone(), acknowledged.clone(), stop.clone());
            let collection = collection.clone();
            let person = PEOPLE[i % PEOPLE.len()];
            std::thread::spawn(move || {
                let mut n = 1;
                while !stop.load(Ordering::Relaxed) && n < 60 {
                    let images = [lfw_image(person, n), lfw_image(person, n + 1)];
                    n += 2;
                    let mut form = multipart::Form::new();
                    for (j, image) in images.iter().enumerate() {
                        form = form.part(format!("f{j}"), multipart::Part::bytes(read(image)).file_name("x.jpg"));
                    }
                    let sent = api
                        .http
                        .post(format!("{}/v1/collections/{collection}/subjects/{subject}/faces?face=largest", api.url))
                        .header("x-api-key", &api.key)
                        .multipart(form)
                        .send();
                    let Ok(response) = sent else { break };
                    if response.status().as_u16() != 201 {
                        continue;
                    }
                    let Ok(body) = response.json::<Value>() else { break };
                    let request: Vec<(String, String)> = body["accepted"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|face| (subject.clone(), face["face_id"].as_str().unwrap_or_default().to_string()))
                        .collect();
                    acknowledged.lock().expect("lock").push(request);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 4, "the burst got some enrolments in: {}", acknowledged.len());
    let acknowledged_faces: Vec<(String, String)> = acknowledged.iter().flatten().cloned().collect();

    let restarted = Server::start(dir.path(), &[]);
    let api = Api::new(&restarted, &key);
    let mut stored = Vec::new();
    for subject in &subjects {
        let (status, body) = api.get(&format!("/v1/collections/{collection}/subjects/{subject}/faces"));
        assert_eq!(status, 200);
        let faces = body["faces"].as_array().expect("faces");
        stored.extend(faces.iter().map(|f| (subject.clone(), f["id"].as_str().unwrap_or_default().to_string())));
    }
    for request in &acknowledged {
        for face in request {
            assert!(stored.contains(face), "acknowledged face {face:?} lost");
        }
    }
    let unacknowledged = stored.iter().filter(|f| !acknowledged_faces.contains(f)).count();
    assert!(unacknowledged <= 2 * subjects.len(), "only requests in flight at the kill may have landed unacknowledged");
    // Every stored template decrypts and searches: recognition over the whole gallery works.
    let (status, body) = api.recognize(&collection, &lfw_image("Colin_Powell", 100));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["gallery_size"].as_u64(), Some(stored.len() as u64));
    assert_eq!(main_face(&body)["result"], "match");
}

#[test]
fn fifty_concurrent_recognitions_all_answer_correctly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &["--workers", "2"]);
    let api = Api::new(&server, &key);
    let collection = api.collection("lobby");
    let subjects = enrol_people(&api, &collection);
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let api = Api::new(&server, &key);
            let (collection, expected) = (collection.clone(), subjects[i % 3].clone());
            let image = lfw_image(PEOPLE[i % 3], 10 + (i / 3) as u32);
            std::thread::spawn(move || {
                let (status, body) = api.recognize(&collection, &image);
                (status, main_face(&body)["subject"]["id"].as_str().map(str::to_string), expected)
            })
        })
        .collect();
    for thread in threads {
        let (status, got, expected) = thread.join().expect("thread");
        assert_eq!(status, 200);
        assert_eq!(got.as_deref(), Some(expected.as_str()));
    }
}

#[test]
fn a_trained_pack_serves_its_own_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = facegate_testing::lfw_ten_people_dataset(dir.path());
    let run = dir.path().join("run");
    let output = facegate()
        .arg("train")
        .arg(&dataset)
        .args(["--mode", "embedding", "--epochs", "2", "--pack-name", "lfw10", "--out"])
        .arg(&run)
        .args(["--cache"])
        .arg(dir.path().join("cache"))
        .output()
        .expect("train runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "admin");
    let packs = format!("{},{}", facegate_core::DEFAULT_PACK, run.join("pack").display());
    let server = Server::start(&data, &["--packs", &packs]);
    let api = Api::new(&server, &key);
    let (status, models) = api.get("/v1/models");
    assert_eq!(status, 200);
    let adapted = models["packs"].as_array().expect("packs").iter().find(|p| p["name"] == "lfw10").cloned();
    let adapted = adapted.unwrap_or_else(|| panic!("trained pack served: {models}"));
    assert_eq!(adapted["head"]["output_size"], 256, "the head keeps the default pack's template length");
    // Each pack says which runtime its embedder runs on and how that was chosen (`auto` by default).
    for pack in models["packs"].as_array().expect("packs") {
        let runtime = &pack["embedder_runtime"];
        assert_eq!(runtime["asked"], "auto", "{pack}");
        let backend = runtime["backend"].as_str().expect("backend");
        assert!(["onnxruntime", "openvino"].contains(&backend), "{runtime}");
        if !facegate_core::cpu_has_bf16() {
            assert_eq!((backend, runtime["chosen_by"].as_str()), ("onnxruntime", Some("only_candidate")), "{runtime}");
        }
    }
    assert!(!adapted["calibration"].as_array().expect("calibration").is_empty());

    // Its calibration comes from a handful of held-out people, so it covers the loose FMRs only.
    let fmr = adapted["calibration"][0]["fmr"].as_f64().expect("fmr");
    let (status, body) =
        api.post_json("/v1/collections", json!({ "name": "adapted", "pack": "lfw10", "target_fmr": fmr }));
    assert_eq!(status, 201, "{body}");
    let collection = body["id"].as_str().expect("id").to_string();
    let subjects = enrol_people(&api, &collection);
    for (person, subject) in PEOPLE.iter().zip(&subjects) {
        let (status, body) = api.recognize(&collection, &lfw_image(person, 12));
        assert_eq!(status, 200, "{body}");
        let face = main_face(&body);
        assert_eq!(face["result"], "match", "{person}: {body}");
        assert_eq!(face["subject"]["id"], subject.as_str());
    }
    let (status, body) =
        api.post_json("/v1/collections", json!({ "name": "strict", "pack": "lfw10", "target_fmr": 1e-6 }));
    assert_eq!(status / 100, 4, "an FMR the pack was not calibrated for is refused: {body}");
}

/// Where openapi-python-client is: `FACEGATE_OPENAPI_PYTHON_CLIENT`, else on the PATH (scripts/test.sh
/// installs it from PyPI).
fn openapi_python_client() -> PathBuf {
    std::env::var_os("FACEGATE_OPENAPI_PYTHON_CLIENT")
        .map_or_else(|| PathBuf::from("openapi-python-client"), PathBuf::from)
}

#[test]
fn a_client_generated_from_the_document_enrols_and_recognises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let document =
        client().get(format!("{}/v1/openapi.json", server.url)).send().expect("document").bytes().expect("body");
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, &document).expect("write document");
    let package = dir.path().join("generated");
    let generated = Command::new(openapi_python_client())
        .args([
            "generate",
            "--meta",
            "none",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi-python-client.yaml"),
        ])
        .arg("--path")
        .arg(&spec)
        .arg("--output-path")
        .arg(package.join("facegate_client"))
        .output()
        .expect("openapi-python-client runs (scripts/test.sh installs it from PyPI)");
    let log = String::from_utf8_lossy(&generated.stdout).to_string() + &String::from_utf8_lossy(&generated.stderr);
    assert!(generated.status.success(), "generation failed:\n{log}");
    assert!(!log.contains("Warning"), "the generator understood the whole document:\n{log}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated_client.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(&server.url)
        .arg(&key)
        .args([lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 10), lfw_image("Serena_Williams", 1)])
        .env("PYTHONPATH", &package)
        .output()
        .expect("python3 runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the generated client failed:\n{out}\n{}", String::from_utf8_lossy(&run.stderr));
    let result: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(result["accepted"], 1, "{result}");
    let same = result["same"].as_array().expect("faces");
    assert!(
        same.iter()
            .any(|f| f["result"] == "match" && f["subject_id"] == result["subject_id"] && f["name"] == "Colin Powell"),
        "the enrolled person is recognised through the generated client: {result}"
    );
    let stranger = result["stranger"].as_array().expect("faces");
    assert!(!stranger.is_empty() && stranger.iter().all(|f| f["result"] == "unknown"), "{result}");
}

#[test]
fn liveness_is_scored_when_asked_on_detect_recognize_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let sample = |name: &str| facegate_testing::shared_dir().join("data/liveness/minivision").join(name);
    let live = |body: &Value| main_face(body)["liveness"]["live"].clone();
    for (name, expected) in [("image_T1.jpg", true), ("image_F1.jpg", false), ("image_F2.jpg", false)] {
        let (status, body) = api.post_image("/v1/detect?liveness=true", read(&sample(name)), "image/jpeg");
        assert_eq!(status, 200, "{body}");
        assert_eq!(live(&body), json!(expected), "{name}: {body}");
        assert!(
            main_face(&body)["liveness"]["score"].as_f64().is_some()
                && main_face(&body)["liveness"]["threshold"] == 0.5
        );
    }
    let (_, plain) = api.post_image("/v1/detect", read(&sample("image_T1.jpg")), "image/jpeg");
    assert!(main_face(&plain).get("liveness").is_none(), "only when asked: {plain}");

    let collection = api.collection("door");
    let subject = api.subject(&collection, "T1");
    let (status, body) = api.enroll(&collection, &subject, &[sample("image_T1.jpg")]);
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.post_image(
        &format!("/v1/recognize?collection={collection}&liveness=true"),
        read(&sample("image_F1.jpg")),
        "image/jpeg",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(live(&body), json!(false), "a poster of the person is not live: {body}");
    let path = format!("/v1/collections/{collection}/subjects/{subject}/verify?liveness=true");
    let (status, body) = api.post_image(&path, read(&sample("image_T1.jpg")), "image/jpeg");
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["same_person"].clone(), body["liveness"]["live"].clone()), (json!(true), json!(true)), "{body}");
}

#[test]
fn cameras_are_resources_the_server_watches_with_their_logins_sealed() {
    use std::time::Instant;

    let dir = tempfile::tempdir().expect("tempdir");
    // The clip's people, enrolled by the command line into the server's store.
    let video = enrol_hamilton(dir.path());
    let (key, reader, other_key) = (
        create_key(dir.path(), "acme", "admin"),
        create_key(dir.path(), "acme", "search"),
        create_key(dir.path(), "globex", "admin"),
    );
    // A camera on loopback that wants a login, serving the clip in a loop in real time.
    let (user, password) = ("operator", "s3cret-Pa55");
    let camera = facegate_testing::rtsp::RtspServer::start_with_login(
        &video.join("short_hamilton_clip.mp4"),
        0,
        Some((user, password)),
    );
    let server = Server::start_with(dir.path(), &[], Stdio::inherit(), &[("FACEGATE_CAMERA_POLL", "1")]);
    let (api, reader, other) = (Api::new(&server, &key), Api::new(&server, &reader), Api::new(&server, &other_key));
    let (status, body) = api.get("/v1/collections");
    assert_eq!(status, 200, "{body}");
    let collection = body["collections"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "hamilton"))
        .and_then(|c| c["id"].as_str())
        .expect("the enrolled collection")
        .to_string();
    let source_url = format!("rtsp://{user}:{password}@127.0.0.1:{}/clip", camera.port());
    let camera_body = |source: &str| {
        json!({ "name": "lobby", "collection_id": collection, "source_url": source,
                "settings": { "detections_per_second": 10 } })
    };

    // Refused: a source outside where this server may dial (tests: loopback only), not RTSP, none at
    // all, a key without the admin scope, another tenant's collection, a setting out of range.
    for source in ["rtsp://10.1.2.3/stream", "rtsp://169.254.169.254/latest", "http://127.0.0.1/clip", "clip"] {
        let (status, body) = api.post_json("/v1/cameras", camera_body(source));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{source}: {body}");
    }
    let (status, body) = api.post_json("/v1/cameras", json!({ "name": "lobby", "collection_id": collection }));
    assert_eq!(status, 400, "{body}");
    assert_eq!(reader.post_json("/v1/cameras", camera_body(&source_url)).0, 403);
    assert_eq!(reader.get("/v1/cameras").0, 403, "camera sources are the admin's");
    assert_eq!(other.post_json("/v1/cameras", camera_body(&source_url)).0, 404, "another tenant's collection");
    let mut fast = camera_body(&source_url);
    fast["settings"]["detections_per_second"] = json!(500);
    let (status, body) = api.post_json("/v1/cameras", fast);
    assert!(status == 400 && body["error"]["message"].as_str().unwrap_or_default().contains("detections_per_second"));

    // Created: the login is sealed, never shown, and not in the store's file.
    let (status, created) = api.post_json("/v1/cameras", camera_body(&source_url));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["source"], format!("rtsp://127.0.0.1:{}/clip", camera.port()));
    assert_eq!(created["settings"]["enabled"], true, "enabled by default");
    let (status, again) = api.post_json("/v1/cameras", camera_body(&source_url));
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("conflict")), "names are unique");
    let (_, listed) = api.get("/v1/cameras");
    let (_, changes) = api.get("/v1/changes");
    for shown in [&created, &listed, &changes] {
        assert!(!shown.to_string().contains(password) && !shown.to_string().contains(user), "{shown}");
    }
    assert!(changes.to_string().contains("camera.created"), "{changes}");
    assert_eq!(other.get(&format!("/v1/cameras/{id}")).0, 404, "another tenant's camera");
    assert_eq!(other.get("/v1/cameras").1["cameras"], json!([]));
    for file in ["gallery.db", "gallery.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{file} holds the password");
    }

    // The server watches it (logging in): the clip's people become sightings of the collection.
    let sightings = |api: &Api| {
        let (status, body) = api.get(&format!("/v1/collections/{collection}/sightings?limit=1000"));
        assert_eq!(status, 200, "{body}");
        body["sightings"].as_array().expect("sightings").clone()
    };
    let named = |all: &[Value]| -> Vec<String> {
        all.iter().filter_map(|s| s["subject_name"].as_str().map(str::to_string)).collect()
    };
    // The event stream tells the tenant's administrator what the camera sees as it happens, and another
    // tenant nothing of it.
    let listen = |key: &str, seconds: u64| {
        let (url, key) = (format!("{}/v1/events/stream", server.url), key.to_string());
        std::thread::spawn(move || {
            // The server comments every 15 s while nothing happens, so a line comes within 30 s.
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
            let response = http.get(url).header("x-api-key", key).send().expect("the stream opens");
            let (status, mut names) = (response.status().as_u16(), Vec::new());
            let until = Instant::now() + Duration::from_secs(seconds);
            for line in BufReader::new(response).lines().map_while(Result::ok) {
                if Instant::now() > until {
                    break;
                }
                if let Some(name) = line.strip_prefix("event: ") {
                    names.push(name.to_string());
                    if name == "identity.sighted" {
                        break;
                    }
                }
            }
            (status, names)
        })
    };
    let (ours, theirs) = (listen(&key, 60), listen(&other_key, 20));
    // Two passes of the clip: Obama appears once in each.
    let started = Instant::now();
    let seen = loop {
        let all = sightings(&api);
        let names = named(&all);
        if names.iter().filter(|n| *n == "barack_obama").count() >= 2 && names.iter().any(|n| n == "lin_manuel_miranda")
        {
            break all;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no sightings of the clip's people: {all:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(seen.iter().all(|s| s["camera"] == "lobby"), "{seen:?}");
    let (status, streamed) = ours.join().expect("listener");
    assert_eq!(status, 200);
    assert!(
        streamed.contains(&"face.track.started".to_string())
            && streamed.last().is_some_and(|n| n == "identity.sighted"),
        "{streamed:?}"
    );
    assert_eq!(theirs.join().expect("listener"), (200, Vec::new()), "another tenant hears nothing of this camera");
    let names = named(&seen);
    assert!(names.iter().all(|n| n == "barack_obama" || n == "lin_manuel_miranda"), "nobody else named: {names:?}");
    // Presence folds the passes: within the default 60 s window each person was present once; with no
    // window, Obama's two tracks (about 8 s apart) are two presences.
    let presences = |query: &str| {
        let (status, body) = api.get(&format!("/v1/collections/{collection}/presence?camera=lobby{query}"));
        assert_eq!(status, 200, "{body}");
        body["presences"].as_array().expect("presences").clone()
    };
    let of =
        |all: &[Value], who: &str| -> Vec<Value> { all.iter().filter(|p| p["subject_name"] == who).cloned().collect() };
    let folded = presences("");
    let obama = of(&folded, "barack_obama");
    assert_eq!(obama.len(), 1, "{folded:?}");
    assert!(obama[0]["sightings"].as_u64().unwrap_or(0) >= 2, "{folded:?}");
    assert_eq!(of(&folded, "lin_manuel_miranda").len(), 1, "{folded:?}");
    assert!(of(&presences("&window_s=0"), "barack_obama").len() >= 2, "no window, no folding");
    assert_eq!(api.get(&format!("/v1/collections/{collection}/presence?window_s=100000")).0, 400);
    assert_eq!(
        reader.get(&format!("/v1/collections/{collection}/presence")).0,
        403,
        "where people were is the admin's"
    );

    // Disabled (its source kept), it stops: no sighting is added once its last tracks are recorded.
    let mut off = camera_body(&source_url);
    off["settings"]["enabled"] = json!(false);
    off.as_object_mut().expect("object").remove("source_url");
    let (status, replaced) = api.put_json(&format!("/v1/cameras/{id}"), off);
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["source"].clone(), replaced["settings"]["enabled"].clone()),
        (created["source"].clone(), json!(false))
    );
    std::thread::sleep(Duration::from_secs(4));
    let stopped = sightings(&api).len();
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(sightings(&api).len(), stopped, "a disabled camera is not watched");

    let (_, changes) = api.get("/v1/changes");
    assert!(changes.to_string().contains("camera.replaced"), "{changes}");
    let deleted = api.http.delete(format!("{}/v1/cameras/{id}", api.url)).header("x-api-key", &api.key).send();
    assert_eq!(deleted.expect("delete").status().as_u16(), 204);
    assert_eq!(api.get(&format!("/v1/cameras/{id}")).0, 404);
    assert_eq!(sightings(&api).len(), stopped, "its sightings stay");
}

#[test]
fn an_uploaded_video_is_watched_as_the_command_line_watches_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let video = enrol_hamilton(dir.path());
    let clip = video.join("short_hamilton_clip.mp4");
    let gallery = ["--collection", "hamilton", "--tenant", "acme", "--data-dir"];
    // The command line's events for the file, to compare with the server's.
    let watched =
        facegate().arg("watch").arg(&clip).arg("--json").args(gallery).arg(dir.path()).output().expect("watch");
    assert!(watched.status.success(), "{}", String::from_utf8_lossy(&watched.stderr));
    let by_cli: Vec<Value> =
        String::from_utf8_lossy(&watched.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let (key, enroller, admin) = (
        create_key(dir.path(), "acme", "search"),
        create_key(dir.path(), "acme", "enroll"),
        create_key(dir.path(), "acme", "admin"),
    );
    let server = Server::start(dir.path(), &[]);
    let (api, enroller, admin) = (Api::new(&server, &key), Api::new(&server, &enroller), Api::new(&server, &admin));
    let (_, body) = api.get("/v1/collections");
    let collection = body["collections"][0]["id"].as_str().expect("the enrolled collection").to_string();
    let path = format!("/v1/collections/{collection}/videos?camera=uploaded");

    let (status, seen) = api.post_image(&path, read(&clip), "video/mp4");
    assert_eq!(status, 200, "{seen}");
    assert_eq!((seen["width"].as_u64(), seen["height"].as_u64()), (Some(640), Some(360)), "{seen}");
    assert!(seen["duration_s"].as_f64().expect("duration") > 9.0, "{seen}");
    let events = seen["events"].as_array().expect("events");
    // The same tracks, decisions and times as `facegate watch FILE --json` (wall times aside).
    let shape = |e: &Value| {
        (
            e["type"].clone(),
            e["track_id"].clone(),
            e["stream_time_s"].clone(),
            e["subject"]["name"].clone(),
            e["decision"].clone(),
        )
    };
    assert_eq!(events.iter().map(shape).collect::<Vec<_>>(), by_cli.iter().map(shape).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["camera"] == "uploaded"));
    let named: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "identity.sighted")
        .filter_map(|e| e["subject"]["name"].as_str())
        .collect();
    assert_eq!(named, ["lin_manuel_miranda", "lin_manuel_miranda", "barack_obama"]);
    // Kept as the collection's sightings, under the name given (read by an administrator).
    let (status, body) = admin.get(&format!("/v1/collections/{collection}/sightings?camera=uploaded"));
    assert_eq!(status, 200, "{body}");
    let ended = events.iter().filter(|e| e["type"] == "face.track.ended" && e["decision"] != "too_small").count();
    assert_eq!(body["sightings"].as_array().expect("sightings").len(), ended, "{body}");

    // Refused with a clear 4xx: not a video, a photo sent as one, a key without the search scope, a
    // missing collection, a rate out of range.
    let (status, body) = api.post_image(&path, read(&photo("sample1.jpg")), "video/mp4");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = api.post_image(&path, b"\x1aE\xdf\xa3 not really matroska".to_vec(), "video/x-matroska");
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.post_image(&path, read(&clip), "image/jpeg");
    assert_eq!((status, body["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{body}");
    assert_eq!(enroller.post_image(&path, read(&clip), "video/mp4").0, 403);
    let missing = "/v1/collections/00000000-0000-4000-8000-000000000000/videos";
    assert_eq!(api.post_image(missing, read(&clip), "video/mp4").0, 404);
    let (status, body) = api.post_image(&format!("{path}&fps=100"), read(&clip), "video/mp4");
    assert_eq!(status, 400, "{body}");
}

#[test]
fn unknown_faces_are_grouped_across_runs_named_searched_and_told_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let video = enrol_hamilton(dir.path());
    let clip = read(&video.join("short_hamilton_clip.mp4"));
    let (admin, searcher) = (create_key(dir.path(), "acme", "admin"), create_key(dir.path(), "acme", "search"));
    let server = Server::start(dir.path(), &[]);
    let (api, searcher) = (Api::new(&server, &admin), Api::new(&server, &searcher));
    let (_, body) = api.get("/v1/collections");
    let c = body["collections"][0]["id"].as_str().expect("the enrolled collection").to_string();
    let watch = |camera: &str| {
        let (status, seen) =
            api.post_image(&format!("/v1/collections/{c}/videos?camera={camera}"), clip.clone(), "video/mp4");
        assert_eq!(status, 200, "{seen}");
        seen["events"].as_array().expect("events").clone()
    };
    let clusters = || {
        let (status, body) = api.get(&format!("/v1/collections/{c}/clusters"));
        assert_eq!(status, 200, "{body}");
        body["clusters"].as_array().expect("clusters").clone()
    };
    let sightings = |query: &str| {
        let (status, body) = api.get(&format!("/v1/collections/{c}/sightings{query}"));
        assert_eq!(status, 200, "{body}");
        body["sightings"].as_array().expect("sightings").clone()
    };
    let shot = |seq: &Value| {
        let response = api
            .http
            .get(format!("{}/v1/collections/{c}/sightings/{seq}/best-shot", api.url))
            .header("x-api-key", &api.key)
            .send()
            .expect("request");
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_string());
        (status, kind, response.bytes().expect("body").to_vec())
    };

    // The strangers of a first run are grouped; a second run from another camera finds the same groups.
    let first = watch("lobby");
    let unknown_ids = |events: &[Value]| -> Vec<u64> {
        let mut ids: Vec<u64> = events
            .iter()
            .filter(|e| e["type"] == "identity.unknown")
            .filter_map(|e| e["cluster_id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let groups = unknown_ids(&first);
    assert!(!groups.is_empty(), "the clip has strangers: {first:?}");
    assert_eq!(clusters().len(), groups.len());
    let second = watch("stage");
    assert_eq!(unknown_ids(&second), groups, "the same strangers join the same groups in a later run");
    let listed = clusters();
    assert_eq!(listed.len(), groups.len(), "{listed:?}");
    assert!(
        listed.iter().all(|g| g["cameras"] == json!(["lobby", "stage"])),
        "each group was seen by both cameras: {listed:?}"
    );
    assert!(
        listed.iter().all(|g| g["sightings"].as_u64() >= Some(2) && !g["shots"].as_array().expect("shots").is_empty())
    );

    // Every sighting keeps a best shot: a JPEG with the face on it.
    let all = sightings("");
    for seen in &all {
        let (status, kind, bytes) = shot(&seen["seq"]);
        assert_eq!((status, kind.as_deref()), (200, Some("image/jpeg")), "{seen}");
        let image = image::load_from_memory(&bytes).expect("a JPEG");
        assert!(image.width() >= 32 && image.width() <= 320 && image.height() <= 320, "{seen}");
    }
    assert_eq!(shot(&json!(999_999)).0, 404);

    // Search by photo: an enrolment photo of Obama finds his sightings (both runs) and nobody else's.
    let obama =
        std::fs::read_dir(video.join("known/barack_obama")).expect("dir").next().expect("a photo").expect("entry");
    let search = format!("/v1/collections/{c}/sightings/search");
    let (status, found) = api.post_image(&search, read(&obama.path()), "image/jpeg");
    assert_eq!(status, 200, "{found}");
    let names: Vec<&str> = found["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["subject_name"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(names, ["barack_obama", "barack_obama"], "{found}");
    assert!(found["matches"][0]["similarity"].as_f64() >= found["threshold"].as_f64(), "{found}");
    // A stranger's best shot finds that stranger's group, on both cameras.
    let group = &listed[0];
    let (_, _, stranger) = shot(&group["shots"][0]);
    let (status, found) = api.post_image(&search, stranger, "image/jpeg");
    assert_eq!(status, 200, "{found}");
    let matches = found["matches"].as_array().expect("matches");
    assert_eq!(matches[0]["cluster_id"], group["cluster_id"], "that stranger first: {found}");
    let of_group: Vec<&Value> = matches.iter().filter(|m| m["cluster_id"] == group["cluster_id"]).collect();
    assert_eq!(of_group.len() as u64, group["sightings"].as_u64().expect("n"), "all of the group's: {found}");
    let cameras: std::collections::BTreeSet<&str> = of_group.iter().filter_map(|m| m["camera"].as_str()).collect();
    assert_eq!(cameras.into_iter().collect::<Vec<_>>(), ["lobby", "stage"], "{found}");
    assert!(matches.iter().all(|m| m["decision"] == "unknown"), "no enrolled person: {found}");
    assert_eq!(searcher.post_image(&search, read(&obama.path()), "image/jpeg").0, 403, "where people were: admin");
    let mut blank = Vec::new();
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
        .write_to(&mut std::io::Cursor::new(&mut blank), image::ImageFormat::Jpeg)
        .expect("jpeg");
    let (status, body) = api.post_image(&search, blank, "image/jpeg");
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("no_face")), "{body}");

    // Naming a group. The clip's strangers are small and soft: the gate refuses their shots, yet the
    // sightings become the person's.
    let name = format!("/v1/collections/{c}/clusters/{}/name", group["cluster_id"]);
    let (status, body) = api.post_json(&name, json!({ "subject_id": "x", "name": "both" }));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, named) = api.post_json(&name, json!({ "name": "Small Stranger" }));
    assert_eq!(status, 200, "{named}");
    assert_eq!(named["sightings"], group["sightings"], "{named}");
    assert_eq!(named["accepted"], json!([]), "{named}");
    let reasons = named["rejected"].as_array().expect("rejected");
    assert!(!reasons.is_empty() && reasons.iter().all(|r| r["reason"] == "low_quality"), "{named}");
    let subject_id = named["subject"]["id"].as_str().expect("id").to_string();
    assert_eq!(sightings(&format!("?subject={subject_id}")).len() as u64, group["sightings"].as_u64().expect("n"));
    assert!(clusters().iter().all(|g| g["cluster_id"] != group["cluster_id"]), "no longer unknown");
    assert_eq!(api.post_json(&name, json!({ "name": "again" })).0, 404, "the group is named already");
    // A stranger walking up to the camera leaves sharp shots: naming their group enrols them, and the
    // next time they walk by they are named.
    let walk = |photo: u32, out: &std::path::Path| {
        let photo = image::open(lfw_image("Laura_Bush", photo)).expect("LFW").to_rgb8();
        let walks = [Walk {
            person: "Laura_Bush".into(),
            enrolled: false,
            photo,
            start_s: 0.3,
            from: (400.0, 300.0),
            to: (700.0, 380.0),
        }];
        walk_by_video(&walks, 10, out);
        read(out)
    };
    let upload = |camera: &str, video: Vec<u8>| {
        let (status, seen) = api.post_image(&format!("/v1/collections/{c}/videos?camera={camera}"), video, "video/mp4");
        assert_eq!(status, 200, "{seen}");
        seen["events"].as_array().expect("events").clone()
    };
    let walked = upload("door", walk(1, &dir.path().join("walk-1.mp4")));
    let cluster = walked.iter().find(|e| e["type"] == "identity.unknown").expect("a stranger")["cluster_id"].clone();
    let (status, named) =
        api.post_json(&format!("/v1/collections/{c}/clusters/{cluster}/name"), json!({ "name": "Laura" }));
    assert_eq!(status, 200, "{named}");
    assert!(!named["accepted"].as_array().expect("accepted").is_empty(), "sharp shots pass the gate: {named}");
    let again = upload("door", walk(2, &dir.path().join("walk-2.mp4")));
    let names: Vec<&str> = again
        .iter()
        .filter(|e| e["type"] == "identity.sighted")
        .filter_map(|e| e["subject"]["name"].as_str())
        .collect();
    assert_eq!(names, ["Laura"], "named from another photo once her group was: {again:?}");

    // "Not this person": an Obama sighting's face joins his ignore list and becomes unknown again.
    let his = sightings("?camera=lobby&decision=named");
    let his = his.iter().find(|s| s["subject_name"] == "barack_obama").expect("Obama in the lobby");
    let path = format!("/v1/collections/{c}/sightings/{}/not-this-person", his["seq"]);
    let (status, body) = searcher.post_json(&path, json!({}));
    assert_eq!(status, 403, "{body}");
    let (status, told) = api.post_json(&path, json!({}));
    assert_eq!(status, 200, "{told}");
    assert_eq!(told["subject_id"], his["subject_id"]);
    let now = sightings(&format!("?cluster={}", told["cluster_id"]));
    assert!(now.iter().any(|s| s["seq"] == his["seq"] && s["decision"] == "unknown"), "{now:?}");
    let (_, negatives) =
        api.get(&format!("/v1/collections/{c}/subjects/{}/negatives", his["subject_id"].as_str().expect("id")));
    assert_eq!(negatives["negatives"].as_array().map(Vec::len), Some(1), "{negatives}");
    let (status, body) = api.post_json(&path, json!({}));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "unknown now: {body}");
    assert_eq!(api.post_json(&format!("/v1/collections/{c}/sightings/999999/not-this-person"), json!({})).0, 404);

    // Erasing a person erases their sightings and best shots, and the receipt says how many.
    let miranda = sightings("?decision=named");
    let miranda: Vec<&Value> = miranda.iter().filter(|s| s["subject_name"] == "lin_manuel_miranda").collect();
    assert!(miranda.len() >= 4, "{miranda:?}");
    let subject = miranda[0]["subject_id"].as_str().expect("id");
    let erased = api
        .http
        .delete(format!("{}/v1/collections/{c}/subjects/{subject}", api.url))
        .header("x-api-key", &api.key)
        .send();
    let receipt: Value = erased.expect("erase").json().expect("receipt");
    assert_eq!(receipt["erasure"]["sightings_erased"].as_u64(), Some(miranda.len() as u64), "{receipt}");
    assert_eq!(shot(&miranda[0]["seq"]).0, 404, "her best shot is gone");
}
