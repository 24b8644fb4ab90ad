//! What facegate publishes on a broker, made from the outbox's events: no I/O here.
//!
//! - `<prefix>/door/<door id>/event`: a door's decisions; `<prefix>/<camera>/event`: a camera's named
//!   and unknown people, the faces it ignored (too small to be named), and its tracks when asked for;
//!   `<prefix>/collection/<id>/event`: decisions, enrolments and erasures. The payload is the webhook body (`type`, `timestamp`, `data`) with the
//!   outbox message `id` (the same on every retry: a subscriber drops repeats by it) and an `event_type`
//!   (`granted`, `denied`, `known`, `unknown`, `ignored`, ...) as Home Assistant's event entities read it.
//! - `<prefix>/<camera>/people`: who is in front of a camera now, retained.
//! - `<prefix>/<camera>/last_face`: where facegate has a public address, a signed, expiring link to the
//!   best shot of the camera's last track that left a sighting, retained (never the image itself).
//! - `homeassistant/device/<id>/config`: one retained discovery config per camera and per door.
//! - Opt-in: Frigate's `frigate/tracked_object_update` (type `face`) and Double Take's
//!   `double-take/matches/<name>` for named people.
//!
//! A camera's topic level is its name made safe for topics (lowercase letters, digits, `_`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use facegate_gallery::MqttConfig;
use facegate_store::{Camera, Door, EventType, WireName};
use serde_json::{Value, json};

/// Home Assistant's discovery prefix and the topic of its birth and last will.
pub const HOME_ASSISTANT: &str = "homeassistant";
/// Where Home Assistant says it came online (then every config is sent again).
pub const HOME_ASSISTANT_STATUS: &str = "homeassistant/status";
/// Frigate's topic for face results.
pub const FRIGATE_TOPIC: &str = "frigate/tracked_object_update";
/// Track ids remembered as ended, per camera (a late start of an ended track is not counted).
const ENDED_KEPT: usize = 256;

/// One message to publish (QoS 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Where.
    pub topic: String,
    /// What: JSON, or a string sent as its bare text (`online`).
    pub payload: Value,
    /// Kept by the broker for later subscribers.
    pub retain: bool,
}

impl Message {
    /// The payload's bytes: a string's text, anything else as JSON.
    pub fn bytes(&self) -> Vec<u8> {
        match &self.payload {
            Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        }
    }

    fn event(topic: String, payload: Value) -> Self {
        Self { topic, payload, retain: false }
    }

    fn retained(topic: String, payload: Value) -> Self {
        Self { topic, payload, retain: true }
    }
}

/// A camera's name as one topic level: lowercase ASCII letters and digits, anything else `_`.
pub fn topic_level(name: &str) -> String {
    let level: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if level.trim_matches('_').is_empty() { "camera".into() } else { level }
}

/// The topic of the link's state: `online`, or `offline` as its last will.
pub fn status_topic(config: &MqttConfig) -> String {
    format!("{}/status", config.topic_prefix)
}

fn people_topic(config: &MqttConfig, camera_level: &str) -> String {
    format!("{}/{camera_level}/people", config.topic_prefix)
}

fn last_face_topic(config: &MqttConfig, camera_level: &str) -> String {
    format!("{}/{camera_level}/last_face", config.topic_prefix)
}

/// The sighting whose best shot becomes its camera's "last face": a track's end that left one, where
/// the settings give facegate's public address. Its collection and `seq`, and the camera's topic level.
pub fn last_face_sighting(config: &MqttConfig, event_type: EventType, body: &Value) -> Option<(String, i64, String)> {
    let data = &body["data"];
    if event_type != EventType::FaceTrackEnded || config.public_url.is_none() {
        return None;
    }
    let (collection, seq) = (data["collection_id"].as_str()?, data["sighting_seq"].as_i64()?);
    Some((collection.to_string(), seq, topic_level(data["camera"].as_str()?)))
}

/// A camera's "last face": the link (path and query from the gallery) after facegate's public address,
/// retained as bare text (Home Assistant's image entity reads it from its `url_topic`).
pub fn last_face(config: &MqttConfig, camera_level: &str, link: &str) -> Option<Message> {
    let public = config.public_url.as_deref()?;
    Some(Message::retained(last_face_topic(config, camera_level), Value::String(format!("{public}{link}"))))
}

