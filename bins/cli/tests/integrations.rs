//! The MQTT integration through a real `facegate serve` process and a real broker (`mosquitto` on
//! loopback) with a subscriber: door and camera events on their topics under the outbox's message ids,
//! Home Assistant discovery (retained, sent again on Home Assistant's birth message), each camera's
//! "people here" state, Frigate's and Double Take's topics, nothing lost while the broker restarts, and
//! the last will when the server is killed. Prints the door-decision-to-broker latency and the outbox's
//! drain rate to the broker.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Api, Server, create_key, read};
use facegate_testing::mqtt::{Broker, Seen, Subscriber};
use serde_json::{Value, json};

fn frame(name: &str) -> Vec<u8> {
    read(&facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(name))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Distinct messages of `topic` by their outbox id (a redelivery carries the same id).
fn by_id(seen: &[Seen]) -> HashMap<String, Value> {
    seen.iter().map(|s| s.json()).filter_map(|v| Some((v["id"].as_str()?.to_string(), v))).collect()
}

#[test]
fn events_reach_the_broker_with_home_assistant_discovery_through_a_restart_and_a_kill() {
    let mut broker = Broker::start();
    let subscriber = Subscriber::start(broker.port(), "test-subscriber");
    let dir = tempfile::tempdir().expect("tempdir");
    let video = common::enrol_hamilton(dir.path());
    let key = create_key(dir.path(), "acme", "admin");
    let reader = create_key(dir.path(), "acme", "search");
    let flags = ["--rate-limit", "1000"];
    let mut server = Server::start(dir.path(), &flags);
    let api = Api::new(&server, &key);

    // Settings: refused outside the egress policy, with bad prefixes or credentials, and to other scopes.
    for (body, why) in [
        (json!({ "url": "mqtt://broker.example.org:1883" }), "plain MQTT to a host not allowed"),
        (json!({ "url": "mqtts://10.1.2.3:8883" }), "an internal address"),
        (json!({ "url": "mqtt://user:pw@127.0.0.1:1883" }), "credentials in the URL"),
        (json!({ "url": broker.url(), "topic_prefix": "a/#" }), "a wildcard prefix"),
        (json!({ "url": broker.url(), "event_types": [] }), "no event"),
        (json!({ "url": broker.url(), "colour": "red" }), "an unknown field"),
    ] {
        let (status, answer) = api.put_json("/v1/integrations/mqtt", body);
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{why}: {answer}");
    }
    let (status, _) = api.get("/v1/integrations/mqtt");
    assert_eq!(status, 404, "none configured yet");
    assert_eq!(Api::new(&server, &reader).put_json("/v1/integrations/mqtt", json!({ "url": broker.url() })).0, 403);

    let (_, body) = api.get("/v1/collections");
    let hamilton = body["collections"][0]["id"].as_str().expect("the enrolled collection").to_string();
    let office = api.collection("office");
    let ann = api.subject(&office, "Ann");
    let images = ["0004_01_00_01_406.jpg", "0004_01_00_01_55.jpg"]
        .map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n));
    assert_eq!(api.enroll(&office, &ann, &images).0, 201);
    let (status, door) = api.post_json(
        "/v1/doors",
        json!({ "name": "Front door", "collection_id": office, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
    );
    assert_eq!(status, 201, "{door}");
    let door = door["id"].as_str().expect("door id").to_string();
    let (status, camera) = api.post_json(
        "/v1/cameras",
        json!({ "name": "Stage", "collection_id": hamilton, "source_url": "rtsp://127.0.0.1:9/none",
                "settings": { "detections_per_second": 1 } }),
    );
    assert_eq!(status, 201, "{camera}");
    let camera = camera["id"].as_str().expect("camera id").to_string();

    let missing = json!({ "url": broker.url(), "last_seen_collections": ["00000000-0000-4000-8000-000000000000"] });
    let (status, body) = api.put_json("/v1/integrations/mqtt", missing);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let settings = json!({
        "url": broker.url(), "username": "facegate", "password": "s3cret", "frigate": true, "double_take": true,
        "event_types": ["door.decision", "identity.sighted", "identity.unknown", "identity.decision"],
        "last_seen_collections": [hamilton], "public_url": format!("{}/", server.url), "image_link_ttl_s": 600,
    });
    let (status, configured) = api.put_json("/v1/integrations/mqtt", settings);
    assert_eq!(status, 200, "{configured}");
    let integration = &configured["integration"];
    assert_eq!((integration["password_set"].as_bool(), integration["password"].as_str()), (Some(true), None));
    assert_eq!(integration["topic_prefix"], "facegate");
    let outbox = integration["id"].as_str().expect("id").to_string();
    let (_, hooks) = api.get("/v1/webhooks");
    assert_eq!(hooks["webhooks"].as_array().map(Vec::len), Some(0), "not a webhook: {hooks}");
    assert_eq!(
        api.http
            .delete(format!("{}/v1/webhooks/{outbox}", api.url))
            .header("x-api-key", &key)
            .send()
            .expect("delete")
            .status(),
        404
    );
    let (_, changes) = api.get("/v1/changes");
    let change = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == "integration.configured")
        .cloned();
    assert!(change.is_some_and(|c| !c.to_string().contains("s3cret")), "recorded, never with its password");

    // A door decision: on the door's topic under the outbox's message id, after the discovery configs.
    let door_topic = format!("facegate/door/{door}/event");
    let (status, decision) =
        api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame("0004_01_06_03_210.jpg")]);
    assert_eq!((status, decision["access"].as_str()), (200, Some("granted")), "{decision}");
    let granted = subscriber.wait_for(&door_topic, 1, Duration::from_secs(20)).remove(0).json();
    assert_eq!((granted["event_type"].as_str(), granted["type"].as_str()), (Some("granted"), Some("door.decision")));
    assert_eq!(granted["data"]["door_id"], door.as_str());
    let (_, log) = api.get(&format!("/v1/webhooks/{outbox}/deliveries"));
    let delivered: Vec<&Value> =
        log["deliveries"].as_array().expect("log").iter().filter(|d| d["event_type"] == "door.decision").collect();
    assert_eq!(delivered.len(), 1, "{log}");
    assert_eq!(
        (delivered[0]["message_id"].as_str(), delivered[0]["state"].as_str()),
        (granted["id"].as_str(), Some("delivered"))
    );
    assert_eq!(subscriber.on("facegate/status").last().map(|s| s.payload.clone()).as_deref(), Some("online"));
    let door_config = format!("homeassistant/device/facegate_door_{door}/config");
    let camera_config = format!("homeassistant/device/facegate_camera_{camera}/config");
    let announced = subscriber.wait_for(&door_config, 1, Duration::from_secs(5)).remove(0).json();
    let component = &announced["cmps"][format!("facegate_door_{door}_decision")];
    assert_eq!(
        (component["p"].as_str(), component["state_topic"].as_str()),
        (Some("event"), Some(door_topic.as_str()))
    );
    assert_eq!(component["event_types"], json!(["granted", "denied", "panel_denied"]));
    assert_eq!(
        (announced["dev"]["name"].as_str(), announced["availability_topic"].as_str()),
        (Some("Front door"), Some("facegate/status"))
    );
    let camera_announced = subscriber.wait_for(&camera_config, 1, Duration::from_secs(5)).remove(0).json();
    let people = &camera_announced["cmps"][format!("facegate_camera_{camera}_people")];
    assert_eq!((people["p"].as_str(), people["state_topic"].as_str()), (Some("sensor"), Some("facegate/stage/people")));
    let image = &camera_announced["cmps"][format!("facegate_camera_{camera}_last_face")];
    assert_eq!((image["p"].as_str(), image["url_topic"].as_str()), (Some("image"), Some("facegate/stage/last_face")));

    // A late subscriber (Home Assistant starting after facegate) gets the configs and the status retained.
    let late = Subscriber::start(broker.port(), "late-subscriber");
    late.wait_for(&door_config, 1, Duration::from_secs(5));
    let retained = late.on("facegate/status");
    assert!(retained.iter().any(|s| s.retain && s.payload == "online"), "{retained:?}");
    assert!(
        late.on(&door_config).iter().all(|s| s.retain) && late.on(&door_topic).is_empty(),
        "events are not retained"
    );
    // Home Assistant's birth message: every config again.
    std::thread::sleep(Duration::from_millis(300));
    let (doors_announced, cameras_announced) = (subscriber.on(&door_config).len(), subscriber.on(&camera_config).len());
    subscriber.publish("homeassistant/status", "online", false);
    subscriber.wait_for(&door_config, doors_announced + 1, Duration::from_secs(10));
    subscriber.wait_for(&camera_config, cameras_announced + 1, Duration::from_secs(10));

    // A camera's people (a video uploaded as camera "Stage"): named and unknown on the camera's topic,
    // the names on Frigate's and Double Take's topics, and who is here now, retained.
    let (status, seen) = api.post_image(
        &format!("/v1/collections/{hamilton}/videos?camera=Stage"),
        read(&video.join("short_hamilton_clip.mp4")),
        "video/mp4",
    );
    assert_eq!(status, 200, "{seen}");
    let events = seen["events"].as_array().expect("events");
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    let ignored = events.iter().filter(|e| e["type"] == "face.track.ended" && e["decision"] == "too_small").count();
    let decided = count("identity.sighted") + count("identity.unknown") + ignored;
    subscriber.wait_for("facegate/stage/event", decided, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let on_stage = by_id(&subscriber.on("facegate/stage/event"));
    assert_eq!(
        on_stage.len(),
        decided,
        "one message per decision and per ignored face, no other track events (not asked for): {on_stage:?}"
    );
    let ignored_on_stage = on_stage.values().filter(|m| m["event_type"] == "ignored").count();
    assert_eq!(ignored_on_stage, ignored, "faces too small to be named are `ignored`");
    let mut named: Vec<&str> = on_stage
        .values()
        .filter(|m| m["event_type"] == "known")
        .filter_map(|m| m["data"]["subject"]["name"].as_str())
        .collect();
    named.sort_unstable();
    assert_eq!(named, ["barack_obama", "lin_manuel_miranda", "lin_manuel_miranda"]);
    assert!(
        on_stage.values().any(|m| m["event_type"] == "unknown" && m["data"]["cluster_id"].is_u64()),
        "the clip has strangers"
    );
    let frigate: Vec<Value> = subscriber.on("frigate/tracked_object_update").iter().map(Seen::json).collect();
    assert_eq!(frigate.len(), 3, "{frigate:?}");
    assert!(
        frigate.iter().all(|f| f["type"] == "face" && f["camera"] == "Stage" && f["score"].as_f64() > Some(0.3)),
        "{frigate:?}"
    );
    assert_eq!(subscriber.on("double-take/matches/lin_manuel_miranda").len(), 2);
    assert_eq!(subscriber.on("double-take/matches/barack_obama")[0].json()["match"]["name"], "barack_obama");
    let states = || -> Vec<Value> { subscriber.on("facegate/stage/people").iter().map(Seen::json).collect() };
    subscriber.wait_until(Duration::from_secs(10), "everyone gone from the stage at the end", || {
        states().last().is_some_and(|s| s["count"] == 0 && s["known"] == json!([]))
    });
    std::thread::sleep(Duration::from_millis(500));
    let states = states();
    assert!(
        states.iter().any(|s| s["count"].as_u64() >= Some(1) && s["known"].as_array().is_some_and(|k| !k.is_empty())),
        "{states:?}"
    );
    assert_eq!(states.last().map(|s| s["count"].clone()), Some(json!(0)), "and it stays so: {states:?}");

    // The camera's "last face": a signed link to the best shot of each track that left a sighting,
    // retained; it opens without an API key, an altered one does not, and the image never goes on the
    // broker.
    let sightings = events.iter().filter(|e| e["type"] == "face.track.ended" && e["sighting_seq"].is_i64()).count();
    assert!(sightings >= 3, "{events:?}");
    let faces = subscriber.wait_for("facegate/stage/last_face", sightings, Duration::from_secs(10));
    assert!(faces.iter().all(|f| f.payload.starts_with(&format!("{}/v1/best-shots/", server.url))), "{faces:?}");
    let link = faces.last().expect("a last face").payload.clone();
    let later = Subscriber::start(broker.port(), "later-subscriber");
    let kept = later.wait_for("facegate/stage/last_face", 1, Duration::from_secs(5));
    assert_eq!((kept[0].retain, &kept[0].payload), (true, &link), "retained");
    let anonymous = reqwest::blocking::Client::new();
    let opened = anonymous.get(&link).send().expect("fetch");
    assert_eq!(opened.status(), 200, "{link}");
    assert_eq!(opened.headers()["content-type"], "image/jpeg");
    assert!(opened.bytes().expect("body").starts_with(&[0xff, 0xd8]), "a JPEG");
    let altered = link.replace("expires=", "expires=9");
    let refused = anonymous.get(&altered).send().expect("fetch");
    assert_eq!(refused.status(), 403, "{altered}");
    assert_eq!(refused.json::<Value>().expect("envelope")["error"]["code"], "forbidden");
    assert!(subscriber.seen().iter().all(|s| s.payload.len() < 16 * 1024), "no image on the broker");

    // "Last seen" sensors for the people of the collection that opted in: one retained state each, and
    // a Home Assistant device with a timestamp sensor.
    let (_, people) = api.get(&format!("/v1/collections/{hamilton}/subjects"));
    let id_of = |name: &str| {
        people["subjects"].as_array().expect("subjects").iter().find(|p| p["name"] == name).expect("enrolled")["id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    for name in ["lin_manuel_miranda", "barack_obama"] {
        let person = id_of(name);
        let seen = subscriber.wait_for(&format!("facegate/person/{person}/last_seen"), 1, Duration::from_secs(10));
        let state = seen.last().expect("state").json();
        assert_eq!((state["name"].as_str(), state["camera"].as_str()), (Some(name), Some("Stage")), "{state}");
        assert!(state["at"].as_str().is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()), "{state}");
        let config = subscriber.wait_for(
            &format!("homeassistant/device/facegate_person_{person}/config"),
            1,
            Duration::from_secs(5),
        );
        let sensor = &config[0].json()["cmps"][format!("facegate_person_{person}_last_seen")];
        assert_eq!(
            (sensor["p"].as_str(), sensor["device_class"].as_str()),
            (Some("sensor"), Some("timestamp")),
            "{sensor}"
        );
    }
    assert_eq!(
        subscriber
            .seen()
            .iter()
            .filter(|s| s.topic.contains("/person/"))
            .map(|s| s.topic.clone())
            .collect::<HashSet<_>>()
            .len(),
        2
    );

    // Door decisions to the broker: the latency from the answer to the message.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let before = subscriber.on(&door_topic).len();
        let (status, _) = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame("0004_01_06_03_92.jpg")]);
        let answered = Instant::now();
        assert_eq!(status, 200);
        let arrived = subscriber.wait_for(&door_topic, before + 1, Duration::from_secs(10));
        latencies.push(arrived[before].at.saturating_duration_since(answered).as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "door decision to the MQTT subscriber after the answer (20): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    // The broker goes away: facegate keeps answering, the outbox keeps every event, and all arrive
    // once it is back (at least once: repeats carry the same id).
    broker.stop();
    let (status, embedded) = api.post_image("/v1/embed", frame("0004_01_06_03_210.jpg"), "image/jpeg");
    assert_eq!(status, 200, "{embedded}");
    let template = common::main_face(&embedded)["embedding"].clone();
    let mut decisions = Vec::new();
    for name in ["0004_01_06_03_210.jpg", "0013_01_07_03_240.jpg"] {
        let (status, answer) = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame(name)]);
        assert_eq!(status, 200, "facegate answers without its broker: {answer}");
        decisions.push(answer["access"].as_str().expect("access").to_string());
    }
    assert_eq!(decisions, ["granted", "denied"]);
    let backlog = 200;
    for _ in 0..backlog {
        let (status, body) =
            api.post_json(&format!("/v1/collections/{office}/search"), json!({ "template": template }));
        assert_eq!(status, 200, "{body}");
    }
    let collection_topic = format!("facegate/collection/{office}/event");
    let (doors_before, searches_before) =
        (by_id(&subscriber.on(&door_topic)).len(), by_id(&subscriber.on(&collection_topic)).len());
    let (_, status_now) = api.get("/v1/integrations/mqtt");
    assert_eq!(status_now["link"]["connected"], false, "{status_now}");
    assert!(status_now["link"]["last_error"].is_string(), "{status_now}");
    broker.restart();
    let back = Instant::now();
    subscriber.wait_until(Duration::from_secs(90), "every event queued while the broker was down", || {
        by_id(&subscriber.on(&door_topic)).len() == doors_before + 2
            && by_id(&subscriber.on(&collection_topic)).len() == searches_before + backlog
    });
    let arrivals: Vec<Instant> =
        subscriber.on(&collection_topic).iter().map(|s| s.at).filter(|at| *at > back).collect();
    if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
        let span = last.duration_since(*first).as_secs_f64().max(1e-3);
        println!(
            "MQTT outbox drain after the broker came back: {} events in {:.2} s ({:.0} events/s; first {:.1} s after the restart)",
            arrivals.len(),
            span,
            arrivals.len() as f64 / span,
            first.duration_since(back).as_secs_f64()
        );
    }
    let late_doors: Vec<String> = by_id(&subscriber.on(&door_topic))
        .values()
        .map(|m| m["event_type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(late_doors.iter().filter(|t| *t == "denied").count() >= 1, "{late_doors:?}");
    let (_, status_now) = api.get("/v1/integrations/mqtt");
    assert_eq!(status_now["link"]["connected"], true, "{status_now}");

    // Settings change without a restart: a new prefix takes effect at the next event.
    let (status, _) =
        api.put_json("/v1/integrations/mqtt", json!({ "url": broker.url(), "topic_prefix": "site1/facegate" }));
    assert_eq!(status, 200);
    let (_, shown) = api.get("/v1/integrations/mqtt");
    assert_eq!(shown["integration"]["password_set"], true, "a password left out stays: {shown}");
    let (status, _) = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame("0004_01_06_03_210.jpg")]);
    assert_eq!(status, 200);
    subscriber.wait_for(&format!("site1/facegate/door/{door}/event"), 1, Duration::from_secs(20));

    // Killed: the broker says so with facegate's last will.
    let offline = |s: &Seen| s.topic == "site1/facegate/status" && s.payload == "offline";
    assert!(!subscriber.seen().iter().any(offline));
    server.kill();
    subscriber.wait_until(Duration::from_secs(10), "the last will", || subscriber.seen().iter().any(offline));

    // Every message facegate published carried a distinct id per event, and none was lost.
    let ids: HashSet<String> =
        subscriber.seen().iter().filter_map(|s| s.json()["id"].as_str().map(str::to_string)).collect();
    assert!(ids.len() >= 1 + 20 + 2 + backlog + decided, "{}", ids.len());
}

