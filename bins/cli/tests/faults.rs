//! The promises `facegate serve` keeps under faults and hostile clients, against the real server
//! process, models, store and photos: dropped and timed-out requests cost nothing, erasure leaves no
//! bytes behind, metrics name no tenant's collections, memory stays bounded, every error code has one
//! status, the auth gaps are closed, the face limit is honoured, and schemathesis finds no contract violation.

mod common;

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{Api, PEOPLE, Server, client, create_key, enrol_people, facegate, main_face, read};
use facegate_testing::{KillOnDrop, lfw_image, photo, png_header_only, readme_error_codes};
use image::{DynamicImage, ImageFormat};
use reqwest::blocking::{Body, Client, multipart};
use serde_json::{Value, json};

/// One test of this file at a time: they time requests, measure peak memory and load the CPU, so they
/// must not share the machine with each other.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The README's error-code table: code -> status (a unit test in facegate-api checks it against the enum).
fn documented_codes() -> HashMap<String, u16> {
    readme_error_codes().into_iter().collect()
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).expect("encode");
    bytes
}

fn jpeg(image: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    image.to_rgb8().write_with_encoder(encoder).expect("jpeg");
    bytes
}

/// The group photo scaled to `width` wide: a slow image (decode, detection and six faces to embed).
fn scaled_group(width: u32) -> DynamicImage {
    let group = image::load_from_memory(&read(&photo("group_t1.jpg"))).expect("group photo");
    let height = group.height() * width / group.width();
    group.resize_exact(width, height, image::imageops::FilterType::Triangle)
}

/// Peak resident memory of a process (VmHWM), bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmHWM value") * 1024
}

