//! A collection moves to another pack through a real server: kept frames are re-embedded in the
//! background while the collection keeps answering, a SIGKILL mid-way is resumed by the next server,
//! a face enrolled meanwhile gets both templates, and afterwards the same people are named without
//! any image sent again.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Api, Server, create_key, facegate, main_face};
use facegate_testing::{LFW_TEN_PEOPLE, lfw_image};
use serde_json::{Value, json};

/// Both packs loaded; one kept face per migration transaction, so a kill lands between batches.
const ENV: [(&str, &str); 2] = [("FACEGATE_PACKS", "mobilefacenet,omz-0095"), ("FACEGATE_MIGRATION_BATCH", "1")];

fn start(data: &std::path::Path) -> Server {
    Server::start_with(data, &[], Stdio::inherit(), &ENV)
}

fn progress(api: &Api, collection: &str) -> Value {
    let (status, body) = api.get(&format!("/v1/collections/{collection}/migrations"));
    assert_eq!(status, 200, "{body}");
    body["migrations"][0].clone()
}

fn recognized(api: &Api, collection: &str, person: &str, number: u32) -> (String, String) {
    let (status, body) = api.recognize(collection, &lfw_image(person, number));
    assert_eq!(status, 200, "{body}");
    let face = main_face(&body);
    (
        face["result"].as_str().unwrap_or_default().to_string(),
        face["subject"]["name"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_collection_moves_to_another_pack_through_a_kill_9_without_anyone_enrolling_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let key = create_key(&data, "acme", "admin");
    let mut server = start(&data);
    let api = Api::new(&server, &key);

    let (status, created) = api.post_json("/v1/collections", json!({ "name": "staff", "keep_crops": true }));
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["pack"].as_str(), created["keep_crops"].as_bool()), (Some("mobilefacenet"), Some(true)));
    let collection = created["id"].as_str().expect("id").to_string();
    for person in LFW_TEN_PEOPLE {
        let subject = api.subject(&collection, person);
        let images: Vec<PathBuf> = (1..=4).map(|n| lfw_image(person, n)).collect();
        let (status, body) = api.enroll(&collection, &subject, &images);
        assert_eq!(status, 201, "{body}");
        let (_, faces) = api.get(&format!("/v1/collections/{collection}/subjects/{subject}/faces"));
        assert!(faces["faces"].as_array().expect("faces").iter().all(|f| f["crop_kept"] == true), "{faces}");
    }
    let (status, none) = api.get(&format!("/v1/collections/{collection}/migrations"));
    assert_eq!((status, none), (200, json!({ "migrations": [] })));
    let (status, refused) =
        api.post_json(&format!("/v1/collections/{collection}/migrations"), json!({ "pack": "nope" }));
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("unknown_pack")), "{refused}");
    let (status, refused) =
        api.post_json(&format!("/v1/collections/{collection}/migrations"), json!({ "pack": "mobilefacenet" }));
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("conflict")), "{refused}");

    let (status, started) =
        api.post_json(&format!("/v1/collections/{collection}/migrations"), json!({ "pack": "omz-0095" }));
    assert_eq!(status, 202, "{started}");
    assert_eq!((started["state"].as_str(), started["faces_total"].as_u64()), (Some("running"), Some(40)));
    // The collection answers with its old pack meanwhile.
    assert_eq!(recognized(&api, &collection, "Angelina_Jolie", 10), ("match".into(), "Angelina_Jolie".into()));
    let until = Instant::now() + Duration::from_secs(30);
    let at_kill = loop {
        let now = progress(&api, &collection);
        if now["faces_migrated"].as_u64().unwrap_or(0) >= 2 || Instant::now() > until {
            break now;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    server.kill(); // SIGKILL: no shutdown of any kind.
    assert_eq!(at_kill["state"], "running", "killed mid-way: {at_kill}");
    let done_at_kill = at_kill["faces_migrated"].as_u64().expect("count");
    assert!((2..40).contains(&done_at_kill), "{at_kill}");

    // Enrolled from the command line while no server runs: the face gets both packs' templates.
    let known = dir.path().join("known/Gerhard_Schroeder");
    std::fs::create_dir_all(&known).expect("folder");
    std::fs::copy(lfw_image("Gerhard_Schroeder", 1), known.join("1.jpg")).expect("copy");
    let output = facegate()
        .args(["enroll", "--tenant", "acme", "--collection", "staff", "--data-dir"])
        .arg(&data)
        .arg(dir.path().join("known"))
        .output()
        .expect("enroll runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let server = start(&data);
    let api = Api::new(&server, &key);
    let until = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let now = progress(&api, &collection);
        if now["state"] == "finished" || Instant::now() > until {
            break now;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(finished["state"], "finished", "the restarted server resumed and finished: {finished}");
    assert_eq!((finished["faces_total"].as_u64(), finished["faces_migrated"].as_u64()), (Some(41), Some(41)));
    assert_eq!(finished["faces_without_crop"], json!([]), "{finished}");
    let (_, now) = api.get(&format!("/v1/collections/{collection}"));
    assert_eq!(now["pack"], "omz-0095", "{now}");
    assert_eq!(now["embedding_size"], 256, "{now}");

    for person in LFW_TEN_PEOPLE.iter().chain(&["Gerhard_Schroeder"]) {
        assert_eq!(recognized(&api, &collection, person, 10), ("match".into(), person.to_string()), "{person}");
    }
    assert_eq!(recognized(&api, &collection, "Hugo_Chavez", 1).0, "unknown");
    let (_, events) = api.get(&format!("/v1/collections/{collection}/events"));
    let migrate: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "migrate")
        .filter_map(|e| e["result"].as_str())
        .collect();
    assert_eq!(migrate, vec!["started", "switched"], "{events}");
}
