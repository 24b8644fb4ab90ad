//! Doors through a real `facegate serve` process, real models and real webcam frames (NUAA: three
//! people's live frames and printed-photo attacks of them), on a fixed clock (`clock_file`): one decision
//! per reason, anti-passback over an entry/exit pair, the audit trail, and the attendance sheet of the
//! scripted day.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::{Api, Server, create_key, read};
use serde_json::{Value, json};

fn frame(name: &str) -> PathBuf {
    facegate_testing::shared_dir().join("data/liveness/nuaa").join(name)
}

fn frames(names: &[&str]) -> Vec<Vec<u8>> {
    names.iter().map(|n| read(&frame(n))).collect()
}

fn png(image: &image::RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).expect("png");
    bytes
}

const ANN_ENROL: [&str; 2] = ["ClientRaw/0004_01_00_01_406.jpg", "ClientRaw/0004_01_00_01_55.jpg"];
const ANN: [&str; 3] =
    ["ClientRaw/0004_01_06_03_210.jpg", "ClientRaw/0004_01_06_03_92.jpg", "ClientRaw/0004_01_00_02_292.jpg"];
const ANN_PRINTED: &str = "ImposterRaw/0004_01_00_01_143.jpg";
const BOB_ENROL: [&str; 2] = ["ClientRaw/0006_00_00_01_320.jpg", "ClientRaw/0006_00_00_01_48.jpg"];
const BOB: [&str; 2] = ["ClientRaw/0006_00_06_03_178.jpg", "ClientRaw/0006_00_06_03_329.jpg"];
const CEM_ENROL: [&str; 2] = ["ClientRaw/0007_01_05_03_43.jpg", "ClientRaw/0007_01_05_03_57.jpg"];
const CEM: &str = "ClientRaw/0007_01_05_03_170.jpg";
/// A live person nobody enrolled.
const STRANGER: &str = "ClientRaw/0013_01_07_03_240.jpg";
/// Another, whom a lax threshold (false-match rate 0.1) takes for Ann.
const LOOKALIKE: [&str; 2] = ["ClientRaw/0012_01_07_03_165.jpg", "ClientRaw/0012_01_07_03_79.jpg"];

struct Door<'a> {
    api: &'a Api,
    clock: &'a Path,
    id: String,
}

impl Door<'_> {
    /// An attempt at `at` (RFC 3339) with these frames: the decision.
    fn attempt(&self, at: &str, images: Vec<Vec<u8>>) -> Value {
        std::fs::write(self.clock, at).expect("clock");
        let (status, body) = self.api.post_images(&format!("/v1/doors/{}/attempts", self.id), images);
        assert_eq!(status, 200, "{body}");
        body
    }

    fn expect(&self, at: &str, images: Vec<Vec<u8>>, reason: Option<&str>) -> Value {
        let body = self.attempt(at, images);
        let access = if reason.is_some() { "denied" } else { "granted" };
        assert_eq!((body["access"].as_str(), body["reason"].as_str()), (Some(access), reason), "at {at}: {body}");
        body
    }
}

fn create_door(api: &Api, body: Value) -> String {
    let (status, door) = api.post_json("/v1/doors", body);
    assert_eq!(status, 201, "{door}");
    door["id"].as_str().expect("id").to_string()
}

fn subject(api: &Api, collection: &str, name: &str, groups: &[&str], enrol: &[&str]) -> String {
    let (status, body) =
        api.post_json(&format!("/v1/collections/{collection}/subjects"), json!({ "name": name, "groups": groups }));
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    let images: Vec<PathBuf> = enrol.iter().map(|n| frame(n)).collect();
    let (status, body) = api.enroll(collection, &id, &images);
    assert_eq!((status, body["accepted"].as_array().map(Vec::len)), (201, Some(enrol.len())), "{body}");
    id
}