/// Waits until `/v1/health` reports every pipeline free; panics after 10 s.
fn wait_until_idle(server: &Server) -> Value {
    let started = Instant::now();
    loop {
        let health: Value =
            client().get(format!("{}/v1/health", server.url)).send().expect("health").json().expect("json");
        let pool = &health["pipelines"][facegate_core::DEFAULT_PACK];
        if health["status"] == "ok" && pool["free"] == pool["workers"] {
            return health;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "pipelines never came back: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 20 sequential and 8 concurrent recognitions, all answered 200 with the right person.
fn recognitions_all_correct(api: &Api, collection: &str, subjects: &[String]) {
    for i in 0..20 {
        let (status, body) = api.recognize(collection, &lfw_image(PEOPLE[i % 3], 10 + (i / 3) as u32));
        assert_eq!(status, 200, "sequential {i}: {body}");
        assert_eq!(main_face(&body)["subject"]["id"], subjects[i % 3].as_str(), "sequential {i}");
    }
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let api = Api { url: api.url.clone(), key: api.key.clone(), http: client() };
            let (collection, expected) = (collection.to_string(), subjects[i % 3].clone());
            std::thread::spawn(move || {
                let (status, body) = api.recognize(&collection, &lfw_image(PEOPLE[i % 3], 20 + i as u32));
                assert_eq!(status, 200, "concurrent {i}: {body}");
                assert_eq!(main_face(&body)["subject"]["id"], expected.as_str(), "concurrent {i}");
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("concurrent recognition");
    }
}

#[test]
fn dropped_and_timed_out_requests_never_cost_a_pipeline() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    // Two workers, so the checks' 8 concurrent recognitions finish well inside the 1 s timeout even
    // on a slow day; before the fix, two lost pipelines were enough to break every later request. This
    // test sends as fast as the machine answers, which a fast CPU does faster than any rate limit meant
    // for clients: it has its own, and room for every request it sends at once.
    let flags = [
        "--workers",
        "2",
        "--request-timeout",
        "1",
        "--rate-limit",
        "100000",
        "--max-pending-images",
        "512",
        "--max-pending-bytes",
        "2000000000",
    ];
    let server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);
    let collection = api.collection("door");
    let subjects = enrol_people(&api, &collection);
    let slow = jpeg(&scaled_group(4000), 90);
    let recognize = format!("{}/v1/recognize?collection={collection}", server.url);
    // How long one slow image takes on this machine: what follows is sized from it, not from a guess
    // about the CPU.
    let started = Instant::now();
    let (status, body) = api.post_image(&format!("/v1/recognize?collection={collection}"), slow.clone(), "image/jpeg");
    assert_eq!(status, 200, "{body}");
    let one = started.elapsed();
    eprintln!("one slow image: {one:?}");

    // Clients that hang up while their image is being analysed.
    for _ in 0..3 {
        let patience = (one / 4).max(Duration::from_millis(2));
        let impatient = Client::builder().timeout(patience).build().expect("client");
        let sent = impatient
            .post(&recognize)
            .header("x-api-key", &key)
            .header("content-type", "image/jpeg")
            .body(slow.clone())
            .send();
        assert!(sent.is_err(), "the client gave up before the answer");
    }
    wait_until_idle(&server);
    recognitions_all_correct(&api, &collection, &subjects);

    // The server's own request timeout, firing while images wait and while they are analysed: enough slow
    // images that two workers need three times the 1 s timeout for them.
    let count = ((3.0 * 2.0 / one.as_secs_f64()).ceil() as usize).clamp(10, 120);
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let (api, slow, path) =
                (Api::new(&server, &key), slow.clone(), format!("/v1/recognize?collection={collection}"));
            std::thread::spawn(move || api.post_image(&path, slow, "image/jpeg"))
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    let timed_out: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 408).map(|(_, body)| body).collect();
    assert!(!timed_out.is_empty(), "{count} slow images of {one:?} each in one second on two workers: some time out");
    for body in &timed_out {
        assert_eq!(body["error"]["code"], "timeout", "a timeout is the envelope: {body}");
        assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    }
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert!(statuses.iter().all(|status| *status == 200 || *status == 408), "{statuses:?}");
    wait_until_idle(&server);
    recognitions_all_correct(&api, &collection, &subjects);

    // A short load run whose clients hang up at random moments, as a load generator does at its end.
    let started = Instant::now();
    let workers: Vec<_> = (0..12)
        .map(|worker| {
            let (key, url) = (key.clone(), recognize.clone());
            std::thread::spawn(move || {
                for round in 0..40u64 {
                    if started.elapsed() > Duration::from_secs(4) {
                        break;
                    }
                    let patience = Duration::from_millis([15, 40, 90, 250, 2000][(worker + round as usize) % 5]);
                    let http = Client::builder().timeout(patience).build().expect("client");
                    let image = read(&lfw_image(PEOPLE[worker % 3], 30 + (round % 10) as u32));
                    let _ = http
                        .post(&url)
                        .header("x-api-key", &key)
                        .header("content-type", "image/jpeg")
                        .body(image)
                        .send();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("load worker");
    }
    let health = wait_until_idle(&server);
    assert_eq!(health["pipelines"][facegate_core::DEFAULT_PACK]["workers"], 2, "{health}");
    recognitions_all_correct(&api, &collection, &subjects);
}

/// Every sealed template of `subject` in the store file: (face id, ciphertext).
fn sealed_templates(db: &Path, subject: &str) -> Vec<(String, Vec<u8>)> {
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open store");
    let mut statement = connection.prepare("SELECT id, ciphertext FROM faces WHERE subject_id = ?1").expect("query");
    let rows = statement.query_map([subject], |row| Ok((row.get(0)?, row.get(1)?))).expect("rows");
    rows.collect::<Result<Vec<_>, _>>().expect("read rows")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The bytes of `gallery.db` and its WAL, as they are on disk now.
fn store_files(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("gallery.db")).expect("gallery.db");
    if let Ok(wal) = std::fs::read(dir.join("gallery.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

#[test]
fn erasure_leaves_no_bytes_in_the_store_files() {
    let _exclusive = exclusive();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let mut server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let collection = api.collection("office");
    let subjects = enrol_people(&api, &collection);
    let (erased, kept) = (&subjects[0], &subjects[1]);
    let db = dir.path().join("gallery.db");
    let erased_templates = sealed_templates(&db, erased);
    let kept_templates = sealed_templates(&db, kept);
    assert_eq!((erased_templates.len(), kept_templates.len()), (3, 3));
    let before = store_files(dir.path());
    assert!(erased_templates.iter().all(|(id, sealed)| contains(&before, sealed) && contains(&before, id.as_bytes())));

    let response = api
        .http
        .delete(format!("{}/v1/collections/{collection}/subjects/{erased}", server.url))
        .header("x-api-key", &key)
        .send()
        .expect("erase");
    assert_eq!(response.status().as_u16(), 200);
    let receipt: Value = response.json().expect("receipt");
    assert_eq!(receipt["erasure"]["storage"]["physically_erased"], true, "{receipt}");
    assert!(receipt["erasure"]["storage"]["residue"].as_str().is_some_and(|r| r.contains("backups")), "{receipt}");
    let mut receipt_faces: Vec<&str> =
        receipt["erasure"]["face_ids"].as_array().expect("face ids").iter().filter_map(Value::as_str).collect();
    let mut stored_faces: Vec<&str> = erased_templates.iter().map(|(id, _)| id.as_str()).collect();
    receipt_faces.sort_unstable();
    stored_faces.sort_unstable();
    assert_eq!(receipt_faces, stored_faces);

    let check = |when: &str| {
        let files = store_files(dir.path());
        for (id, sealed) in &erased_templates {
            assert!(!contains(&files, sealed), "{when}: an erased template's ciphertext is still in the store files");
            assert!(!contains(&files, id.as_bytes()), "{when}: erased face id {id} is still in the store files");
        }
        for (id, sealed) in &kept_templates {
            assert!(contains(&files, sealed) && contains(&files, id.as_bytes()), "{when}: the search finds kept data");
        }
    };
    check("after the receipt");
    // Recognition still works, and the erased person is unknown.
    let (_, body) = api.recognize(&collection, &lfw_image(PEOPLE[1], 10));
    assert_eq!(main_face(&body)["subject"]["id"], kept.as_str(), "{body}");
    let (_, body) = api.recognize(&collection, &lfw_image(PEOPLE[0], 10));
    assert_eq!(main_face(&body)["result"], "unknown", "{body}");

    // A clean shutdown (SIGTERM) writes nothing of them back.
    let terminated = Command::new("kill").arg(server.pid().to_string()).status().expect("kill runs");
    assert!(terminated.success());
    let exited = server.child.wait().expect("server exits");
    assert!(exited.success(), "clean shutdown: {exited:?}");
    check("after shutdown");
    for name in ["gallery.db", "gallery.db-wal"] {
        if let Ok(meta) = std::fs::metadata(dir.path().join(name)) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name} is readable by its owner only");
        }
    }
}

/// Rows of `sql` (one blob or text column) in the store file, as bytes.
fn stored(db: &Path, sql: &str, parameter: &str) -> Vec<Vec<u8>> {
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open store");
    let mut statement = connection.prepare(sql).expect("query");
    let rows = statement
        .query_map([parameter], |row| {
            let value: rusqlite::types::Value = row.get(0)?;
            Ok(match value {
                rusqlite::types::Value::Blob(bytes) => bytes,
                rusqlite::types::Value::Text(text) => text.into_bytes(),
                other => format!("{other:?}").into_bytes(),
            })
        })
        .expect("rows");
    rows.collect::<Result<Vec<_>, _>>().expect("read rows")
}

/// How many of `secrets` are still somewhere in the store files.
fn left_in_files(dir: &Path, secrets: &[Vec<u8>]) -> usize {
    let files = store_files(dir);
    secrets.iter().filter(|secret| contains(&files, secret)).count()
}

#[test]
fn every_kind_of_erased_data_leaves_the_store_files() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    // The sweep runs on the server's clock: now, and two days on when retention should have applied.
    let clock = dir.path().join("clock");
    let now = jiff::Timestamp::now();
    std::fs::write(&clock, now.to_string()).expect("clock");
    let key = create_key(dir.path(), "acme", "admin");
    let env = [("FACEGATE_CLOCK_FILE", clock.to_str().expect("utf-8 path")), ("FACEGATE_SWEEP_INTERVAL", "1")];
    let server = Server::start_with(dir.path(), &["--rate-limit", "1000"], Stdio::inherit(), &env);
    let api = Api::new(&server, &key);
    let db = dir.path().join("gallery.db");
    let collection = api.collection("office");
    let subjects = enrol_people(&api, &collection);
    // A receiver that is down: every event stays queued in the outbox, payload and all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", closed.local_addr().expect("address"));
    drop(closed);
    let (status, hook) =
        api.post_json("/v1/webhooks", json!({ "url": url, "event_types": ["identity.decision", "subject.erased"] }));
    assert_eq!(status, 201, "{hook}");
    for n in 10..13 {
        let (status, _) = api.recognize(&collection, &lfw_image(PEOPLE[0], n));
        assert_eq!(status, 200);
    }

    // Ignore-list entries: a stranger kept as "not Colin", then removed.
    let negatives = format!("/v1/collections/{collection}/subjects/{}/negatives", subjects[1]);
    let (status, entry) = api.post_image(&negatives, read(&lfw_image("Gerhard_Schroeder", 1)), "image/jpeg");
    assert_eq!(status, 201, "{entry}");
    let negative = entry["id"].as_str().expect("id");
    let sealed_negatives = stored(&db, "SELECT ciphertext FROM negatives WHERE id = ?1", negative);
    assert_eq!((sealed_negatives.len(), left_in_files(dir.path(), &sealed_negatives)), (1, 1));
    let deleted = api.http.delete(format!("{}{negatives}/{negative}", server.url)).header("x-api-key", &key).send();
    assert_eq!(deleted.expect("delete").status().as_u16(), 204);

    // Queued webhook events naming a subject, erased with the subject.
    let queued = stored(&db, "SELECT payload FROM outbox WHERE subject_id = ?1", &subjects[0]);
    assert_eq!((queued.len(), left_in_files(dir.path(), &queued)), (3, 3), "three recognitions queued");
    let erased = api.http.delete(format!("{}/v1/collections/{collection}/subjects/{}", server.url, subjects[0]));
    assert_eq!(erased.header("x-api-key", &key).send().expect("erase").status().as_u16(), 200);

    // Audit events and queued events past the collection's retention.
    let old_events = stored(&db, "SELECT request_id FROM events WHERE collection_id = ?1", &collection);
    let old_queued = stored(&db, "SELECT payload FROM outbox WHERE collection_id = ?1", &collection);
    assert!(
        old_events.len() >= 6 && !old_queued.is_empty(),
        "{} events, {} queued",
        old_events.len(),
        old_queued.len()
    );
    assert_eq!(api.patch_json(&format!("/v1/collections/{collection}"), json!({ "retention_days": 1 })).0, 200);
    let later = now.checked_add(jiff::SignedDuration::from_hours(49)).expect("two days on");
    std::fs::write(&clock, later.to_string()).expect("clock");
    let started = Instant::now();
    while !stored(&db, "SELECT request_id FROM events WHERE collection_id = ?1", &collection).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the trail was not expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));

    // A deleted webhook's sealed signing secret.
    let hook = hook["webhook"]["id"].as_str().expect("id");
    let secrets = stored(&db, "SELECT secret_ciphertext FROM webhooks WHERE id = ?1", hook);
    let deleted = api.http.delete(format!("{}/v1/webhooks/{hook}", server.url)).header("x-api-key", &key).send();
    assert_eq!(deleted.expect("delete").status().as_u16(), 204);

    let left = [
        ("negatives", left_in_files(dir.path(), &sealed_negatives), sealed_negatives.len()),
        ("queued events of the erased subject", left_in_files(dir.path(), &queued), queued.len()),
        ("audit events past retention", left_in_files(dir.path(), &old_events), old_events.len()),
        ("queued events past retention", left_in_files(dir.path(), &old_queued), old_queued.len()),
        ("webhook secrets", left_in_files(dir.path(), &secrets), secrets.len()),
    ];
    eprintln!("byte scan of gallery.db and its WAL (left / erased): {left:?}");
    for (kind, left, erased) in left {
        assert!(erased > 0, "{kind}: something to erase");
        assert_eq!(left, 0, "{kind}: {left} of {erased} erased values are still in the store files");
    }
}

#[test]
fn metrics_name_no_collection_without_an_admin_key() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = create_key(dir.path(), "acme", "admin");
    let searcher = create_key(dir.path(), "acme", "search");
    let other_admin = create_key(dir.path(), "globex", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &admin);
    let collection = api.collection("lobby");
    let _ = enrol_people(&api, &collection);
    let (status, _) = api.recognize(&collection, &lfw_image(PEOPLE[0], 10));
    assert_eq!(status, 200);
    let scrape = |key: Option<&str>| {
        let mut request = client().get(format!("{}/metrics", server.url));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().expect("scrape");
        (response.status().as_u16(), response.text().expect("text"))
    };
    let (status, public) = scrape(None);
    assert_eq!(status, 200);
    assert!(!public.contains(&collection), "an anonymous scrape names a collection:\n{public}");
    assert!(!public.contains("facegate_gallery"), "an anonymous scrape shows no gallery totals:\n{public}");
    assert!(public.contains("stage=\"embed\""), "{public}");
    let (status, own) = scrape(Some(&admin));
    assert_eq!(status, 200);
    assert!(own.contains(&format!("collection=\"{collection}\"")), "the tenant's admin sees its collections:\n{own}");
    assert!(own.contains("facegate_gallery_templates_total 9"), "and its own total:\n{own}");
    let bytes: u64 = own
        .lines()
        .find_map(|line| line.strip_prefix("facegate_gallery_index_bytes "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the index's memory");
    // 9 templates of at least 128 values, with their ids: some kilobytes, far below a megabyte.
    assert!((9 * 128 * 4..1 << 20).contains(&bytes), "index bytes {bytes}:\n{own}");
    let (status, foreign) = scrape(Some(&other_admin));
    assert_eq!(status, 200);
    assert!(!foreign.contains(&collection), "another tenant's admin does not:\n{foreign}");
    assert!(foreign.contains("facegate_gallery_templates_total 0"), "nor counts it:\n{foreign}");
    let (status, body) = scrape(Some(&searcher));
    assert_eq!(status, 403, "{body}");
}

#[test]
fn memory_stays_bounded_under_big_uploads() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");

    // 64 concurrent uploads of a photo of about the largest size allowed: the group photo at 28 MP
    // with sensor-like noise, so it compresses like a camera's photo.
    let mut photo_28mp = scaled_group(6400).to_rgb8();
    let mut state = 0x2545_f491_u32;
    for sample in photo_28mp.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *sample = sample.saturating_add_signed((state % 17) as i8 - 8);
    }
    let photo_28mp = DynamicImage::ImageRgb8(photo_28mp);
    let upload = [97u8, 95, 92, 90, 88, 85, 80, 75]
        .into_iter()
        .map(|quality| jpeg(&photo_28mp, quality))
        .find(|bytes| bytes.len() <= 8_000_000)
        .expect("a quality that fits the body limit");
    assert!(upload.len() > 6_000_000, "a near-maximum upload: {} bytes", upload.len());
    let upload: &'static [u8] = Box::leak(upload.into_boxed_slice());
    let server = Server::start(dir.path(), &["--workers", "2"]);
    let started = Instant::now();
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (url, key) = (format!("{}/v1/detect", server.url), key.clone());
            std::thread::spawn(move || {
                let response = client()
                    .post(url)
                    .header("x-api-key", key)
                    .header("content-type", "image/jpeg")
                    .body(Body::from(upload))
                    .send()
                    .expect("an answer, not a reset");
                let retry_after = response.headers().get("retry-after").is_some();
                (response.status().as_u16(), retry_after, response.json::<Value>().unwrap_or(Value::Null))
            })
        })
        .collect();
    let answers: Vec<(u16, bool, Value)> = threads.into_iter().map(|t| t.join().expect("upload")).collect();
    let elapsed = started.elapsed();
    let served = answers.iter().filter(|(status, _, _)| *status == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 503).collect();
    assert_eq!(served + refused.len(), 64, "every upload is served or refused: {answers:?}");
    assert!(served >= 2, "some uploads are served: {served}");
    assert!(!refused.is_empty(), "64 big uploads overflow the queue");
    for (_, retry_after, body) in &refused {
        assert!(*retry_after, "a 503 says when to retry");
        assert_eq!(body["error"]["code"], "overloaded", "{body}");
    }
    for (status, _, body) in &answers {
        if *status == 200 {
            assert_eq!(body["faces"].as_array().map(Vec::len), Some(6), "the group's faces: {body}");
        }
    }
    let peak = peak_rss(server.pid());
    eprintln!(
        "64 concurrent {} byte uploads, --workers 2: {served} served, {} refused in {elapsed:?}; peak RSS {} MB",
        upload.len(),
        refused.len(),
        peak / 1_000_000
    );
    assert!(peak <= 400_000_000, "peak RSS {peak} bytes over 400 MB");
    let (status, _) = Api::new(&server, &key).post_image("/v1/detect", read(&photo("group_t1.jpg")), "image/jpeg");
    assert_eq!(status, 200, "the server serves on after the burst");
    drop(server);

    // One small 16-bit RGBA PNG of 6300x6300 pixels.
    let deep = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(6300, 6300, |x, y| {
        image::Rgba([((x / 700) * 7000) as u16, ((y / 700) * 7000) as u16, 30_000, 65_535])
    });
    let png = encode(&DynamicImage::ImageRgba16(deep), ImageFormat::Png);
    assert!(png.len() < 2_000_000, "a small file: {} bytes", png.len());
    let server = Server::start(dir.path(), &["--workers", "2"]);
    let (status, body) = Api::new(&server, &key).post_image("/v1/detect", png, "image/png");
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["width"].as_u64(), body["height"].as_u64()), (Some(6300), Some(6300)));
    let peak = peak_rss(server.pid());
    eprintln!("6300x6300 16-bit RGBA PNG: peak RSS {} MB", peak / 1_000_000);
    assert!(peak <= 250_000_000, "peak RSS {peak} bytes over 250 MB");
}