/// What Home Assistant's event entity reads from an event: its `event_type`.
fn short_type(event_type: EventType, data: &Value) -> String {
    match event_type {
        // A door with a reader: the panel's denial is its own event type.
        EventType::DoorDecision if data["reason"] == "panel_denied" => "panel_denied".into(),
        EventType::DoorDecision => data["result"].as_str().unwrap_or("denied").to_string(),
        EventType::IdentitySighted => "known".into(),
        EventType::IdentityUnknown => "unknown".into(),
        EventType::FaceTrackStarted => "track_started".into(),
        // A face the camera saw but never looked at closely (it stayed too small to be named).
        EventType::FaceTrackEnded if data["decision"] == "too_small" => "ignored".into(),
        EventType::FaceTrackEnded => "track_ended".into(),
        other => other.as_str().replace('.', "_"),
    }
}

/// The messages of one queued event (none when its type is not among those published, or its body is
/// not an object); its compatibility messages where asked for.
pub fn event_messages(config: &MqttConfig, message_id: &str, event_type: EventType, body: &Value) -> Vec<Message> {
    let Value::Object(mut body) = body.clone() else {
        return Vec::new();
    };
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let prefix = &config.topic_prefix;
    let topic = match event_type {
        EventType::DoorDecision => format!("{prefix}/door/{}/event", data["door_id"].as_str().unwrap_or("unknown")),
        EventType::IdentitySighted
        | EventType::IdentityUnknown
        | EventType::FaceTrackStarted
        | EventType::FaceTrackEnded => {
            format!("{prefix}/{}/event", topic_level(data["camera"].as_str().unwrap_or_default()))
        }
        _ => format!("{prefix}/collection/{}/event", data["collection_id"].as_str().unwrap_or("unknown")),
    };
    // Where a camera's faces are published, a face it ignored is one of its events too (`ignored`).
    let ignored = event_type == EventType::FaceTrackEnded
        && data["decision"] == "too_small"
        && config.event_types.contains(&EventType::IdentityUnknown);
    let mut messages = Vec::new();
    if config.event_types.contains(&event_type) || ignored {
        body.insert("id".into(), json!(message_id));
        body.insert("event_type".into(), json!(short_type(event_type, &data)));
        messages.push(Message::event(topic, Value::Object(body.clone())));
    }
    if event_type == EventType::IdentitySighted {
        messages.extend(compatibility(config, message_id, &body, &data));
    }
    messages
}

/// Frigate's and Double Take's messages for a named person, where the settings ask for them.
fn compatibility(
    config: &MqttConfig,
    message_id: &str,
    body: &serde_json::Map<String, Value>,
    data: &Value,
) -> Vec<Message> {
    let name = data["subject"]["name"].as_str().unwrap_or_default();
    let camera = data["camera"].as_str().unwrap_or_default();
    let score = data["score"].as_f64().unwrap_or_default();
    let epoch_s = body
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
    let mut messages = Vec::new();
    if config.frigate {
        let update = json!({
            "type": "face",
            "id": format!("{camera}-{}", data["track_id"]),
            "name": name,
            "score": score,
            "camera": camera,
            "timestamp": epoch_s,
        });
        messages.push(Message::event(FRIGATE_TOPIC.into(), update));
    }
    if config.double_take && !name.is_empty() {
        let matched = json!({
            "id": message_id,
            "camera": camera,
            "timestamp": body.get("timestamp"),
            "match": {
                "name": name,
                "confidence": (score * 1000.0).round() / 10.0,
                "match": true,
                "box": data["bbox"],
                "detector": "facegate",
            },
        });
        messages.push(Message::event(format!("double-take/matches/{}", topic_level(name)), matched));
    }
    messages
}

/// Where a collection opted in (`last_seen_collections`), a named person's "last seen" sensor: its
/// discovery config's id, the config, and the person's state (retained at
/// `<prefix>/person/<subject>/last_seen`: when, where, as whom).
pub fn last_seen(config: &MqttConfig, body: &Value) -> Option<(String, Message, Message)> {
    let data = &body["data"];
    let collection = data["collection_id"].as_str()?;
    if body["type"] != "identity.sighted" || !config.last_seen_collections.iter().any(|c| c.as_str() == collection) {
        return None;
    }
    let (person, name) = (data["subject"]["id"].as_str()?, data["subject"]["name"].as_str()?);
    let topic = format!("{}/person/{person}/last_seen", config.topic_prefix);
    let state = json!({ "at": body["timestamp"], "name": name, "camera": data["camera"], "score": data["score"] });
    let id = format!("facegate_person_{person}");
    let components = json!({
        format!("{id}_last_seen"): {
            "p": "sensor",
            "name": "Last seen",
            "unique_id": format!("{id}_last_seen"),
            "device_class": "timestamp",
            "state_topic": topic,
            "value_template": "{{ value_json.at }}",
            "json_attributes_topic": topic,
        }
    });
    Some((id.clone(), device_config(config, &id, name, "Person", components), Message::retained(topic, state)))
}

