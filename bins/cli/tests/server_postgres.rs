//! `facegate serve` over PostgreSQL + pgvector: two servers share one gallery, and a database crash
//! during an enrolment burst gives clean 503s and loses nothing acknowledged. `scripts/test.sh` starts
//! the throwaway cluster and sets FACEGATE_TEST_POSTGRES_URL and FACEGATE_TEST_POSTGRES_DIR.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use facegate_testing::{facegate_command, fresh_postgres_database, lfw_image, workspace_root};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

const MASTER_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn facegate() -> Command {
    facegate_command(env!("CARGO_BIN_EXE_facegate"), MASTER_KEY)
}

/// The tests of this file share one cluster. The crash test kills it, and crash recovery resets
/// PostgreSQL's statistics, which the erasure test reads (`last_vacuum`): they take turns.
static CLUSTER_IN_USE: Mutex<()> = Mutex::new(());

fn cluster_to_myself() -> MutexGuard<'static, ()> {
    CLUSTER_IN_USE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn cluster(action: &str) {
    let dir =
        std::env::var("FACEGATE_TEST_POSTGRES_DIR").expect("FACEGATE_TEST_POSTGRES_DIR (scripts/test.sh sets it)");
    let status = Command::new(workspace_root().join("scripts/postgres.sh"))
        .args([action, &dir])
        .stdout(Stdio::null())
        .status()
        .expect("postgres.sh runs");
    assert!(status.success(), "postgres.sh {action}");
}

struct Server(Child, String);