/// Asserts an answer's code is `code` and its status the one the README gives that code.
fn assert_code(codes: &HashMap<String, u16>, what: &str, response: reqwest::blocking::Response, code: &str) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], code, "{what}: {status} {body}");
    assert_eq!(Some(&status), codes.get(code), "{what}: `{code}` answered {status}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{what}: {body}");
}

#[test]
fn each_error_code_answers_its_one_status_on_every_endpoint() {
    let _exclusive = exclusive();
    let codes = documented_codes();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let detect_only = create_key(dir.path(), "acme", "detect");
    let server = Server::start(dir.path(), &["--max-body-bytes", "400000"]);
    let api = Api::new(&server, &key);
    let collection = api.collection("codes");
    let subject = api.subject(&collection, "Colin");
    let (status, _) = api.enroll(&collection, &subject, &[lfw_image("Colin_Powell", 1)]);
    assert_eq!(status, 201);
    let image_endpoints = [
        "/v1/detect".to_string(),
        "/v1/embed".to_string(),
        format!("/v1/recognize?collection={collection}"),
        format!("/v1/collections/{collection}/recognize"),
        format!("/v1/collections/{collection}/search"),
        format!("/v1/collections/{collection}/subjects/{subject}/faces"),
        format!("/v1/collections/{collection}/subjects/{subject}/verify"),
    ];
    let big = vec![7u8; 500_000];
    let post = |path: &str, key: Option<&str>, content_type: &str, body: Body| {
        let mut request = client().post(format!("{}{path}", server.url)).header("content-type", content_type);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.body(body).send().expect("request")
    };
    for path in &image_endpoints {
        let what = |case: &str| format!("{path} {case}");
        assert_code(
            &codes,
            &what("empty"),
            post(path, Some(&key), "image/jpeg", Body::from(Vec::new())),
            "empty_image",
        );
        let garbage = Body::from(b"not an image at all".to_vec());
        assert_code(&codes, &what("garbage"), post(path, Some(&key), "image/jpeg", garbage), "unsupported_image");
        let giant = Body::from(png_header_only(100_000, 100_000));
        assert_code(&codes, &what("giant header"), post(path, Some(&key), "image/png", giant), "image_too_large");
        let raw = Body::from(big.clone());
        assert_code(&codes, &what("raw too big"), post(path, Some(&key), "image/jpeg", raw), "payload_too_large");
        let chunked = Body::new(Cursor::new(big.clone()));
        assert_code(
            &codes,
            &what("chunked too big"),
            post(path, Some(&key), "image/jpeg", chunked),
            "payload_too_large",
        );
        let json_body = serde_json::to_vec(&json!({ "image": "A".repeat(500_000) })).expect("json");
        let json = Body::from(json_body);
        assert_code(
            &codes,
            &what("json too big"),
            post(path, Some(&key), "application/json", json),
            "payload_too_large",
        );
        let form = multipart::Form::new().part("f", multipart::Part::bytes(big.clone()).file_name("a.jpg"));
        let response = client()
            .post(format!("{}{path}", server.url))
            .header("x-api-key", &key)
            .multipart(form)
            .send()
            .expect("request");
        assert_code(&codes, &what("multipart too big"), response, "payload_too_large");
        let text = Body::from(read(&lfw_image("Colin_Powell", 2)));
        assert_code(&codes, &what("text/plain"), post(path, Some(&key), "text/plain", text), "unsupported_media_type");
        let bad_json = Body::from(b"{not json".to_vec());
        assert_code(&codes, &what("bad json"), post(path, Some(&key), "application/json", bad_json), "invalid_request");
        let anonymous = Body::from(read(&lfw_image("Colin_Powell", 2)));
        assert_code(&codes, &what("no key"), post(path, None, "image/jpeg", anonymous), "unauthorized");
        let response = client().put(format!("{}{path}", server.url)).header("x-api-key", &key).send().expect("put");
        assert_code(&codes, &what("PUT"), response, "method_not_allowed");
    }
    let limited = Body::from(read(&lfw_image("Colin_Powell", 2)));
    let path = format!("/v1/collections/{collection}/subjects/{subject}/faces");
    assert_code(&codes, "enrol with a detect key", post(&path, Some(&detect_only), "image/jpeg", limited), "forbidden");
    let missing = Body::from(read(&lfw_image("Colin_Powell", 2)));
    assert_code(
        &codes,
        "unknown collection",
        post("/v1/recognize?collection=nope", Some(&key), "image/jpeg", missing),
        "not_found",
    );
    let blank = Body::from(encode(&DynamicImage::new_rgb8(300, 300), ImageFormat::Png));
    let verify = format!("/v1/collections/{collection}/subjects/{subject}/verify");
    assert_code(&codes, "verify without a face", post(&verify, Some(&key), "image/png", blank), "no_face");
    let pack = Body::from(read(&lfw_image("Colin_Powell", 2)));
    assert_code(&codes, "unknown pack", post("/v1/detect?pack=nope", Some(&key), "image/jpeg", pack), "unknown_pack");
    let template = Body::from(serde_json::to_vec(&json!({ "template": [0.0, 0.0] })).expect("json"));
    let search = format!("/v1/collections/{collection}/search");
    assert_code(&codes, "zero template", post(&search, Some(&key), "application/json", template), "invalid_template");
    let fmr = Body::from(serde_json::to_vec(&json!({ "name": "x", "target_fmr": 0.9 })).expect("json"));
    assert_code(&codes, "fmr", post("/v1/collections", Some(&key), "application/json", fmr), "fmr_out_of_range");
    let taken = Body::from(serde_json::to_vec(&json!({ "name": "codes" })).expect("json"));
    assert_code(&codes, "taken name", post("/v1/collections", Some(&key), "application/json", taken), "conflict");
    let long = Body::from(serde_json::to_vec(&json!({ "name": "x".repeat(100_000) })).expect("json"));
    assert_code(
        &codes,
        "JSON-only body",
        post("/v1/collections", Some(&key), "application/json", long),
        "payload_too_large",
    );
    let response = client().get(format!("{}/v1/nothing-here", server.url)).send().expect("get");
    assert_code(&codes, "unknown route", response, "not_found");
    let empty_subject = api.subject(&collection, "Nobody");
    let face = Body::from(read(&lfw_image("Colin_Powell", 2)));
    let verify = format!("/v1/collections/{collection}/subjects/{empty_subject}/verify");
    assert_code(&codes, "verify an empty subject", post(&verify, Some(&key), "image/jpeg", face), "no_templates");
}

