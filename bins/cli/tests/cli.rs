//! The `facegate` binary, run as a user would, on the real models and photos.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facegate_testing::walkby::{Walk, walk_by_video};
use facegate_testing::{lfw_dir, lfw_image, lfw_ten_people_dataset, photo, shared_dir};
use serde_json::Value;

fn facegate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_facegate"));
    command.args(args);
    if std::env::var_os("FACEGATE_MODEL_MIRROR").is_none() {
        command.env("FACEGATE_MODEL_MIRROR", shared_dir().join("models"));
    }
    command.output().expect("facegate runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn models_fetch_verify_and_list_show_licences() {
    let fetched = stdout(&facegate(&["models", "fetch"]));
    assert!(fetched.contains("yunet-2023mar") && fetched.contains("sha256 verified"), "{fetched}");
    let verified = stdout(&facegate(&["models", "verify"]));
    assert_eq!(verified.matches("ok ").count(), 6, "detector, landmarks, embedder, 2 liveness, runtime: {verified}");
    let listed = stdout(&facegate(&["models", "list"]));
    for licence in ["licence: MIT", "licence: research use only", "licence: non-commercial research"] {
        assert!(listed.contains(licence), "{listed}");
    }
    assert!(listed.contains("FMR 1e-3"), "calibration shown: {listed}");
    assert!(listed.contains("minifasnet-v2: Apache-2.0") && listed.contains("live at >= 0.5"), "{listed}");
}

#[test]
fn offline_without_mirror_names_what_is_missing_and_where_it_looked() {
    let home = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["models", "fetch"])
        .env("FACEGATE_HOME", home.path())
        .env("FACEGATE_MODEL_MIRROR", "")
        .env("FACEGATE_OFFLINE", "1")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("face_detection_yunet_2023mar_dynamic.onnx"), "{message}");
    assert!(message.contains("not present") && message.contains("FACEGATE_MODEL_MIRROR is not set"), "{message}");
    assert!(message.contains("FACEGATE_OFFLINE"), "{message}");
    assert!(home.path().join("models").read_dir().is_ok_and(|mut d| d.next().is_none()), "nothing half-written");
}

#[test]
fn detect_json_and_drawing() {
    let out = tempfile::tempdir().expect("tempdir");
    let drawn = out.path().join("group.png");
    let group = photo("group_t1.jpg");
    let report: Value =
        serde_json::from_str(&stdout(&facegate(&["detect", path(&group), "--json", "--draw", path(&drawn)])))
            .expect("json");
    let faces = report[0]["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 6);
    assert_eq!(faces[0]["landmarks"].as_array().expect("landmarks").len(), 5);
    assert!(faces[0]["bbox_normalized"]["width"].as_f64().expect("normalised") < 1.0);
    let annotated = image::open(&drawn).expect("annotated image written").to_rgb8();
    let original = image::open(&group).expect("original").to_rgb8();
    assert_eq!(annotated.dimensions(), original.dimensions());
    let green = annotated.pixels().filter(|p| p.0 == [0, 255, 0]).count();
    assert!(green > 1000, "boxes drawn: {green} green pixels");
}

#[test]
fn compare_decides_at_the_calibrated_threshold() {
    let same = stdout(&facegate(&[
        "compare",
        path(&lfw_image("Colin_Powell", 1)),
        path(&lfw_image("Colin_Powell", 2)),
        "--json",
    ]));
    let same: Value = serde_json::from_str(&same).expect("json");
    assert_eq!(same["same_person"], true, "{same}");
    assert_eq!(same["target_fmr"], 1e-3);
    let different =
        stdout(&facegate(&["compare", path(&lfw_image("Colin_Powell", 1)), path(&lfw_image("Tony_Blair", 1))]));
    assert!(different.contains("different people") && different.contains("false-match rate of 1e-3"), "{different}");
    let strict = facegate(&[
        "compare",
        path(&lfw_image("Colin_Powell", 1)),
        path(&lfw_image("Colin_Powell", 2)),
        "--fmr",
        "1e-9",
    ]);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("outside the calibrated range"));
}

#[test]
fn embed_prints_unit_templates() {
    let report: Value =
        serde_json::from_str(&stdout(&facegate(&["embed", path(&photo("sample2.jpg"))]))).expect("json");
    let faces = report["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 3);
    let embedding: Vec<f64> =
        faces[0]["embedding"].as_array().expect("embedding").iter().filter_map(Value::as_f64).collect();
    assert_eq!(embedding.len(), 256, "the default pack's templates");
    let norm = embedding.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);
}