#[test]
fn doors_decide_every_reason_and_make_the_attendance_sheet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2026-11-30T08:00:00Z").expect("clock");
    let key = create_key(dir.path(), "acme", "admin");
    let clock_env = clock.to_str().expect("utf-8 path");
    let server =
        Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &[("FACEGATE_CLOCK_FILE", clock_env)]);
    let api = Api::new(&server, &key);
    let office = api.collection("office");
    let ann = subject(&api, &office, "Ann", &["staff"], &ANN_ENROL);
    let bob = subject(&api, &office, "Bob", &["staff"], &BOB_ENROL);
    let _cem = subject(&api, &office, "Cem", &["visitors"], &CEM_ENROL);

    let weekdays = json!([{ "days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00", "to": "20:00" }]);
    let front = create_door(
        &api,
        json!({ "name": "front", "collection_id": office,
                "policy": { "allowed_groups": ["staff"], "timezone": "Europe/Paris", "schedule": weekdays } }),
    );
    let back = create_door(
        &api,
        json!({ "name": "back", "collection_id": office,
                "policy": { "allowed_groups": ["staff"], "timezone": "Europe/Paris",
                            "anti_passback": { "direction": "exit", "paired_door": front } } }),
    );
    let paired = json!({ "name": "front", "collection_id": office,
        "policy": { "allowed_groups": ["staff"], "timezone": "Europe/Paris", "schedule": weekdays,
                    "anti_passback": { "direction": "entry", "paired_door": back } } });
    let (status, body) = api.put_json(&format!("/v1/doors/{front}"), paired);
    assert_eq!(status, 200, "{body}");
    let weekend = create_door(
        &api,
        json!({ "name": "weekend", "collection_id": office,
                "policy": { "allow_everyone": true, "timezone": "Europe/Paris",
                            "schedule": [{ "days": ["sat", "sun"], "from": "10:00", "to": "16:00" }] } }),
    );
    let (status, listed) = api.get("/v1/doors");
    assert_eq!((status, listed["doors"].as_array().map(Vec::len)), (200, Some(3)), "{listed}");

    let door = |id: &str| Door { api: &api, clock: &clock, id: id.to_string() };
    let (front, back, weekend) = (door(&front), door(&back), door(&weekend));

    // Monday 30 November 2026, Paris (UTC+1).
    let granted = front.expect("2026-11-30T09:00:00+01:00", frames(&ANN), None);
    assert_eq!(granted["subject"]["id"], json!(ann), "{granted}");
    assert_eq!(granted["frames_used"], json!(3));
    let (score, threshold) = (granted["score"].as_f64().expect("score"), granted["threshold"].as_f64().expect("t"));
    assert!(score >= threshold, "{granted}");
    assert!(granted["liveness"].as_f64().expect("liveness") >= granted["liveness_threshold"].as_f64().expect("lt"));
    front.expect("2026-11-30T09:30:00+01:00", frames(&ANN[..1]), Some("anti_passback"));
    back.expect("2026-11-30T10:00:00+01:00", frames(&ANN[1..2]), None);
    back.expect("2026-11-30T10:05:00+01:00", frames(&ANN[1..2]), Some("anti_passback"));
    front.expect("2026-11-30T11:00:00+01:00", frames(&ANN[2..]), None);
    back.expect("2026-11-30T12:00:00+01:00", frames(&ANN[..1]), None);

    // A printed photo of Ann learns nothing: not who it shows, not how close it came, not its liveness
    // score (the audit trail keeps them, below).
    let spoof = front.expect("2026-11-30T12:10:00+01:00", frames(&[ANN_PRINTED]), Some("not_live"));
    for field in ["subject", "score", "liveness"] {
        assert!(spoof.get(field).is_none(), "a not_live denial carries no `{field}`: {spoof}");
    }
    let visitor = front.expect("2026-11-30T12:20:00+01:00", frames(&[CEM]), Some("not_allowed"));
    assert_eq!(visitor["subject"]["name"], json!("Cem"), "the person is named in the denial: {visitor}");
    weekend.expect("2026-11-30T12:30:00+01:00", frames(&BOB[..1]), Some("outside_schedule"));
    let unknown = front.expect("2026-11-30T12:40:00+01:00", frames(&[STRANGER]), Some("unknown_person"));
    assert!(unknown.get("subject").is_none() && unknown.get("score").is_none(), "no hill-climbing signal: {unknown}");
    front.expect("2026-11-30T12:41:00+01:00", frames(&[ANN[0], BOB[0]]), Some("unknown_person"));
    let blank = png(&image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128])));
    front.expect("2026-11-30T12:50:00+01:00", vec![blank], Some("no_face"));
    let group = read(&facegate_testing::shared_dir().join("data/photos/group_t1.jpg"));
    front.expect("2026-11-30T12:51:00+01:00", vec![group], Some("multiple_faces"));
    let sharp = image::load_from_memory(&read(&frame(ANN[0]))).expect("decode").to_rgb8();
    let blurred = png(&image::imageops::blur(&sharp, 4.0));
    front.expect("2026-11-30T12:52:00+01:00", vec![blurred], Some("low_quality"));
    front.expect("2026-11-30T17:30:00+01:00", frames(&BOB), None);
    back.expect("2026-11-30T19:00:00+01:00", frames(&BOB[1..]), None);
    front.expect("2026-11-30T21:00:00+01:00", frames(&BOB[..1]), Some("outside_schedule"));
    // Tuesday.
    front.expect("2026-12-01T08:30:00+01:00", frames(&ANN[..2]), None);

    // The ignore list: at a lax threshold a stranger is let in as Ann; once marked "not Ann", the same
    // stranger (another frame) is refused at the same threshold, and Ann still gets in.
    let lobby = door(&create_door(
        &api,
        json!({ "name": "lobby", "collection_id": office,
                "policy": { "allow_everyone": true, "timezone": "UTC", "target_fmr": 0.1 } }),
    ));
    let mistaken = lobby.expect("2026-12-03T09:00:00Z", frames(&LOOKALIKE[..1]), None);
    assert_eq!(mistaken["subject"]["name"], json!("Ann"), "a false match at FMR 0.1: {mistaken}");
    let negatives = format!("/v1/collections/{office}/subjects/{ann}/negatives");
    let (status, entry) = api.post_image(&negatives, read(&frame(LOOKALIKE[0])), "image/jpeg");
    assert_eq!(status, 201, "{entry}");
    let (status, listed) = api.get(&negatives);
    assert_eq!((status, listed["negatives"][0]["id"].clone()), (200, entry["id"].clone()), "{listed}");
    lobby.expect("2026-12-03T09:01:00Z", frames(&LOOKALIKE[1..]), Some("unknown_person"));
    let (status, recognized) =
        api.post_image(&format!("/v1/recognize?collection={office}&fmr=0.1"), read(&frame(LOOKALIKE[1])), "image/jpeg");
    assert_eq!((status, common::main_face(&recognized)["result"].as_str()), (200, Some("unknown")), "{recognized}");
    lobby.expect("2026-12-03T09:02:00Z", frames(&ANN[..1]), None);

    // At that rate, enrolling the stranger warns that they and Ann are confusable.
    let (status, lax) = api.post_json("/v1/collections", json!({ "name": "lax", "target_fmr": 0.1 }));
    assert_eq!(status, 201, "{lax}");
    let lax = lax["id"].as_str().expect("id").to_string();
    let lax_ann = subject(&api, &lax, "Ann", &[], &ANN_ENROL);
    let (status, body) =
        api.post_json(&format!("/v1/collections/{lax}/subjects"), json!({ "name": "Dee", "groups": [] }));
    assert_eq!(status, 201, "{body}");
    let dee = body["id"].as_str().expect("id");
    let (status, enrolled) = api.enroll(&lax, dee, &[frame(LOOKALIKE[1])]);
    assert_eq!(status, 201, "{enrolled}");
    let warned = &enrolled["accepted"][0];
    assert_eq!(warned["confusable_with"][0]["subject_id"], json!(lax_ann), "{enrolled}");
    assert_eq!(warned["possible_duplicate"], warned["confusable_with"][0]);

    // Bad input is a 4xx, never a decision.
    let path = format!("/v1/doors/{}/attempts", front.id);
    let (status, body) = api.post_images(&path, frames(&[ANN[0]; 6]));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = api.post_images(&path, Vec::new());
    assert_eq!(status, 400, "{body}");
    let (status, _) = api.post_images("/v1/doors/nope/attempts", frames(&[ANN[0]]));
    assert_eq!(status, 404);
    for policy in [
        json!({ "allow_everyone": true, "timezone": "Mars/Olympus" }),
        json!({ "timezone": "UTC" }),
        json!({ "allow_everyone": true, "timezone": "UTC", "schedule": [{ "days": ["mon"], "from": "9", "to": "10:00" }] }),
        json!({ "allow_everyone": true, "timezone": "UTC", "anti_passback": { "direction": "entry", "paired_door": "nope" } }),
        json!({ "allow_everyone": true, "timezone": "UTC", "allowed_subjects": ["nope"] }),
        json!({ "allow_everyone": true, "timezone": "UTC", "colour": "red" }),
        json!({ "allow_everyone": true, "timezone": "UTC", "schedule": [{ "days": ["mon"], "from": "+8:00", "to": "10:00" }] }),
        json!({ "allow_everyone": true, "timezone": "UTC", "schedule": [{ "days": ["mon"], "from": "24:00", "to": "06:00" }] }),
    ] {
        let (status, body) =
            api.post_json("/v1/doors", json!({ "name": "bad", "collection_id": office, "policy": policy }));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{policy}: {body}");
    }

    // A door deciding outside the calibrated range would answer 400 to every attempt: refused now.
    for fmr in [0.5, 1e-9] {
        let policy = json!({ "allow_everyone": true, "timezone": "UTC", "target_fmr": fmr });
        let (status, body) =
            api.post_json("/v1/doors", json!({ "name": "bad", "collection_id": office, "policy": policy }));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("fmr_out_of_range")), "{fmr}: {body}");
        let replaced = json!({ "name": "weekend", "collection_id": office, "policy": policy });
        let (status, body) = api.put_json(&format!("/v1/doors/{}", weekend.id), replaced);
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("fmr_out_of_range")), "{fmr}: {body}");
    }

    // Every decision is in the collection's trail with its door, subject, scores and reason.
    let (status, trail) = api.get(&format!("/v1/collections/{office}/events?limit=1000"));
    assert_eq!(status, 200, "{trail}");
    let decisions: Vec<&Value> =
        trail["events"].as_array().expect("events").iter().filter(|e| e["action"] == "door").collect();
    assert_eq!(decisions.len(), 21, "{trail}");
    let not_live = decisions.iter().find(|e| e["reason"] == "not_live").expect("not_live event");
    assert_eq!((not_live["door_id"].as_str(), not_live["result"].as_str()), (Some(front.id.as_str()), Some("denied")));
    assert!(not_live["liveness"].as_f64().is_some() && not_live["score"].as_f64().is_some(), "{not_live}");

    // The attendance sheet of those two days, in Paris time.
    let (status, kind, csv) = api.get_text(&format!(
        "/v1/collections/{office}/attendance?from=2026-11-30&to=2026-12-01&tz=Europe/Paris&format=csv"
    ));
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"), "{csv}");
    let expected = format!(
        "date,subject_id,name,first_seen,last_seen,doors,count\n\
         2026-11-30,{ann},Ann,2026-11-30T09:00:00+01:00,2026-11-30T12:00:00+01:00,front;back,4\n\
         2026-11-30,{bob},Bob,2026-11-30T17:30:00+01:00,2026-11-30T19:00:00+01:00,front;back,2\n\
         2026-12-01,{ann},Ann,2026-12-01T08:30:00+01:00,2026-12-01T08:30:00+01:00,front,1\n"
    );
    assert_eq!(csv, expected);
    let printed = common::facegate()
        .args([
            "attendance",
            "--collection",
            "office",
            "--tenant",
            "acme",
            "--from",
            "2026-11-30",
            "--to",
            "2026-12-01",
        ])
        .args(["--tz", "Europe/Paris", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("facegate attendance runs");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    assert_eq!(String::from_utf8_lossy(&printed.stdout), expected, "the CLI prints the same sheet");
    let (status, sheet) = api.get(&format!("/v1/collections/{office}/attendance?from=2026-12-01&to=2026-12-01&tz=UTC"));
    assert_eq!(status, 200, "{sheet}");
    assert_eq!(sheet["days"][0]["first_seen"], json!("2026-12-01T07:30:00+00:00"), "{sheet}");
    let (status, _) = api.get(&format!("/v1/collections/{office}/attendance?from=2026-12-02&to=2026-12-01"));
    assert_eq!(status, 400);
}

#[test]
fn retention_expires_the_trail_and_erases_subjects_whose_consent_ran_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2026-12-01T09:00:00Z").expect("clock");
    let key = create_key(dir.path(), "acme", "admin");
    let env = [("FACEGATE_CLOCK_FILE", clock.to_str().expect("utf-8 path")), ("FACEGATE_SWEEP_INTERVAL", "1")];
    let server = Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &env);
    let api = Api::new(&server, &key);
    let office = api.collection("office");
    let (status, body) = api.patch_json(&format!("/v1/collections/{office}"), json!({ "retention_days": 7 }));
    assert_eq!((status, body["retention_days"].as_u64()), (200, Some(7)), "{body}");
    let (status, body) = api.patch_json(&format!("/v1/collections/{office}"), json!({ "retention_days": 0 }));
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.patch_json(&format!("/v1/collections/{office}"), json!({ "liveness_required": true }));
    assert_eq!(
        (status, body["retention_days"].as_u64(), body["liveness_required"].as_bool()),
        (200, Some(7), Some(true)),
        "{body}"
    );
    let at = |text: &str| text.parse::<jiff::Timestamp>().expect("time").as_millisecond();
    let consent = |expires: &str| json!({ "given_at_ms": at("2026-11-01T00:00:00Z"), "purpose": "door access", "expires_at_ms": at(expires) });
    let person = |name: &str, expires: &str, photos: &[&str]| {
        let (status, body) = api.post_json(
            &format!("/v1/collections/{office}/subjects"),
            json!({ "name": name, "consent": consent(expires) }),
        );
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("id").to_string();
        let images: Vec<PathBuf> = photos.iter().map(|n| frame(n)).collect();
        let (status, body) = api.enroll(&office, &id, &images);
        assert_eq!(status, 201, "{body}");
        id
    };
    let ann = person("Ann", "2026-12-20T00:00:00Z", &ANN_ENROL);
    let bob = person("Bob", "2027-06-01T00:00:00Z", &BOB_ENROL);
    let (status, body) = api.post_json(
        &format!("/v1/collections/{office}/subjects"),
        json!({ "name": "Eve", "consent": { "given_at_ms": 10, "purpose": "x", "expires_at_ms": 5 } }),
    );
    assert_eq!(status, 400, "consent that expires before it is given: {body}");
    let lobby = Door {
        api: &api,
        clock: &clock,
        id: create_door(
            &api,
            json!({ "name": "lobby", "collection_id": office, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
        ),
    };
    // The collection requires liveness: recognitions score it unasked.
    let (status, recognized) =
        api.post_image(&format!("/v1/recognize?collection={office}"), read(&frame(ANN[0])), "image/jpeg");
    assert_eq!(status, 200, "{recognized}");
    assert_eq!(common::main_face(&recognized)["liveness"]["live"], json!(true), "{recognized}");
    lobby.expect("2026-12-01T09:00:00Z", frames(&ANN[..1]), None);
    lobby.expect("2026-12-15T09:00:00Z", frames(&BOB[..1]), None);

    // Ann's consent runs out on the 20th; the trail keeps 7 days.
    std::fs::write(&clock, "2026-12-21T00:00:00Z").expect("clock");
    let started = std::time::Instant::now();
    while api.get(&format!("/v1/collections/{office}/subjects/{ann}")).0 != 404 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "Ann was not erased");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, bob_now) = api.get(&format!("/v1/collections/{office}/subjects/{bob}"));
    assert_eq!(status, 200, "Bob's consent runs on: {bob_now}");
    let (status, receipts) = api.get(&format!("/v1/collections/{office}/receipts"));
    assert_eq!(status, 200, "{receipts}");
    let receipt = &receipts["receipts"][0];
    assert_eq!(
        (receipt["subject_id"].as_str(), receipt["reason"].as_str()),
        (Some(ann.as_str()), Some("consent_expired"))
    );
    let kept: Value = serde_json::from_str(receipt["receipt"].as_str().expect("receipt")).expect("JSON receipt");
    assert_eq!(kept["erasure"]["subject_ids"], json!([ann]), "{kept}");
    assert_eq!(kept["erasure"]["templates_erased"], json!(2), "{kept}");
    assert_eq!(receipt["receipt_sha256"], kept["receipt_sha256"]);
    assert_eq!(receipt["receipt_sha256"].as_str().map(str::len), Some(64));
    let (status, _) = api.get("/v1/collections/00000000-0000-4000-8000-000000000000/receipts");
    assert_eq!(status, 404, "a collection that never existed has no receipts to list");

    let started = std::time::Instant::now();
    let trail = loop {
        let (status, trail) = api.get(&format!("/v1/collections/{office}/events?limit=1000"));
        assert_eq!(status, 200, "{trail}");
        let events = trail["events"].as_array().expect("events").clone();
        if events.iter().all(|e| e["at_ms"].as_i64() >= Some(at("2026-12-14T00:00:00Z"))) {
            break events;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "old events stay: {trail}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let kinds: Vec<(&str, &str)> =
        trail.iter().map(|e| (e["action"].as_str().unwrap_or(""), e["reason"].as_str().unwrap_or(""))).collect();
    assert!(kinds.contains(&("door", "")), "Bob's passage of the 15th stays: {kinds:?}");
    assert!(kinds.contains(&("erase", "consent_expired")), "the erasure is in the trail: {kinds:?}");
    assert_eq!(kinds.len(), 2, "the enrolments and Ann's passage of the 1st are gone: {kinds:?}");
    lobby.expect("2026-12-21T09:00:00Z", frames(&ANN[..1]), Some("unknown_person"));
}

#[test]
fn door_policy_is_administration_and_presence_outlives_the_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "2026-11-30T08:00:00Z").expect("clock");
    let admin = create_key(dir.path(), "acme", "admin");
    let enroller = create_key(dir.path(), "acme", "enroll");
    let kiosk = create_key(dir.path(), "acme", "search");
    let env = [("FACEGATE_CLOCK_FILE", clock.to_str().expect("utf-8 path")), ("FACEGATE_SWEEP_INTERVAL", "1")];
    let server = Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &env);
    let api = Api::new(&server, &admin);
    let office = api.collection("office");
    let ann = subject(&api, &office, "Ann", &["staff"], &ANN_ENROL);
    let policy = json!({ "allowed_groups": ["staff"], "timezone": "UTC", "liveness_required": true });
    let front = create_door(&api, json!({ "name": "front", "collection_id": office, "policy": policy }));
    let back = create_door(
        &api,
        json!({ "name": "back", "collection_id": office,
                "policy": { "allowed_groups": ["staff"], "timezone": "UTC",
                            "anti_passback": { "direction": "exit", "paired_door": front } } }),
    );
    let paired = json!({ "name": "front", "collection_id": office,
        "policy": { "allowed_groups": ["staff"], "timezone": "UTC",
                    "anti_passback": { "direction": "entry", "paired_door": back } } });
    assert_eq!(api.put_json(&format!("/v1/doors/{front}"), paired).0, 200);

    // An `enroll` key manages people, not who may pass: it can neither open a door to everyone nor
    // drop its liveness requirement, create or delete one, reset its presence, nor read its policy.
    let enroll = Api::new(&server, &enroller);
    let opened = json!({ "name": "front", "collection_id": office,
        "policy": { "allow_everyone": true, "liveness_required": false, "timezone": "UTC" } });
    for (what, (status, body)) in [
        ("replace", enroll.put_json(&format!("/v1/doors/{front}"), opened.clone())),
        ("create", enroll.post_json("/v1/doors", json!({ "name": "side", "collection_id": office, "policy": policy }))),
        ("list", enroll.get("/v1/doors")),
        ("read", enroll.get(&format!("/v1/doors/{front}"))),
    ] {
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{what}: {body}");
    }
    for path in [format!("/v1/doors/{front}"), format!("/v1/doors/{front}/presence")] {
        let response = enroll.http.delete(format!("{}{path}", server.url)).header("x-api-key", &enroller).send();
        assert_eq!(response.expect("delete").status().as_u16(), 403, "{path}");
    }
    // A kiosk (`search`) reads doors and makes attempts, and changes nothing.
    let kiosk = Api::new(&server, &kiosk);
    assert_eq!(kiosk.get("/v1/doors").0, 200);
    assert_eq!(kiosk.put_json(&format!("/v1/doors/{front}"), opened).0, 403);
    let (_, door) = api.get(&format!("/v1/doors/{front}"));
    assert_eq!(door["policy"]["allow_everyone"], json!(false), "the door is as the administrator left it: {door}");

    // Anti-passback presence is its own record: expiring the audit trail does not let Ann in twice.
    let front = Door { api: &kiosk, clock: &clock, id: front };
    front.expect("2026-11-30T09:00:00Z", frames(&ANN[..1]), None);
    front.expect("2026-11-30T09:05:00Z", frames(&ANN[1..2]), Some("anti_passback"));
    assert_eq!(api.patch_json(&format!("/v1/collections/{office}"), json!({ "retention_days": 1 })).0, 200);
    std::fs::write(&clock, "2026-12-03T09:00:00Z").expect("clock");
    let started = std::time::Instant::now();
    loop {
        let (status, trail) = api.get(&format!("/v1/collections/{office}/events?limit=1000"));
        assert_eq!(status, 200);
        if trail["events"].as_array().is_some_and(|e| e.iter().all(|e| e["action"] != "door")) {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the trail was not expired: {trail}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    front.expect("2026-12-03T09:01:00Z", frames(&ANN[..1]), Some("anti_passback"));

    // An administrator lets her out another way: a reset of her presence, audited.
    let reset = |path: &str| {
        let response = api.http.delete(format!("{}{path}", server.url)).header("x-api-key", &admin).send();
        let response = response.expect("reset");
        (response.status().as_u16(), response.json::<Value>().unwrap_or(Value::Null))
    };
    assert_eq!(reset(&format!("/v1/doors/{}/presence/{ann}", front.id)), (200, json!({ "reset": 1 })));
    front.expect("2026-12-03T09:02:00Z", frames(&ANN[..1]), None);
    assert_eq!(
        reset(&format!("/v1/doors/{}/presence", front.id)),
        (200, json!({ "reset": 1 })),
        "everyone, at midnight"
    );
    front.expect("2026-12-03T09:03:00Z", frames(&ANN[1..2]), None);

    // Deleting the exit door unpairs the entry instead of keeping Ann out forever.
    let deleted = api.http.delete(format!("{}/v1/doors/{back}", server.url)).header("x-api-key", &admin).send();
    assert_eq!(deleted.expect("delete").status().as_u16(), 204);
    let (_, door) = api.get(&format!("/v1/doors/{}", front.id));
    assert!(door["policy"]["anti_passback"].is_null(), "{door}");
    front.expect("2026-12-03T09:04:00Z", frames(&ANN[..1]), None);
    front.expect("2026-12-03T09:05:00Z", frames(&ANN[1..2]), None);

    // Every change of who may pass is in the tenant's configuration trail, naming the key and the change.
    let (status, trail) = api.get("/v1/changes");
    assert_eq!(status, 200, "{trail}");
    let changes = trail["changes"].as_array().expect("changes");
    let actions: Vec<&str> = changes.iter().filter_map(|c| c["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "key.created",
            "key.created",
            "key.created",
            "collection.created",
            "door.created",
            "door.created",
            "door.replaced",
            "collection.updated",
            "presence.reset",
            "presence.reset",
            "door.deleted"
        ],
        "{trail}"
    );
    let replaced = &changes[6];
    assert_eq!(replaced["object_id"], json!(front.id));
    assert!(replaced["key_id"].as_str().is_some_and(|k| !k.is_empty()), "{replaced}");
    assert_eq!(replaced["details"]["policy"]["to"]["anti_passback"]["paired_door"], json!(back), "{replaced}");
    assert_eq!(changes[7]["details"], json!({ "retention_days": { "from": null, "to": 1 } }), "{trail}");
    assert_eq!(changes[8]["details"]["subject_id"], json!(ann));
    assert_eq!(enroll.get("/v1/changes").0, 403, "the trail is for administrators");
}

/// Frames of the phone-replay demo (one person, 640×480, every third frame of each recording): `real2`,
/// the person live in front of the camera; `fake2`, a phone replaying a video of him.
fn demo_frames(recording: &str, from: u32) -> Vec<PathBuf> {
    let folder = facegate_testing::shared_dir().join("data/liveness/apfol_video");
    let mut frames: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("the demo's frames")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            name.strip_prefix(recording)
                .and_then(|n| n.strip_prefix('_'))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= from)
        })
        .collect();
    frames.sort();
    frames
}