#[test]
fn auth_gaps_are_closed() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = create_key(dir.path(), "acme", "admin");
    let detect_only = create_key(dir.path(), "acme", "detect");
    let never_used = create_key(dir.path(), "acme", "search");
    let log = dir.path().join("server.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let server = Server::start_with(
        dir.path(),
        &["--rate-limit", "1"],
        Stdio::from(stderr),
        &[("FACEGATE_LOG", "facegate_api=debug")],
    );
    let api = Api::new(&server, &admin);
    let collection = api.collection("gate");

    // A detect-only key reads no collection, not even their sizes.
    let limited = Api::new(&server, &detect_only);
    assert_eq!(limited.get("/v1/collections").0, 403);
    assert_eq!(limited.get(&format!("/v1/collections/{collection}")).0, 403);

    // `Bearer` in any case.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        std::thread::sleep(Duration::from_millis(1100));
        let response = client()
            .get(format!("{}/v1/collections", server.url))
            .header("authorization", format!("{scheme} {admin}"))
            .send()
            .expect("request");
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }

    // A 429 says when to retry.
    let limited_answers: Vec<reqwest::blocking::Response> = (0..5)
        .map(|_| {
            client().get(format!("{}/v1/collections", server.url)).header("x-api-key", &admin).send().expect("request")
        })
        .collect();
    let too_many = limited_answers.iter().find(|r| r.status().as_u16() == 429).expect("the key's rate limit is hit");
    let retry: u64 = too_many.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry), "retry after {retry} s");

    // Failed key checks are throttled per address; a key that worked before still gets through.
    std::thread::sleep(Duration::from_millis(2100));
    let guesses: Vec<(u16, bool)> = (0..40)
        .map(|i| {
            let response = client()
                .get(format!("{}/v1/collections", server.url))
                .header("x-api-key", format!("fgk_guess{i}"))
                .send()
                .expect("request");
            (response.status().as_u16(), response.headers().contains_key("retry-after"))
        })
        .collect();
    assert!(guesses[..20].iter().all(|(status, _)| *status == 401), "{guesses:?}");
    assert!(guesses[20..].iter().all(|&(status, retry)| status == 429 && retry), "{guesses:?}");
    assert_eq!(api.get("/v1/collections").0, 200, "a known key is not locked out by another's guessing");
    let first_use = Api::new(&server, &never_used).get("/v1/collections");
    assert_eq!(first_use.0, 200, "nor is a valid key used for the first time behind the same address: {first_use:?}");

    // Error log lines carry the request id.
    let response = client().get(format!("{}/v1/collections", server.url)).send().expect("request");
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    std::thread::sleep(Duration::from_millis(200));
    let mut logged = String::new();
    std::fs::File::open(&log).expect("log").read_to_string(&mut logged).expect("read log");
    let line = logged.lines().find(|l| l.contains(&request_id)).unwrap_or_else(|| panic!("no log line: {logged}"));
    assert!(line.contains("rate_limited") || line.contains("unauthorized"), "{line}");
}