/// Who is in front of each camera: its open tracks and whom they were named as.
#[derive(Debug, Default)]
pub struct People {
    open: HashMap<String, BTreeMap<i64, Option<String>>>,
    ended: HashMap<String, VecDeque<i64>>,
}

impl People {
    /// Follows one track event; the camera's retained state to publish when it changed.
    pub fn follow(&mut self, config: &MqttConfig, event_type: EventType, body: &Value) -> Option<Message> {
        let data = &body["data"];
        let camera = topic_level(data["camera"].as_str()?);
        let track = data["track_id"].as_i64()?;
        let ended = self.ended.entry(camera.clone()).or_default();
        let open = self.open.entry(camera.clone()).or_default();
        let changed = match event_type {
            _ if ended.contains(&track) => false,
            EventType::FaceTrackStarted | EventType::IdentityUnknown => {
                open.entry(track).or_insert(None);
                true
            }
            EventType::IdentitySighted => {
                open.insert(track, data["subject"]["name"].as_str().map(str::to_string));
                true
            }
            EventType::FaceTrackEnded => {
                open.remove(&track);
                ended.push_back(track);
                if ended.len() > ENDED_KEPT {
                    ended.pop_front();
                }
                true
            }
            _ => false,
        };
        changed.then(|| self.state(config, &camera))
    }

    /// A camera's retained state: how many faces, and the names of the known ones.
    pub fn state(&self, config: &MqttConfig, camera_level: &str) -> Message {
        let open = self.open.get(camera_level);
        let count = open.map_or(0, BTreeMap::len);
        let mut known: Vec<&str> = open.into_iter().flatten().filter_map(|(_, n)| n.as_deref()).collect();
        known.sort_unstable();
        known.dedup();
        let unknown = open.map_or(0, |o| o.values().filter(|n| n.is_none()).count());
        let state = json!({ "count": count, "known": known, "unknown": unknown });
        Message::retained(people_topic(config, camera_level), state)
    }
}

/// One device's retained discovery config: its `components`, unavailable while facegate is offline.
fn device_config(config: &MqttConfig, id: &str, name: &str, model: &str, components: Value) -> Message {
    let version = env!("CARGO_PKG_VERSION");
    let device = json!({
        "dev": { "ids": [id], "name": name, "mf": "facegate", "mdl": model, "sw": version },
        "o": { "name": "facegate", "sw": version },
        "cmps": components,
        "availability_topic": status_topic(config),
        "qos": 1,
    });
    Message::retained(format!("{HOME_ASSISTANT}/device/{id}/config"), device)
}