#[test]
fn bad_files_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a picture").expect("write");
    let output = facegate(&["detect", path(&text)]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("not a supported image format") && !message.contains("panicked"), "{message}");
    let missing = facegate(&["embed", "/nonexistent/face.jpg"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn eval_lfw_writes_a_report_and_roc() {
    let out = tempfile::tempdir().expect("tempdir");
    let printed =
        stdout(&facegate(&["eval", "lfw", "--dir", path(&lfw_dir()), "--limit", "5", "--out", path(out.path())]));
    assert!(printed.contains("10-fold accuracy"), "{printed}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).expect("report")).expect("json");
    assert_eq!(report["pairs"], 100);
    assert!(report["accuracy_mean"].as_f64().expect("accuracy") > 0.9, "{report}");
    let svg = std::fs::read_to_string(out.path().join("roc.svg")).expect("roc plot");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}

#[test]
fn train_classify_and_use_a_trained_pack_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = lfw_ten_people_dataset(dir.path());
    let cache = dir.path().join("cache");
    let run = dir.path().join("classifier");
    let trained = stdout(&facegate(&[
        "train",
        path(&dataset),
        "--out",
        path(&run),
        "--cache",
        path(&cache),
        "--epochs",
        "2",
        "--input-size",
        "32",
        "--optimizer",
        "sgd",
    ]));
    assert!(trained.contains("test: loss") && trained.contains("accuracy"), "{trained}");
    let report: Value = serde_json::from_slice(&std::fs::read(run.join("report.json")).expect("report")).expect("json");
    assert_eq!(report["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["people"].as_array().map(Vec::len), Some(10));
    assert!(run.join("curves.svg").is_file());

    let jolie = lfw_image("Angelina_Jolie", 3);
    let answer: Value =
        serde_json::from_str(&stdout(&facegate(&["classify", path(&jolie), "--model", path(&run), "--json"])))
            .expect("json");
    let prediction = &answer["answers"][0]["prediction"];
    assert!(prediction["best_guess"].is_string() && prediction["confidence"].as_f64().is_some(), "{answer}");
    let unknown = stdout(&facegate(&["classify", path(&jolie), "--model", path(&run), "--min-confidence", "1.01"]));
    assert!(unknown.contains("unknown (best guess"), "{unknown}");

    let adapted = dir.path().join("embedding");
    let trained = stdout(&facegate(&[
        "train",
        path(&dataset),
        "--mode",
        "embedding",
        "--out",
        path(&adapted),
        "--cache",
        path(&cache),
        "--epochs",
        "2",
        "--pack-name",
        "lfw10",
    ]));
    assert!(trained.contains("pretrained only") && trained.contains("with the head"), "{trained}");
    let pack = adapted.join("pack");
    let embedded: Value =
        serde_json::from_str(&stdout(&facegate(&["--pack", path(&pack), "embed", path(&jolie)]))).expect("json");
    assert_eq!(embedded["pack"], "lfw10", "the adapted pack answered: {embedded}");
    let template = embedded["faces"][0]["embedding"].as_array().expect("a face's template");
    assert_eq!(template.len(), 256, "the head keeps the default pack's template length");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("empty");
    let refused = facegate(&["train", path(&empty), "--out", path(&dir.path().join("nothing"))]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no person folders"), "{refused:?}");
}

/// Three LFW people with three photos each in `known/<name>/`, and a `probe/` folder with a fourth
/// photo of each and one of a stranger.
fn known_and_probe_folders(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (known, probe) = (root.join("known"), root.join("probe"));
    for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
        std::fs::create_dir_all(known.join(person)).expect("person folder");
        for n in 1..=3 {
            let source = lfw_image(person, n);
            std::fs::copy(&source, known.join(person).join(source.file_name().expect("name"))).expect("copy");
        }
        std::fs::create_dir_all(&probe).expect("probe folder");
        std::fs::copy(lfw_image(person, 10), probe.join(format!("{person}.jpg"))).expect("copy");
    }
    std::fs::copy(lfw_image("Hugo_Chavez", 1), probe.join("stranger.jpg")).expect("copy");
    std::fs::write(probe.join("broken.jpg"), b"not a photo").expect("write");
    (known, probe)
}

/// The name `identify` gave the largest face of each probe image.
fn names_of_largest_faces(rows: &Value) -> std::collections::BTreeMap<String, String> {
    let mut largest: std::collections::BTreeMap<String, (f64, String)> = std::collections::BTreeMap::new();
    for row in rows.as_array().expect("rows") {
        let image = Path::new(row["image"].as_str().expect("image")).file_stem().expect("stem");
        let area = row["width"].as_f64().expect("width") * row["height"].as_f64().expect("height");
        let name = row["name"].as_str().expect("name").to_string();
        let entry = largest.entry(image.to_string_lossy().into_owned()).or_insert((0.0, String::new()));
        if area > entry.0 {
            *entry = (area, name);
        }
    }
    largest.into_iter().map(|(image, (_, name))| (image, name)).collect()
}

#[test]
fn enroll_and_identify_name_lfw_people_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (known, probe) = known_and_probe_folders(dir.path());
    let data = dir.path().join("data");
    for (pack, collection) in [("mobilefacenet", "known"), ("omz-0095", "known-omz")] {
        let gallery = ["--data-dir", path(&data), "--collection", collection, "--pack", pack];
        let enrolled = stdout(&facegate(&[&["enroll", path(&known)], &gallery[..]].concat()));
        assert!(enrolled.contains("9 faces enrolled, 0 photos refused"), "{enrolled}");
        assert!(enrolled.contains(&format!("pack `{pack}`")), "{enrolled}");

        let output = facegate(&[&["identify", path(&probe), "--format", "json"], &gallery[..]].concat());
        assert!(String::from_utf8_lossy(&output.stderr).contains("skipped"), "an unreadable file is skipped");
        let json = stdout(&output);
        let rows: Value = serde_json::from_str(&json).expect("JSON rows");
        let names = names_of_largest_faces(&rows);
        for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
            assert_eq!(names.get(person).map(String::as_str), Some(person), "{pack}: {json}");
        }
        assert_eq!(names.get("stranger").map(String::as_str), Some("unknown"), "{pack}: {json}");
        assert!(rows.as_array().expect("rows").iter().all(|r| r["name"] != "Hugo_Chavez"));

        let one = probe.join("Tony_Blair.jpg");
        let csv = stdout(&facegate(&[&["identify", path(&one)], &gallery[..]].concat()));
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("image,face,name,subject_id,score,x,y,width,height"), "{csv}");
        assert!(lines.any(|line| line.contains(",Tony_Blair,")), "{csv}");
    }

    // Enrolling the folder again adds photos to the same people rather than new people.
    let tony = |output: &str| -> Vec<Value> {
        let rows: Value = serde_json::from_str(output).expect("JSON rows");
        rows.as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["name"] == "Tony_Blair")
            .map(|r| r["subject_id"].clone())
            .collect()
    };
    let identify = ["identify", path(&probe), "--format", "json", "--data-dir", path(&data)];
    let before = tony(&stdout(&facegate(&identify)));
    let again = stdout(&facegate(&["enroll", path(&known), "--data-dir", path(&data)]));
    assert!(again.contains("9 faces enrolled"), "{again}");
    assert_eq!(tony(&stdout(&facegate(&identify))), before, "the same subject");

    // A collection that keeps its faces' frames moves to another pack with nobody enrolling again.
    let moving = ["--data-dir", path(&data), "--collection", "moving", "--pack", "mobilefacenet"];
    let enrolled = stdout(&facegate(&[&["enroll", path(&known), "--keep-crops"], &moving[..]].concat()));
    assert!(enrolled.contains("9 faces enrolled") && enrolled.contains("pack `mobilefacenet`"), "{enrolled}");
    let migrate_and_identify = |pack: &str| {
        let migrated = stdout(&facegate(&[&["collections", "migrate", "--to", pack], &moving[..]].concat()));
        assert!(migrated.contains(&format!("now uses pack `{pack}`: 9 of 9 faces migrated")), "{migrated}");
        assert!(!migrated.contains("must enrol again"), "{migrated}");
        let rows: Value = serde_json::from_str(&stdout(&facegate(
            &[&["identify", path(&probe), "--format", "json"], &moving[..]].concat(),
        )))
        .expect("JSON rows");
        let names = names_of_largest_faces(&rows);
        for person in ["Colin_Powell", "Serena_Williams", "Tony_Blair"] {
            assert_eq!(names.get(person).map(String::as_str), Some(person), "after the migration to {pack}: {rows}");
        }
        assert_eq!(names.get("stranger").map(String::as_str), Some("unknown"), "{rows}");
    };
    migrate_and_identify("omz-0095");
    let again = facegate(&[&["collections", "migrate", "--to", "omz-0095"], &moving[..]].concat());
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already uses pack"));
    // int8 templates are not fp32 ones: the int8 pack (Intel's int8 IR on OpenVINO) is reached by the same
    // migration, and names the same people at its own thresholds.
    migrate_and_identify("omz-0095-int8");
    // Without kept frames, a migration switches at once and names the people who must enrol again.
    let bare = ["--data-dir", path(&data), "--collection", "bare", "--pack", "mobilefacenet"];
    stdout(&facegate(&[&["enroll", path(&known)], &bare[..]].concat()));
    let migrated = stdout(&facegate(&[&["collections", "migrate", "--to", "omz-0095"], &bare[..]].concat()));
    assert!(migrated.contains("0 of 9 faces migrated") && migrated.contains("must enrol again"), "{migrated}");
    assert!(migrated.contains("  Tony_Blair"), "{migrated}");

    // Cards for door panels, from the command line: set, shown, refused out of range, cleared.
    let cards =
        |extra: &[&str]| facegate(&[&["cards", "--person", "Tony_Blair", "--data-dir", path(&data)], extra].concat());
    let set: Value =
        serde_json::from_str(&stdout(&cards(&["--card", "wiegand26:12:3456", "--card", "raw:0:99@tower-b"])))
            .expect("JSON");
    assert_eq!(set["credentials"].as_array().map(Vec::len), Some(2), "{set}");
    let shown: Value = serde_json::from_str(&stdout(&cards(&[]))).expect("JSON");
    assert_eq!(shown["credentials"], set["credentials"], "kept");
    assert_eq!(
        (shown["credentials"][0]["format"].as_str(), shown["credentials"][0]["card_number"].as_u64()),
        (Some("wiegand26"), Some(3456))
    );
    let refused = cards(&["--card", "wiegand26:300:1"]);
    assert!(!refused.status.success(), "a facility code out of the format's range");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("facility code up to 255"), "{refused:?}");
    let cleared: Value = serde_json::from_str(&stdout(&cards(&["--clear"]))).expect("JSON");
    assert_eq!(cleared["credentials"], serde_json::json!([]));

    let missing = facegate(&["identify", path(&probe), "--data-dir", path(&data), "--collection", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("enrol people first"));
    let listed = stdout(&facegate(&["models", "list"]));
    assert!(listed.contains("omz-0095") && listed.contains("omz-reid-0095: Apache-2.0"), "{listed}");
    let omz = listed.split("  omz-0095").nth(1).expect("the omz-0095 pack is listed");
    assert!(!omz.lines().take(3).any(|l| l.contains("research only")), "{omz}");
    assert_eq!(listed.matches("research only: not cleared for commercial use").count(), 3, "{listed}");
}