/// The door's decisions in the collection's trail, oldest first.
fn door_decisions(api: &Api, collection: &str, door: &str) -> Vec<Value> {
    let (status, trail) = api.get(&format!("/v1/collections/{collection}/events?limit=1000"));
    assert_eq!(status, 200, "{trail}");
    let mut decisions: Vec<Value> = trail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "door" && e["door_id"] == door)
        .cloned()
        .collect();
    decisions.sort_by_key(|e| e["seq"].as_i64());
    decisions
}

/// Reads a collection's audit stream (from `after`, by query or by the `Last-Event-ID` header a browser
/// resends) until `enough` says so of the events read: those events, in order, each with its SSE id.
fn follow_trail(
    url: &str,
    key: &str,
    collection: &str,
    after: Option<(&str, i64)>,
    enough: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    use std::io::BufRead as _;
    let http =
        reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(90)).build().expect("client");
    let mut request = http.get(format!("{url}/v1/collections/{collection}/events/stream")).header("x-api-key", key);
    request = match after {
        Some(("query", seq)) => request.query(&[("after", seq)]),
        Some((_, seq)) => request.header("last-event-id", seq.to_string()),
        None => request,
    };
    let response = request.send().expect("the stream opens");
    assert_eq!(response.status().as_u16(), 200);
    let (mut events, mut id, mut audit) = (Vec::new(), String::new(), false);
    for line in std::io::BufReader::new(response).lines().map_while(Result::ok) {
        if let Some(seq) = line.strip_prefix("id: ") {
            id = seq.to_string();
        } else if line == "event: audit" {
            audit = true;
        } else if let Some(data) = line.strip_prefix("data: ").filter(|_| audit) {
            events.push((std::mem::take(&mut id), serde_json::from_str::<Value>(data).expect("json")));
            audit = false;
            if enough(&events) {
                break;
            }
        }
    }
    events
}