#[test]
fn the_face_limit_is_honoured_and_said() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let group = read(&photo("group_t1.jpg"));
    let server = Server::start(dir.path(), &["--max-faces", "3"]);
    let api = Api::new(&server, &key);
    let (status, body) = api.post_image("/v1/detect", group.clone(), "image/jpeg");
    assert_eq!(status, 200);
    assert_eq!((body["faces"].as_array().map(Vec::len), body["faces_truncated"].clone()), (Some(3), json!(true)));
    let collection = api.collection("hall");
    let (status, body) = api.post_image(&format!("/v1/recognize?collection={collection}"), group.clone(), "image/jpeg");
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["faces"].as_array().map(Vec::len), body["faces_truncated"].clone()), (Some(3), json!(true)));
    drop(server);
    let server = Server::start(dir.path(), &[]);
    let (_, body) = Api::new(&server, &key).post_image("/v1/detect", group, "image/jpeg");
    assert_eq!((body["faces"].as_array().map(Vec::len), body["faces_truncated"].clone()), (Some(6), json!(false)));
    let refused = facegate()
        .args(["serve", "--addr", "127.0.0.1:0", "--max-faces", "5000", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("serve runs");
    assert!(!refused.status.success(), "an impossible --max-faces is refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("max-faces"));
}

/// Where schemathesis is: `FACEGATE_SCHEMATHESIS`, else on the PATH (scripts/test.sh installs it).
fn schemathesis() -> PathBuf {
    std::env::var_os("FACEGATE_SCHEMATHESIS").map_or_else(|| PathBuf::from("schemathesis"), PathBuf::from)
}

/// Every schemathesis check (server errors, status codes, response schemas, content types, headers,
/// positive and negative data, auth, stateful links) against the served document, with the settings
/// in tests/schemathesis.toml.
#[test]
fn schemathesis_finds_no_contract_violation() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    // The auth checks send a wrong key to every operation; the failure throttle would answer 429.
    let flags = ["--workers", "2", "--rate-limit", "1000", "--max-auth-failures", "1000000"];
    let server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);
    let collection = api.collection("fuzzed");
    let _ = enrol_people(&api, &collection);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let child = Command::new(schemathesis())
        .args(["--config-file", config])
        .args(["run", &format!("{}/v1/openapi.json", server.url), "--checks", "all"])
        // The live event streams answer 200 and never end (read in tests/server.rs and tests/doors.rs).
        .args(["--exclude-path-regex", "/events/stream$"])
        .args(["--max-examples", "25", "--max-time", "120", "--request-timeout", "20", "--no-color"])
        .args(["--header", &format!("x-api-key: {key}")])
        .args(["--seed", "42"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis runs (scripts/test.sh installs it from PyPI)");
    let mut child = KillOnDrop(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(420), "schemathesis hung");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    child.0.stdout.take().expect("stdout").read_to_string(&mut out).expect("output");
    eprintln!("{out}");
    assert!(status.success(), "schemathesis found server errors or contract violations:\n{out}");
    wait_until_idle(&server);
}