/// Removing the integration says `offline`, deletes its queued events and stops publishing.
#[test]
fn a_removed_integration_publishes_nothing_more() {
    let broker = Broker::start();
    let subscriber = Subscriber::start(broker.port(), "removal-subscriber");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let (status, _) = api.put_json(
        "/v1/integrations/mqtt",
        json!({ "url": broker.url(), "event_types": ["subject.enrolled"], "home_assistant": false }),
    );
    assert_eq!(status, 200);
    let office = api.collection("office");
    let ann = api.subject(&office, "Ann");
    let images =
        ["0004_01_00_01_406.jpg"].map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n));
    assert_eq!(api.enroll(&office, &ann, &images).0, 201);
    let topic = format!("facegate/collection/{office}/event");
    let enrolled = subscriber.wait_for(&topic, 1, Duration::from_secs(20)).remove(0).json();
    assert_eq!(
        (enrolled["type"].as_str(), enrolled["event_type"].as_str()),
        (Some("subject.enrolled"), Some("subject_enrolled"))
    );
    assert!(subscriber.seen().iter().all(|s| !s.topic.starts_with("homeassistant/")), "discovery off");
    let removed =
        api.http.delete(format!("{}/v1/integrations/mqtt", api.url)).header("x-api-key", &key).send().expect("delete");
    assert_eq!(removed.status(), 204);
    assert_eq!(api.get("/v1/integrations/mqtt").0, 404);
    subscriber.wait_until(Duration::from_secs(5), "offline on removal", || {
        subscriber.on("facegate/status").last().is_some_and(|s| s.payload == "offline")
    });
    let images =
        ["0004_01_00_01_55.jpg"].map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n));
    assert_eq!(api.enroll(&office, &ann, &images).0, 201);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(subscriber.on(&topic).len(), 1, "nothing after the removal");

    // Removed through another server sharing the store: this server's link closes itself within a
    // minute (it checks that its integration still exists), saying `offline`.
    let settings = json!({ "url": broker.url(), "event_types": ["subject.enrolled"], "home_assistant": false });
    assert_eq!(api.put_json("/v1/integrations/mqtt", settings).0, 200);
    subscriber.wait_until(Duration::from_secs(10), "online again", || {
        subscriber.on("facegate/status").last().is_some_and(|s| s.payload == "online")
    });
    let other = Server::start(dir.path(), &[]);
    let removed = api
        .http
        .delete(format!("{}/v1/integrations/mqtt", other.url))
        .header("x-api-key", &key)
        .send()
        .expect("delete");
    assert_eq!(removed.status(), 204);
    let started = std::time::Instant::now();
    subscriber.wait_until(Duration::from_secs(75), "offline once the first server noticed", || {
        subscriber.on("facegate/status").last().is_some_and(|s| s.payload == "offline")
    });
    println!("a link removed through another server closed after {:.1} s", started.elapsed().as_secs_f64());
}