/// One line of `facegate watch --json`.
fn watch_events(output: &Output) -> Vec<Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect()
}

/// A local gallery in a temporary folder with the test clip's people enrolled in `hamilton`: the
/// folder, the clip's folder, the gallery's data folder.
fn hamilton_gallery() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let video = shared_dir().join("data/video/hamilton");
    let data = dir.path().join("data");
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    let enrolled = stdout(&facegate(&[&["enroll", path(&video.join("known"))], &gallery[..]].concat()));
    assert!(enrolled.contains("5 faces enrolled"), "{enrolled}");
    (dir, video, data)
}

/// `ffmpeg -i input ARGS output` (scripts/test.sh installs ffmpeg).
fn ffmpeg(input: &Path, args: &[&str], output: &Path) {
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i", path(input)])
        .args(args)
        .args(["-an", path(output)])
        .status()
        .expect("ffmpeg (scripts/test.sh installs it)");
    assert!(made.success(), "ffmpeg {args:?}");
}

#[test]
fn watch_names_each_identity_track_of_the_clip_once() {
    let (dir, video, data) = hamilton_gallery();
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    let clip = video.join("short_hamilton_clip.mp4");
    let watched = facegate(&[&["watch", path(&clip), "--json"], &gallery[..]].concat());
    let events = watch_events(&watched);
    eprintln!("{}", String::from_utf8_lossy(&watched.stderr));

    // Every track starts once and ends once, with at most one decision, and the decision agrees with
    // how the track ended.
    let mut tracks: std::collections::BTreeMap<u64, Vec<&Value>> = std::collections::BTreeMap::new();
    for event in &events {
        assert_eq!(event["camera"], "short_hamilton_clip.mp4");
        assert!(event["wall_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{event}");
        tracks.entry(event["track_id"].as_u64().expect("track id")).or_default().push(event);
    }
    let kind = |e: &Value| e["type"].as_str().unwrap_or_default().to_string();
    for (id, track) in &tracks {
        let kinds: Vec<String> = track.iter().map(|e| kind(e)).collect();
        assert_eq!(kinds.first().map(String::as_str), Some("face.track.started"), "track {id}: {kinds:?}");
        assert_eq!(kinds.last().map(String::as_str), Some("face.track.ended"), "track {id}: {kinds:?}");
        let decisions = kinds.iter().filter(|k| k.starts_with("identity.")).count();
        let end = track.last().expect("end");
        match end["decision"].as_str() {
            Some("named") => assert!(decisions == 1 && kinds.contains(&"identity.sighted".into()), "{kinds:?}"),
            Some("unknown") => assert!(decisions == 1 && end["cluster_id"].is_u64(), "{kinds:?}"),
            Some("too_small") => assert_eq!(decisions, 0, "{kinds:?}"),
            other => panic!("track {id} ended with {other:?}"),
        }
    }

    // The clip's three identity tracks (../shared/data/video/hamilton/README.md): Miranda in the wide
    // shot (0.00-0.63 s) and the close-up (2.74-7.01 s), Obama in a group of six (7.04-9.14 s); each
    // named within a second of its shot's start. Nobody else is named: not Biden (never on screen),
    // not Lacamoire (never larger than about 25 px).
    let sighted: Vec<(String, f64, f64)> = events
        .iter()
        .filter(|e| e["type"] == "identity.sighted")
        .map(|e| {
            let first = tracks[&e["track_id"].as_u64().expect("id")][0]["stream_time_s"].as_f64().expect("time");
            (e["subject"]["name"].as_str().expect("name").to_string(), first, e["stream_time_s"].as_f64().expect("t"))
        })
        .collect();
    let expected =
        [("lin_manuel_miranda", 0.0, 0.634), ("lin_manuel_miranda", 2.736, 7.007), ("barack_obama", 7.04, 9.142)];
    assert_eq!(sighted.len(), expected.len(), "{sighted:?}");
    for ((name, first, named_at), (want, start, end)) in sighted.iter().zip(expected) {
        assert_eq!(name, want, "{sighted:?}");
        assert!(
            (first - start).abs() < 0.15 && *named_at <= end + 0.05,
            "{name}: track from {first}, named at {named_at}"
        );
        assert!(named_at - first <= 1.0, "{name} named {:.2} s after the track began", named_at - first);
    }
    let ended: Vec<&&Value> = tracks.values().map(|t| t.last().expect("end")).collect();
    let too_small = ended.iter().filter(|e| e["decision"] == "too_small").count();
    let unknown = ended.iter().filter(|e| e["decision"] == "unknown").count();
    assert!(too_small >= 1, "Lacamoire's small face is never named: {too_small}");
    assert!(unknown >= 5, "the other people are unknown: {unknown}");

    // Who was seen where and when: every decided track is kept as a sighting, in the order they ended.
    let sightings = |only: &[&str]| -> Vec<Value> {
        let out = stdout(&facegate(&[&["sightings", "--json"], only, &gallery[..]].concat()));
        out.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
    };
    let all = sightings(&[]);
    let named: Vec<&str> =
        all.iter().filter(|s| s["decision"] == "named").map(|s| s["subject_name"].as_str().expect("name")).collect();
    assert_eq!(named, ["lin_manuel_miranda", "lin_manuel_miranda", "barack_obama"], "{all:?}");
    assert_eq!(all.len(), named.len() + unknown, "one per decided track, none for the too small");
    assert!(
        all.iter()
            .all(|s| s["camera"] == "short_hamilton_clip.mp4"
                && s["last_seen_ms"].as_i64() >= s["first_seen_ms"].as_i64())
    );
    let obama = sightings(&["--subject", "barack_obama"]);
    assert_eq!(obama.len(), 1, "{obama:?}");
    let (first, last) =
        (obama[0]["stream_first_s"].as_f64().expect("s"), obama[0]["stream_last_s"].as_f64().expect("s"));
    assert!((first - 7.04).abs() < 0.15 && (last - 9.14).abs() < 0.3, "Obama's shot: {first}-{last} s");
    assert!(sightings(&["--camera", "elsewhere"]).is_empty());

    // File mode is deterministic: the same events again (but for the wall clock and the new sightings'
    // places in the collection).
    let again = watch_events(&facegate(&[&["watch", path(&clip), "--json"], &gallery[..]].concat()));
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                let fields = e.as_object_mut().expect("object");
                fields.remove("wall_time");
                fields.remove("sighting_seq");
                e
            })
            .collect()
    };
    assert_eq!(strip(&events), strip(&again));

    // The same pictures in a Matroska file (remuxed, not re-encoded): the same events; as Motion JPEG
    // (every picture re-encoded as a JPEG): the same people, at the same times.
    let remux = |name: &str, codec: &[&str]| -> Vec<Value> {
        let out = dir.path().join(name);
        ffmpeg(&clip, codec, &out);
        let events = watch_events(&facegate(&[&["watch", path(&out), "--json"], &gallery[..]].concat()));
        events
            .into_iter()
            .map(|mut e| {
                e["camera"] = Value::from("short_hamilton_clip.mp4");
                e
            })
            .collect()
    };
    assert_eq!(strip(&remux("clip.mkv", &["-c", "copy"])), strip(&events), "MKV with H.264");
    let named = |events: &[Value]| -> Vec<(String, f64)> {
        events
            .iter()
            .filter(|e| e["type"] == "identity.sighted")
            .map(|e| (e["subject"]["name"].as_str().expect("name").into(), e["stream_time_s"].as_f64().expect("t")))
            .collect()
    };
    assert_eq!(named(&remux("clip_mjpeg.mkv", &["-c:v", "mjpeg", "-q:v", "3"])), named(&events), "MKV with MJPEG");
    // Motion JPEG in AVI, as security cameras record it. AVI has no timestamps, only a frame rate: the
    // clip's first picture (0.85 s into the MP4) is put at 0, as the MP4's reading puts it.
    let avi = remux("clip_mjpeg.avi", &["-vf", "setpts=PTS-STARTPTS", "-c:v", "mjpeg", "-q:v", "3"]);
    assert_eq!(named(&avi), named(&events), "AVI with MJPEG");
}