impl Server {
    fn start(store: &str, data_dir: &Path) -> Server {
        let mut child = facegate()
            .args(["serve", "--addr", "127.0.0.1:0", "--store", store, "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("address");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening line").to_string();
        Server(child, url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

fn post_json(url: &str, key: &str, body: Value) -> Value {
    let response = http().post(url).header("x-api-key", key).json(&body).send().expect("request");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().expect("json")
}

fn enrol(url: &str, key: &str, images: &[std::path::PathBuf]) -> reqwest::Result<reqwest::blocking::Response> {
    let mut form = multipart::Form::new();
    for (i, image) in images.iter().enumerate() {
        form =
            form.part(format!("f{i}"), multipart::Part::bytes(std::fs::read(image).expect("image")).file_name("x.jpg"));
    }
    http().post(format!("{url}?face=largest")).header("x-api-key", key).multipart(form).send()
}

/// A new admin key of tenant `acme` in `store`.
fn admin_key(store: &str) -> String {
    let keys =
        facegate().args(["keys", "create", "--tenant", "acme", "--json", "--store", store]).output().expect("keys");
    assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));
    serde_json::from_slice::<Value>(&keys.stdout).expect("json")["key"].as_str().expect("key").to_string()
}

fn largest_face(body: &Value) -> Value {
    let area = |f: &Value| f["bbox"]["width"].as_f64().unwrap_or(0.0) * f["bbox"]["height"].as_f64().unwrap_or(0.0);
    body["faces"].as_array().and_then(|f| f.iter().max_by(|a, b| area(a).total_cmp(&area(b)))).cloned().expect("a face")
}

#[test]
fn servers_share_a_postgres_gallery_and_survive_a_database_crash() {
    let _turn = cluster_to_myself();
    let store = fresh_postgres_database("facegate_server");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = admin_key(&store);
    let a = Server::start(&store, dir.path());
    let b = Server::start(&store, dir.path());

    // Enrol through A, recognise through B.
    let collection = post_json(&format!("{}/v1/collections", a.1), &key, json!({ "name": "hq" }))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let subject = post_json(
        &format!("{}/v1/collections/{collection}/subjects", a.1),
        &key,
        json!({ "name": "Colin Powell" }),
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let faces_url =
        |server: &Server, subject: &str| format!("{}/v1/collections/{collection}/subjects/{subject}/faces", server.1);
    let enrolled = enrol(&faces_url(&a, &subject), &key, &[lfw_image("Colin_Powell", 1), lfw_image("Colin_Powell", 2)])
        .expect("enrol");
    assert_eq!(enrolled.status().as_u16(), 201);
    let recognise = |server: &Server, person: &str, n: u32| -> Value {
        let bytes = std::fs::read(lfw_image(person, n)).expect("image");
        http()
            .post(format!("{}/v1/recognize?collection={collection}", server.1))
            .header("x-api-key", &key)
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .expect("recognize")
            .json()
            .expect("json")
    };
    let seen = largest_face(&recognise(&b, "Colin_Powell", 10));
    assert_eq!((seen["result"].as_str(), seen["subject"]["id"].as_str()), (Some("match"), Some(subject.as_str())));
    assert_eq!(largest_face(&recognise(&b, "Tony_Blair", 1))["result"], "unknown");

    // A burst of enrolments through both servers, and the database is killed in the middle of it.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<(u16, String, Duration)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let server_url = if i % 2 == 0 { a.1.clone() } else { b.1.clone() };
            let (key, collection) = (key.clone(), collection.clone());
            let (acknowledged, failures, stop) = (acknowledged.clone(), failures.clone(), stop.clone());
            std::thread::spawn(move || {
                let subject = post_json(
                    &format!("{server_url}/v1/collections/{collection}/subjects"),
                    &key,
                    json!({ "name": format!("w{i}") }),
                )["id"]
                    .as_str()
                    .expect("id")
                    .to_string();
                let url = format!("{server_url}/v1/collections/{collection}/subjects/{subject}/faces");
                let mut n = 1;
                while !stop.load(Ordering::Relaxed) && n < 140 {
                    let started = Instant::now();
                    let Ok(response) = enrol(&url, &key, &[lfw_image("George_W_Bush", n)]) else { break };
                    n += 1;
                    let status = response.status().as_u16();
                    let body: Value = response.json().unwrap_or(Value::Null);
                    if status == 201 {
                        let ids = body["accepted"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f["face_id"].as_str().map(str::to_string));
                        acknowledged.lock().expect("lock").extend(ids);
                    } else if status >= 500 {
                        failures.lock().expect("lock").push((
                            status,
                            body["error"]["code"].as_str().unwrap_or_default().to_string(),
                            started.elapsed(),
                        ));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2000));
    cluster("kill");
    std::thread::sleep(Duration::from_millis(2500));
    cluster("restart");
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    let failures = failures.lock().expect("lock").clone();
    assert!(!failures.is_empty(), "requests during the outage failed");
    for (status, code, took) in &failures {
        assert_eq!((*status, code.as_str()), (503, "store_unavailable"), "outage answers are clean 503s");
        assert!(*took < Duration::from_secs(15), "no hang: {took:?}");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(!acknowledged.is_empty());
    // Every acknowledged face is there after the restart, seen from either server.
    let (_, listed) = {
        let response = http()
            .get(format!("{}/v1/collections/{collection}/subjects", a.1))
            .header("x-api-key", &key)
            .send()
            .expect("subjects");
        (response.status(), response.json::<Value>().expect("json"))
    };
    let mut stored = Vec::new();
    for subject in listed["subjects"].as_array().expect("subjects") {
        let id = subject["id"].as_str().expect("id");
        let faces: Value =
            http().get(faces_url(&b, id)).header("x-api-key", &key).send().expect("faces").json().expect("json");
        stored.extend(
            faces["faces"].as_array().expect("faces").iter().filter_map(|f| f["id"].as_str().map(str::to_string)),
        );
    }
    for face in &acknowledged {
        assert!(stored.contains(face), "acknowledged face {face} lost");
    }
    let seen = largest_face(&recognise(&a, "George_W_Bush", 200));
    assert_eq!(seen["result"], "match", "the gallery works after the crash: {seen}");
}

#[test]
fn a_postgres_erasure_receipt_says_what_remains_and_the_tables_are_vacuumed() {
    let _turn = cluster_to_myself();
    let store = fresh_postgres_database("facegate_erasure");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = admin_key(&store);
    let server = Server::start(&store, dir.path());
    let collection = post_json(&format!("{}/v1/collections", server.1), &key, json!({ "name": "erasure" }))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let subjects = format!("{}/v1/collections/{collection}/subjects", server.1);
    let subject = post_json(&subjects, &key, json!({ "name": "Colin Powell" }))["id"].as_str().expect("id").to_string();
    let enrolled = enrol(&format!("{subjects}/{subject}/faces"), &key, &[lfw_image("Colin_Powell", 1)]).expect("enrol");
    assert_eq!(enrolled.status().as_u16(), 201);
    let vacuumed = || {
        let output = Command::new("psql")
            .args([
                store.as_str(),
                "-tA",
                "-c",
                "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'faces'",
            ])
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&output.stdout).trim() == "t"
    };
    assert!(!vacuumed(), "no vacuum before an erasure");
    let sql = |query: &str| {
        let output = Command::new("psql").args([store.as_str(), "-tA", "-c", query]).output().expect("psql runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    // The face's template is sealed under the subject's own key (a marked 13-byte nonce), kept in its table.
    assert_eq!(sql(&format!("SELECT octet_length(nonce) FROM faces WHERE subject_id = '{subject}'")), "13");
    assert_eq!(sql(&format!("SELECT count(*) FROM subject_keys WHERE subject_id = '{subject}'")), "1");

    let response = http().delete(format!("{subjects}/{subject}")).header("x-api-key", &key).send().expect("erase");
    assert_eq!(response.status().as_u16(), 200);
    let receipt: Value = response.json().expect("receipt");
    let storage = &receipt["erasure"]["storage"];
    assert_eq!((storage["backend"].as_str(), storage["physically_erased"].as_bool()), (Some("postgres"), Some(false)));
    let residue = storage["residue"].as_str().expect("residue");
    assert!(residue.contains("WAL") && residue.contains("backups") && residue.contains("vacuumed"), "{residue}");
    assert!(residue.contains("search vector"), "what crypto-shredding does not cover is said: {residue}");
    assert_eq!(
        (storage["crypto_shredded"].as_bool(), storage["tenant_sealed"].as_u64()),
        (Some(true), Some(0)),
        "{storage}"
    );
    assert_eq!(sql("SELECT count(*) FROM subject_keys"), "0", "the subject's key went with it");
    let started = Instant::now();
    while !vacuumed() {
        assert!(started.elapsed() < Duration::from_secs(20), "the faces table was not vacuumed after the erasure");
        std::thread::sleep(Duration::from_millis(250));
    }
}