/// Home Assistant's discovery configs: one device per door (an `event` entity: granted, denied,
/// panel_denied) and per camera (an `event` entity: known, unknown, ignored; a "people here" `sensor`;
/// a "last face" `image` where facegate has a public address), all unavailable while facegate's link is
/// offline.
pub fn discovery(config: &MqttConfig, cameras: &[Camera], doors: &[Door]) -> Vec<Message> {
    let prefix = &config.topic_prefix;
    let mut messages = Vec::new();
    for door in doors {
        let id = format!("facegate_door_{}", door.id);
        let components = json!({
            format!("{id}_decision"): {
                "p": "event",
                "name": "Decision",
                "unique_id": format!("{id}_decision"),
                "event_types": ["granted", "denied", "panel_denied"],
                "state_topic": format!("{prefix}/door/{}/event", door.id),
            }
        });
        messages.push(device_config(config, &id, &door.name, "Door", components));
    }
    for camera in cameras {
        let id = format!("facegate_camera_{}", camera.id);
        let level = topic_level(&camera.name);
        let people = people_topic(config, &level);
        let mut components = json!({
            format!("{id}_face"): {
                "p": "event",
                "name": "Face",
                "unique_id": format!("{id}_face"),
                "event_types": ["known", "unknown", "ignored"],
                "state_topic": format!("{prefix}/{level}/event"),
            },
            format!("{id}_people"): {
                "p": "sensor",
                "name": "People here",
                "unique_id": format!("{id}_people"),
                "state_topic": people,
                "value_template": "{{ value_json.count }}",
                "json_attributes_topic": people,
                "state_class": "measurement",
            }
        });
        if config.public_url.is_some() {
            components[format!("{id}_last_face")] = json!({
                "p": "image",
                "name": "Last face",
                "unique_id": format!("{id}_last_face"),
                "url_topic": last_face_topic(config, &level),
            });
        }
        messages.push(device_config(config, &id, &camera.name, "Camera", components));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MqttConfig {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            enabled: true,
            home_assistant: true,
            topic_prefix: "site/facegate".into(),
            event_types: facegate_gallery::DEFAULT_MQTT_EVENTS.to_vec(),
            frigate: true,
            double_take: true,
            last_seen_collections: vec![facegate_store::CollectionId::from("c1".to_string())],
            public_url: Some("https://fg.example/api".into()),
            image_link_ttl_s: 3600,
            revision: 1,
        }
    }

    fn sighted(track: i64, name: &str) -> Value {
        json!({
            "type": "identity.sighted",
            "timestamp": "2026-12-07T10:00:00Z",
            "data": { "camera": "Front Door", "track_id": track, "subject": { "id": "s1", "name": name }, "score": 0.71 },
        })
    }

    #[test]
    fn a_named_person_goes_to_the_cameras_topic_and_the_compatibility_topics() {
        let messages = event_messages(&config(), "msg_1", EventType::IdentitySighted, &sighted(3, "Ana Lima"));
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(topics, ["site/facegate/front_door/event", FRIGATE_TOPIC, "double-take/matches/ana_lima"]);
        assert_eq!(
            (messages[0].payload["id"].as_str(), messages[0].payload["event_type"].as_str()),
            (Some("msg_1"), Some("known"))
        );
        assert_eq!(messages[0].payload["data"]["subject"]["name"], "Ana Lima");
        assert!(messages.iter().all(|m| !m.retain));
        assert_eq!(
            (messages[1].payload["type"].as_str(), messages[1].payload["name"].as_str()),
            (Some("face"), Some("Ana Lima"))
        );
        assert_eq!(messages[1].payload["timestamp"].as_f64(), Some(1_796_637_600.0));
        assert_eq!(messages[2].payload["match"]["confidence"].as_f64(), Some(71.0));
        let plain = MqttConfig { frigate: false, double_take: false, ..config() };
        assert_eq!(event_messages(&plain, "msg_1", EventType::IdentitySighted, &sighted(3, "Ana")).len(), 1);
    }

    #[test]
    fn door_decisions_carry_their_result_and_unasked_types_are_not_published() {
        let body =
            json!({ "type": "door.decision", "timestamp": "t", "data": { "door_id": "d1", "result": "granted" } });
        let messages = event_messages(&config(), "msg_2", EventType::DoorDecision, &body);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].topic, "site/facegate/door/d1/event");
        assert_eq!(messages[0].payload["event_type"], "granted");
        let panel = json!({ "type": "door.decision", "data": { "door_id": "d1", "result": "denied", "reason": "panel_denied" } });
        let messages = event_messages(&config(), "msg_3", EventType::DoorDecision, &panel);
        assert_eq!(messages[0].payload["event_type"], "panel_denied");
        let started = json!({ "type": "face.track.started", "data": { "camera": "lobby", "track_id": 1 } });
        assert!(event_messages(&config(), "m", EventType::FaceTrackStarted, &started).is_empty());
        let ended = |decision: &str| json!({ "data": { "camera": "lobby", "track_id": 1, "decision": decision } });
        assert!(event_messages(&config(), "m", EventType::FaceTrackEnded, &ended("unknown")).is_empty());
        let ignored = event_messages(&config(), "m", EventType::FaceTrackEnded, &ended("too_small"));
        assert_eq!(
            (ignored[0].topic.as_str(), ignored[0].payload["event_type"].as_str()),
            ("site/facegate/lobby/event", Some("ignored"))
        );
        assert!(event_messages(&config(), "m", EventType::DoorDecision, &json!("not an object")).is_empty());
    }

    #[test]
    fn people_here_follows_tracks_and_ignores_late_starts() {
        let (config, mut people) = (config(), People::default());
        let event =
            |kind: &str, track: i64| json!({ "data": { "camera": "Front Door", "track_id": track, "type": kind } });
        people.follow(&config, EventType::FaceTrackStarted, &event("started", 1));
        people.follow(&config, EventType::FaceTrackStarted, &event("started", 2));
        let state = people.follow(&config, EventType::IdentitySighted, &sighted(1, "Ana")).expect("changed");
        assert_eq!((state.topic.as_str(), state.retain), ("site/facegate/front_door/people", true));
        assert_eq!(state.payload, json!({ "count": 2, "known": ["Ana"], "unknown": 1 }));
        people.follow(&config, EventType::FaceTrackEnded, &event("ended", 1));
        assert!(people.follow(&config, EventType::FaceTrackStarted, &event("started", 1)).is_none(), "late start");
        assert_eq!(people.state(&config, "front_door").payload, json!({ "count": 1, "known": [], "unknown": 1 }));
    }

    #[test]
    fn last_seen_sensors_only_for_the_collections_that_opted_in() {
        let body = |collection: &str| {
            json!({
                "type": "identity.sighted",
                "timestamp": "2026-12-07T10:00:00Z",
                "data": { "camera": "Gate", "collection_id": collection, "subject": { "id": "s9", "name": "Ana" }, "score": 0.6 },
            })
        };
        let (id, discovery, state) = last_seen(&config(), &body("c1")).expect("opted in");
        assert_eq!(id, "facegate_person_s9");
        assert_eq!((state.topic.as_str(), state.retain), ("site/facegate/person/s9/last_seen", true));
        assert_eq!(
            (state.payload["at"].as_str(), state.payload["camera"].as_str()),
            (Some("2026-12-07T10:00:00Z"), Some("Gate"))
        );
        assert_eq!(discovery.topic, "homeassistant/device/facegate_person_s9/config");
        assert_eq!(discovery.payload["cmps"]["facegate_person_s9_last_seen"]["device_class"], "timestamp");
        assert!(last_seen(&config(), &body("c2")).is_none(), "a collection that did not opt in");
    }

    #[test]
    fn a_tracks_end_with_a_sighting_becomes_its_cameras_last_face_where_facegate_has_an_address() {
        let ended = json!({ "data": { "camera": "Front Door", "collection_id": "c1", "sighting_seq": 7 } });
        let found = last_face_sighting(&config(), EventType::FaceTrackEnded, &ended);
        assert_eq!(found, Some(("c1".to_string(), 7, "front_door".to_string())));
        let message = last_face(&config(), "front_door", "/v1/best-shots/t/c1/7?expires=1&signature=ab").expect("url");
        assert_eq!((message.topic.as_str(), message.retain), ("site/facegate/front_door/last_face", true));
        assert_eq!(message.bytes(), b"https://fg.example/api/v1/best-shots/t/c1/7?expires=1&signature=ab");
        let no_address = MqttConfig { public_url: None, ..config() };
        assert!(last_face_sighting(&no_address, EventType::FaceTrackEnded, &ended).is_none());
        assert!(last_face_sighting(&config(), EventType::IdentitySighted, &ended).is_none());
        let unsighted = json!({ "data": { "camera": "Front Door", "collection_id": "c1" } });
        assert!(last_face_sighting(&config(), EventType::FaceTrackEnded, &unsighted).is_none());
        let camera = Camera {
            id: "cam1".to_string().into(),
            collection_id: "c1".to_string().into(),
            name: "Front Door".into(),
            source: "rtsp://10.0.0.9/stream".into(),
            settings: facegate_store::CameraSettings::default(),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let configs = discovery(&config(), std::slice::from_ref(&camera), &[]);
        let image = &configs[0].payload["cmps"][format!("facegate_camera_{}_last_face", camera.id)];
        assert_eq!(
            (image["p"].as_str(), image["url_topic"].as_str()),
            (Some("image"), Some("site/facegate/front_door/last_face"))
        );
        let without = discovery(&no_address, &[camera], &[]);
        assert_eq!(without[0].payload["cmps"].as_object().map(serde_json::Map::len), Some(2), "no image entity");
    }

    #[test]
    fn camera_names_become_one_topic_level() {
        assert_eq!(topic_level("Front Door #2"), "front_door__2");
        assert_eq!(topic_level("a/b+c"), "a_b_c");
        assert_eq!(topic_level("///"), "camera");
    }
}