#[test]
fn watch_known_only_keeps_no_stranger_and_a_cooldown_announces_a_person_once() {
    let (_dir, video, data) = hamilton_gallery();
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    let clip = video.join("short_hamilton_clip.mp4");
    let run = ["watch", path(&clip), "--json", "--known-only", "--cooldown", "10"];
    let events = watch_events(&facegate(&[&run[..], &gallery[..]].concat()));
    let announced: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "identity.sighted")
        .map(|e| e["subject"]["name"].as_str().expect("name"))
        .collect();
    // Miranda's close-up (3.0 s) comes within 10 s of the wide shot (0.2 s): announced once.
    assert_eq!(announced, ["lin_manuel_miranda", "barack_obama"]);
    assert!(events.iter().all(|e| e["type"] != "identity.unknown" && e["cluster_id"].is_null()), "no stranger grouped");
    let ended =
        |decision: &str| events.iter().filter(|e| e["type"] == "face.track.ended" && e["decision"] == decision).count();
    assert_eq!(ended("named"), 3, "both Miranda tracks are still named");
    assert!(ended("unknown") >= 5, "strangers' tracks still end as unknown");
    // What is kept: the three named tracks, no stranger.
    let kept = stdout(&facegate(&[&["sightings", "--json"], &gallery[..]].concat()));
    let kept: Vec<Value> = kept.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.iter().all(|s| s["decision"] == "named"));
}