#[test]
fn a_door_camera_opens_for_the_live_person_and_not_for_a_phone_replaying_him() {
    use std::io::BufRead as _;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start_with(dir.path(), &[], std::process::Stdio::inherit(), &[("FACEGATE_CAMERA_POLL", "1")]);
    let api = Api::new(&server, &key);
    let office = api.collection("office");
    let other = api.collection("visitors");
    // Enrolled from two frames of the start of his live recording; the camera sees the rest of it.
    let live = demo_frames("real2", 0);
    let (status, body) = api.post_json(&format!("/v1/collections/{office}/subjects"), json!({ "name": "Dan" }));
    assert_eq!(status, 201, "{body}");
    let dan = body["id"].as_str().expect("id").to_string();
    let (status, body) = api.enroll(&office, &dan, &[live[0].clone(), live[4].clone()]);
    assert_eq!((status, body["accepted"].as_array().map(Vec::len)), (201, Some(2)), "{body}");
    let door = create_door(
        &api,
        json!({ "name": "entrance", "collection_id": office,
                "policy": { "allow_everyone": true, "timezone": "UTC", "liveness_required": true } }),
    );

    let videos = tempfile::tempdir().expect("tempdir");
    let (live_video, replay_video) = (videos.path().join("live.mp4"), videos.path().join("replay.mp4"));
    facegate_testing::walkby::video_of_frames(&demo_frames("real2", 30), 10, &live_video);
    facegate_testing::walkby::video_of_frames(&demo_frames("fake2", 0), 10, &replay_video);
    let (live_camera, replay_camera) = (
        facegate_testing::rtsp::RtspServer::start(&live_video, 0),
        facegate_testing::rtsp::RtspServer::start(&replay_video, 0),
    );
    let camera = |name: &str, source: &str, door: &str| {
        json!({ "name": name, "collection_id": office, "source_url": source,
                "settings": { "detections_per_second": 10, "door_id": door } })
    };

    // Only a door of the camera's own collection can be watched.
    let elsewhere = create_door(
        &api,
        json!({ "name": "side", "collection_id": other, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
    );
    for wrong in [elsewhere.as_str(), "nope"] {
        let (status, body) = api.post_json("/v1/cameras", camera("entrance", &live_camera.url(), wrong));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{wrong}: {body}");
    }

    // The live person: the door opens from the camera's track alone, no client posting frames, and the
    // event stream tells it as it happens.
    let listener = {
        let (url, key) = (format!("{}/v1/events/stream", server.url), key.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
            let response = http.get(url).header("x-api-key", key).send().expect("the stream opens");
            let mut door_event = false;
            for line in std::io::BufReader::new(response).lines().map_while(Result::ok) {
                if line == "event: door.decision" {
                    door_event = true;
                } else if let Some(data) = line.strip_prefix("data: ").filter(|_| door_event) {
                    return serde_json::from_str::<Value>(data).expect("json");
                }
            }
            Value::Null
        })
    };
    // The collection's trail as it grows, from its start: the console's events screen.
    let trail = {
        let (url, key, office, door) = (server.url.clone(), key.clone(), office.clone(), door.clone());
        std::thread::spawn(move || {
            let events = follow_trail(&url, &key, &office, None, |events| {
                events.iter().any(|(_, e)| e["door_id"] == json!(door) && e["result"] == "granted")
            });
            (events, Instant::now())
        })
    };
    let (status, created) = api.post_json("/v1/cameras", camera("entrance", &live_camera.url(), &door));
    assert_eq!((status, created["settings"]["door_id"].as_str()), (201, Some(door.as_str())), "{created}");
    let started = Instant::now();
    let granted = loop {
        let decisions = door_decisions(&api, &office, &door);
        if let Some(granted) = decisions.iter().find(|e| e["result"] == "granted") {
            break granted.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the door never opened: {decisions:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "door camera: the live person let in {:.1} s after the camera was added",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(granted["subject_id"], json!(dan), "{granted}");
    assert_eq!(granted["key_id"], json!("camera"), "the camera decided: {granted}");
    assert!(granted["liveness"].as_f64().is_some() && granted["score"].as_f64().is_some(), "{granted}");
    let seen_at = Instant::now();
    let (streamed, streamed_at) = trail.join().expect("the trail's follower");
    let stored = door_decisions(&api, &office, &door);
    let streamed_grant = streamed.last().map(|(_, e)| e.clone()).expect("events");
    assert_eq!(streamed_grant, granted, "the stream tells the stored event");
    assert!(streamed_at <= seen_at + Duration::from_secs(1), "within a second of being stored");
    let (status, page) = api.get(&format!("/v1/collections/{office}/events?limit=1000"));
    assert_eq!(status, 200);
    let listed: Vec<Value> = page["events"].as_array().expect("events").iter().take(streamed.len()).cloned().collect();
    assert_eq!(streamed.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), listed, "the whole trail, in order");
    assert!(streamed.iter().all(|(id, e)| e["seq"].as_i64() == id.parse().ok()), "each event's SSE id is its seq");
    assert!(!stored.is_empty());
    // Resumed after an event (by query, or by the header a reconnecting browser sends): the next one.
    let (second, third) = (streamed[1].1["seq"].as_i64().expect("seq"), &streamed[2].1);
    for how in ["query", "last-event-id"] {
        let resumed = follow_trail(&server.url, &key, &office, Some((how, second)), |events| !events.is_empty());
        assert_eq!(&resumed[0].1, third, "{how}");
    }
    let http = reqwest::blocking::Client::new();
    let missing = http.get(format!("{}/v1/collections/nope/events/stream", server.url)).header("x-api-key", &key);
    assert_eq!(missing.send().expect("answer").status().as_u16(), 404);
    let reader = create_key(dir.path(), "acme", "search");
    let refused = http.get(format!("{}/v1/collections/{office}/events/stream", server.url)).header("x-api-key", reader);
    assert_eq!(refused.send().expect("answer").status().as_u16(), 403, "the trail is the admin's");

    let told = listener.join().expect("listener");
    assert_eq!(told["camera"], json!("entrance"), "{told}");
    assert_eq!(
        (told["door"]["door_id"].as_str(), told["door"]["access"].as_str()),
        (Some(door.as_str()), Some("granted"))
    );
    assert_eq!(told["subject"]["name"], json!("Dan"), "{told}");

    // Stopped, then a phone replaying him at the same door: denied for liveness, never opened.
    let id = created["id"].as_str().expect("id").to_string();
    let deleted = api.http.delete(format!("{}/v1/cameras/{id}", api.url)).header("x-api-key", &api.key).send();
    assert_eq!(deleted.expect("delete").status().as_u16(), 204);
    std::thread::sleep(Duration::from_secs(3));
    let grants = |all: &[Value]| all.iter().filter(|e| e["result"] == "granted").count();
    let before = door_decisions(&api, &office, &door);
    let (status, body) = api.post_json("/v1/cameras", camera("entrance", &replay_camera.url(), &door));
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let denied = loop {
        let decisions = door_decisions(&api, &office, &door);
        if let Some(denied) = decisions[before.len()..].iter().find(|e| e["reason"] == "not_live") {
            break denied.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the replay was never decided: {decisions:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(denied["result"], json!("denied"), "{denied}");
    // 8 s more (not 10: the server closes a keep-alive connection idle for its 10-s header timeout,
    // and the client's next request could race that close).
    std::thread::sleep(Duration::from_secs(8));
    let after = door_decisions(&api, &office, &door);
    assert_eq!(grants(&after), grants(&before), "a replay never opens the door: {after:?}");
    let replayed = &after[before.len()..];
    eprintln!(
        "door camera: the replay denied {} times ({} not_live) over {:.1} s",
        replayed.len(),
        replayed.iter().filter(|e| e["reason"] == "not_live").count(),
        started.elapsed().as_secs_f64()
    );
}