#[test]
fn watch_searches_frames_at_native_resolution_within_the_pixel_budget() {
    let (dir, video, data) = hamilton_gallery();
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    // A wide 1920×1080 view: the clip nine times over (3×3 tiles at its own 640×360), so its faces are
    // small in the frame. In the first frame Alex Lacamoire's face is about 24 px in each tile.
    let clip = dir.path().join("wide.mp4");
    let tiles =
        "[0:v]split=3[a][b][c];[a][b][c]hstack=inputs=3[row];[row]split=3[r1][r2][r3];[r1][r2][r3]vstack=inputs=3";
    let original = video.join("short_hamilton_clip.mp4");
    ffmpeg(&original, &["-filter_complex", tiles, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18"], &clip);
    // Faces under 26 px that appear in the first frame.
    let small_at_start = |budget: u64| -> usize {
        let budget = budget.to_string();
        let run = ["watch", path(&clip), "--json", "--fps", "5", "--detect-pixels", &budget];
        watch_events(&facegate(&[&run[..], &gallery[..]].concat()))
            .iter()
            .filter(|e| e["type"] == "face.track.started" && e["stream_time_s"] == 0.0)
            .filter(|e| {
                let side = |key: &str| e["bbox"][key].as_f64().expect("box");
                side("width").min(side("height")) < 26.0
            })
            .count()
    };
    // Within the default budget (full HD) the frame is searched at its native size: all nine.
    assert_eq!(small_at_start(1920 * 1080), 9, "native resolution");
    // Shrunk to 640×360 for the detector (each face about 8 px), none of them.
    assert_eq!(small_at_start(640 * 360), 0, "shrunk to 640×360");
}

#[test]
fn watch_follows_a_camera_through_a_restart() {
    use std::io::BufRead as _;
    use std::time::{Duration, Instant};

    let (_dir, video, data) = hamilton_gallery();
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    let clip = video.join("short_hamilton_clip.mp4");
    // A camera on loopback serving the clip in a loop, in real time, over RTSP (RTP interleaved in TCP).
    let server = facegate_testing::rtsp::RtspServer::start(&clip, 0);
    let (url, port) = (server.url(), server.port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"));
    command.args([&["watch", &url, "--json", "--duration", "24"], &gallery[..]].concat());
    if std::env::var_os("FACEGATE_MODEL_MIRROR").is_none() {
        command.env("FACEGATE_MODEL_MIRROR", shared_dir().join("models"));
    }
    let mut child = facegate_testing::KillOnDrop(
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("watch"),
    );
    let started = Instant::now();
    let lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout"));
    let reader = std::thread::spawn(move || {
        lines.lines().map_while(Result::ok).map(|l| (started.elapsed(), l)).collect::<Vec<(Duration, String)>>()
    });
    // After the first pass of the clip and the start of the second, the camera goes away for 1.5 s and
    // comes back on the same port (serving the clip from its start again).
    std::thread::sleep(Duration::from_millis(10_500).saturating_sub(started.elapsed()));
    server.stop();
    let stopped = started.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let server = facegate_testing::rtsp::RtspServer::start(&clip, port);
    let restarted = started.elapsed();
    let status = child.0.wait().expect("watch ends after its duration");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(status.success(), "{stderr}");
    drop(server);
    let lines = reader.join().expect("reader");
    let events: Vec<(Duration, Value)> =
        lines.iter().map(|(at, l)| (*at, serde_json::from_str(l).expect("one JSON object per line"))).collect();
    eprintln!("{stderr}");

    let sighted: Vec<(Duration, String)> = events
        .iter()
        .filter(|(_, e)| e["type"] == "identity.sighted")
        .map(|(at, e)| (*at, e["subject"]["name"].as_str().expect("name").to_string()))
        .collect();
    let names = |from: Duration, to: Duration| -> Vec<&str> {
        sighted.iter().filter(|(at, _)| (from..to).contains(at)).map(|(_, n)| n.as_str()).collect()
    };
    // A pass of the clip: Miranda (wide shot), Miranda (close-up), Obama; before the camera went away,
    // and again from its start after it came back.
    let pass = ["lin_manuel_miranda", "lin_manuel_miranda", "barack_obama"];
    let (before, after) = (names(Duration::ZERO, stopped), names(restarted, Duration::MAX));
    assert!(before.starts_with(&pass) && after.starts_with(&pass), "{sighted:?}");
    assert!(sighted.iter().all(|(_, n)| pass.contains(&n.as_str())), "nobody else is named: {sighted:?}");
    // Reconnected within 5 s of the camera's return: a face is seen again by then.
    let back = events
        .iter()
        .find(|(at, e)| *at > restarted && e["type"] == "face.track.started")
        .map(|(at, _)| *at - restarted)
        .expect("faces after the restart");
    assert!(back < Duration::from_secs(5), "seen again {back:?} after the camera came back (it left at {stopped:?})");
    assert!(stderr.contains("2 sessions"), "{stderr}");
    // Stream time runs on across the interruption.
    let times: Vec<f64> = events.iter().map(|(_, e)| e["stream_time_s"].as_f64().expect("time")).collect();
    assert!(times.last().copied().unwrap_or_default() > 15.0, "{times:?}");
}

/// A walk-by video made from LFW (other photos of the enrolled people than their enrolment ones, and
/// strangers), faces growing from 20 to 120 px over 3 s, two or three walkers at once: named tracks are
/// checked for precision and recall, unknown groups for purity, and the time each person took to be
/// named once their face was large enough.
#[test]
fn watch_names_people_walking_by_with_few_false_names() {
    let enrolled_people = [
        "George_W_Bush",
        "Colin_Powell",
        "Tony_Blair",
        "Donald_Rumsfeld",
        "Gerhard_Schroeder",
        "Ariel_Sharon",
        "Hugo_Chavez",
        "Junichiro_Koizumi",
        "Jean_Chretien",
        "John_Ashcroft",
    ];
    let mut strangers: Vec<String> = std::fs::read_dir(lfw_dir().join("lfw-deepfunneled"))
        .expect("LFW")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| !enrolled_people.contains(&name.as_str()))
        .collect();
    strangers.sort();
    let strangers: Vec<String> = strangers.into_iter().step_by(97).take(10).collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known");
    for person in enrolled_people {
        std::fs::create_dir_all(known.join(person)).expect("folder");
        for n in 1..=3 {
            std::fs::copy(lfw_image(person, n), known.join(person).join(format!("{n}.jpg"))).expect("photo");
        }
    }
    let data = dir.path().join("data");
    let gallery = ["--data-dir", path(&data), "--collection", "walk-by"];
    let enrolled = stdout(&facegate(&[&["enroll", path(&known)], &gallery[..]].concat()));
    assert!(enrolled.contains("30 faces enrolled"), "{enrolled}");

    // Each enrolled person walks by twice (photos 10 and 11), each stranger once; a walker starts every
    // 1.2 s, on one of three lanes, alternately left to right and right to left.
    let mut walks = Vec::new();
    let mut who: Vec<(String, bool, u32)> = Vec::new();
    for (i, person) in enrolled_people.iter().enumerate() {
        who.push((person.to_string(), true, 10));
        who.push((person.to_string(), true, 11));
        if let Some(stranger) = strangers.get(i) {
            who.push((stranger.clone(), false, 1));
        }
    }
    for (i, (person, is_enrolled, number)) in who.into_iter().enumerate() {
        let lane = 170.0 + 190.0 * (i % 3) as f64;
        let (from, to) = if i % 2 == 0 { ((150.0, lane), (1130.0, lane)) } else { ((1130.0, lane), (150.0, lane)) };
        let photo = facegate_testing::load_image(&lfw_image(&person, number));
        walks.push(Walk { person, enrolled: is_enrolled, photo, start_s: 0.5 + 1.2 * i as f64, from, to });
    }
    let clip = dir.path().join("walk-by.mp4");
    walk_by_video(&walks, 25, &clip);
    let watched = facegate(&[&["watch", path(&clip), "--json"], &gallery[..]].concat());
    let events = watch_events(&watched);
    eprintln!("{}", String::from_utf8_lossy(&watched.stderr));

    // Each track is the walker whose face is nearest its box's centre when it starts.
    let walker_of = |e: &Value| -> Option<usize> {
        let t = e["stream_time_s"].as_f64()?;
        let b = &e["bbox"];
        let (x, y) = (b["x"].as_f64()? + b["width"].as_f64()? / 2.0, b["y"].as_f64()? + b["height"].as_f64()? / 2.0);
        walks
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                w.face_at(t).map(|(cx, cy, side)| (i, ((cx - x).powi(2) + (cy - y).powi(2)).sqrt(), side))
            })
            .filter(|(_, distance, side)| *distance < side.max(30.0))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, ..)| i)
    };
    let mut track_walker = std::collections::HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "face.track.started") {
        if let Some(walker) = walker_of(e) {
            track_walker.insert(e["track_id"].as_u64().expect("track"), walker);
        }
    }
    let sighted: Vec<(usize, &str, f64)> = events
        .iter()
        .filter(|e| e["type"] == "identity.sighted")
        .map(|e| {
            let track = e["track_id"].as_u64().expect("track");
            let walker = *track_walker.get(&track).unwrap_or_else(|| panic!("track {track} belongs to no walker: {e}"));
            (walker, e["subject"]["name"].as_str().expect("name"), e["stream_time_s"].as_f64().expect("time"))
        })
        .collect();
    let correct: Vec<&(usize, &str, f64)> = sighted.iter().filter(|(w, name, _)| walks[*w].person == *name).collect();
    let false_names = sighted.len() - correct.len();
    let enrolled_walks: Vec<usize> = (0..walks.len()).filter(|i| walks[*i].enrolled).collect();
    let named_walks: std::collections::BTreeSet<usize> = correct.iter().map(|(w, ..)| *w).collect();
    let recall = named_walks.len() as f64 / enrolled_walks.len() as f64;
    let precision = correct.len() as f64 / sighted.len().max(1) as f64;
    // Time to a name, from when the face first reached the 32 px a face needs to be named.
    let mut waits: Vec<f64> = named_walks
        .iter()
        .map(|w| {
            let first = correct.iter().filter(|(x, ..)| x == w).map(|(.., t)| *t).fold(f64::INFINITY, f64::min);
            (first - walks[*w].time_at_size(32.0)).max(0.0)
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    let quantile = |q: f64| waits.get(((waits.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    // Unknown groups: how many of a group's tracks are one stranger's (and strangers are never named).
    let mut groups: std::collections::BTreeMap<u64, Vec<usize>> = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e["type"] == "identity.unknown") {
        let track = e["track_id"].as_u64().expect("track");
        if let (Some(cluster), Some(walker)) = (e["cluster_id"].as_u64(), track_walker.get(&track)) {
            groups.entry(cluster).or_default().push(*walker);
        }
    }
    let (grouped, pure): (usize, usize) = groups.values().fold((0, 0), |(all, pure), members| {
        let most =
            members.iter().map(|m| members.iter().filter(|x| walks[**x].person == walks[*m].person).count()).max();
        (all + members.len(), pure + most.unwrap_or(0))
    });
    let purity = pure as f64 / grouped.max(1) as f64;
    println!(
        "walk-by: {} walks ({} of enrolled people), {} names: precision {precision:.3}, recall {recall:.3}, {false_names} false, \
         {:.2} names per named walk; time to name p50 {:.2} s, p95 {:.2} s; {} unknown tracks in {} groups, purity {purity:.3}",
        walks.len(),
        enrolled_walks.len(),
        sighted.len(),
        sighted.len() as f64 / named_walks.len().max(1) as f64,
        quantile(0.5),
        quantile(0.95),
        grouped,
        groups.len(),
    );
    let wrong: Vec<(String, &str, f64)> = sighted
        .iter()
        .filter(|(w, name, _)| walks[*w].person != *name)
        .map(|(w, name, t)| (walks[*w].person.clone(), *name, *t))
        .collect();
    println!("walk-by false names (walker, name, time): {wrong:?}");
    assert!(false_names <= 1, "false names: {wrong:?}");
    assert!(recall >= 0.8, "recall {recall}: named {named_walks:?} of {enrolled_walks:?}");
    assert!(quantile(0.95) <= 2.0, "time to name {waits:?}");
    assert!(purity >= 0.8, "unknown groups {groups:?}");
}

/// CPU time (user + system, seconds) and resident memory (KiB) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks / 100.0, rss))
}

/// Watches `url` for `seconds` with `args`, sampling the process every 10 s; prints and returns the
/// samples (seconds, CPU seconds, RSS KiB) and the watch's own figures (stderr).
fn watch_live_figures(url: &str, gallery: &[&str], args: &[&str], seconds: u64) -> (Vec<(u64, f64, u64)>, String) {
    let duration = seconds.to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_facegate"));
    command.args([&["watch", url, "--duration", &duration], args, gallery].concat());
    if std::env::var_os("FACEGATE_MODEL_MIRROR").is_none() {
        command.env("FACEGATE_MODEL_MIRROR", shared_dir().join("models"));
    }
    let child =
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().expect("watch");
    let mut child = facegate_testing::KillOnDrop(child);
    let pid = child.0.id();
    let mut samples = Vec::new();
    for at in (10..=seconds.saturating_sub(5)).step_by(10) {
        std::thread::sleep(std::time::Duration::from_secs(10));
        if let Some((cpu, rss)) = cpu_and_rss(pid) {
            samples.push((at, cpu, rss));
        }
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(child.0.wait().expect("watch ends").success(), "{stderr}");
    (samples, stderr)
}

/// Figures of live watching (a benchmark, not a check: `cargo test --release -p facegate-cli --test cli
/// -- --ignored --nocapture watch_figures`): the CPU share and resident memory of one 640×360 camera at
/// 5 frames a second analysed over `FACEGATE_FIGURES_SECONDS` (600), and the frames dropped when a
/// 1920×1080 camera (the clip 3×3 times over) asks for more analysis than the CPU gives.
#[test]
#[ignore = "a benchmark: run it on purpose"]
fn watch_figures_of_live_cameras() {
    let seconds: u64 = std::env::var("FACEGATE_FIGURES_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let (dir, video, data) = hamilton_gallery();
    let gallery = ["--data-dir", path(&data), "--collection", "hamilton"];
    let clip = video.join("short_hamilton_clip.mp4");
    let camera = facegate_testing::rtsp::RtspServer::start(&clip, 0);
    let (samples, stderr) = watch_live_figures(&camera.url(), &gallery, &["--fps", "5"], seconds);
    drop(camera);
    let (first, last) = (samples.first().copied().unwrap_or_default(), samples.last().copied().unwrap_or_default());
    let rss_mib = |kib: u64| kib as f64 / 1024.0;
    let share = (last.1 - first.1) / (last.0 - first.0).max(1) as f64;
    println!(
        "live 640x360 at 5 frames/s analysed, {seconds} s: CPU {:.1} % of one core (after the first 10 s); RSS {:.0} MiB at {} s, \
         {:.0} MiB at {} s, most {:.0} MiB; RSS every 10 s (MiB): {:?}\n{stderr}",
        share * 100.0,
        rss_mib(first.2),
        first.0,
        rss_mib(last.2),
        last.0,
        rss_mib(samples.iter().map(|s| s.2).max().unwrap_or_default()),
        samples.iter().map(|s| rss_mib(s.2).round() as u64).collect::<Vec<_>>(),
    );

    // Overload: 1920×1080 at 30 frames a second, all of them asked for.
    let wide = dir.path().join("wide.mp4");
    let tiles =
        "[0:v]split=3[a][b][c];[a][b][c]hstack=inputs=3[row];[row]split=3[r1][r2][r3];[r1][r2][r3]vstack=inputs=3";
    ffmpeg(&clip, &["-filter_complex", tiles, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"], &wide);
    let camera = facegate_testing::rtsp::RtspServer::start(&wide, 0);
    let (samples, stderr) = watch_live_figures(&camera.url(), &gallery, &["--fps", "30"], 60);
    let peak = samples.iter().map(|s| s.2).max().unwrap_or_default();
    println!("overload, 1920x1080 at 30 frames/s asked, 60 s: RSS at most {:.0} MiB\n{stderr}", rss_mib(peak));
}
