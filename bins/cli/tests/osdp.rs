//! facegate as an OSDP reader on an access panel, through a real `facegate serve` and libosdp's own
//! control panel in another process (the `osdp_panel` example, which `cargo test` builds): over TCP
//! loopback and over a pseudo-terminal pair made by `socat`, with the Secure Channel. A granted door
//! attempt reaches the panel as the person's 26-bit card read and the panel's LED is the answer; a
//! person without a card is denied before anything is sent; a wrong key never brings the Secure Channel
//! up and nothing is sent; a panel gone gives `panel_offline` while facegate keeps answering. Prints the
//! panel's verdict time and the attempts' latency over 100 attempts.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, Server, create_key, read};
use facegate_testing::KillOnDrop;
use serde_json::{Value, json};

const KEY: &str = "00112233445566778899aabbccddeeff";
const WRONG_KEY: &str = "ffeeddccbbaa99887766554433221100";

fn frame(name: &str) -> Vec<u8> {
    read(&facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(name))
}

fn frames(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| facegate_testing::shared_dir().join("data/liveness/nuaa/ClientRaw").join(n)).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The panel process and what it printed.
struct Panel {
    _process: KillOnDrop,
    lines: Arc<Mutex<Vec<Value>>>,
    listening: String,
}

impl Panel {
    fn start(args: &[&str]) -> Panel {
        let binary = Path::new(env!("CARGO_BIN_EXE_facegate")).with_file_name("examples").join("osdp_panel");
        assert!(
            binary.exists(),
            "{} is missing: `cargo test` builds it (or cargo build --release -p facegate-cli --example osdp_panel)",
            binary.display()
        );
        let mut child = Command::new(binary).args(args).stdout(Stdio::piped()).spawn().expect("the panel starts");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                seen.lock().expect("lock").push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        let mut panel = Panel { _process: KillOnDrop(child), lines, listening: String::new() };
        let listening = panel.wait(|l| l["listening"].is_string(), Duration::from_secs(10));
        panel.listening = listening["listening"].as_str().expect("address").to_string();
        panel
    }

    fn seen(&self) -> Vec<Value> {
        self.lines.lock().expect("lock").clone()
    }

    fn cards(&self) -> Vec<Value> {
        self.seen().into_iter().filter(|l| l.get("bits").is_some()).collect()
    }

    /// The `index`th card read the panel printed, once it has.
    fn card(&self, index: usize, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            if let Some(card) = self.cards().get(index) {
                return card.clone();
            }
            assert!(started.elapsed() < limit, "the panel printed: {:?}", self.seen());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait(&self, found: impl Fn(&Value) -> bool, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            if let Some(line) = self.seen().into_iter().find(&found) {
                return line;
            }
            assert!(started.elapsed() < limit, "the panel printed: {:?}", self.seen());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn reader(api: &Api, door: &str, settings: Value, key: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "settings": settings });
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    api.put_json(&format!("/v1/doors/{door}/reader"), body)
}

fn wait_linked(api: &Api, door: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, state) = api.get(&format!("/v1/doors/{door}/reader"));
        assert_eq!(status, 200, "{state}");
        if state["link"]["online"] == true && state["link"]["secure_channel"] == true {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the reader never came up: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_panel_decides_facegates_grants_over_tcp_and_a_serial_line_with_the_secure_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ptys = tempfile::tempdir().expect("tempdir");
    let (facegate_end, panel_end) = (ptys.path().join("facegate"), ptys.path().join("panel"));
    let _socat = KillOnDrop(
        Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", facegate_end.display()))
            .arg(format!("pty,raw,echo=0,link={}", panel_end.display()))
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/test.sh installs it)"),
    );
    let key = create_key(dir.path(), "acme", "admin");
    let ports = facegate_end.display().to_string();
    let server = Server::start_with(
        dir.path(),
        &["--rate-limit", "1000"],
        Stdio::inherit(),
        &[("FACEGATE_OSDP_SERIAL_PORTS", &ports)],
    );
    let api = Api::new(&server, &key);
    let office = api.collection("office");
    let (ann, bob) = (api.subject(&office, "Ann"), api.subject(&office, "Bob"));
    assert_eq!(api.enroll(&office, &ann, &frames(&["0004_01_00_01_406.jpg", "0004_01_00_01_55.jpg"])).0, 201);
    assert_eq!(api.enroll(&office, &bob, &frames(&["0013_01_07_03_106.jpg", "0013_01_07_03_139.jpg"])).0, 201);
    let door = |name: &str| {
        let (status, door) = api.post_json(
            "/v1/doors",
            json!({ "name": name, "collection_id": office, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
        );
        assert_eq!(status, 201, "{door}");
        door["id"].as_str().expect("door id").to_string()
    };
    let (front, side, back) = (door("front"), door("side"), door("back"));
    let attempt = |door: &str, name: &str| {
        let (status, decision) = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame(name)]);
        assert_eq!(status, 200, "{decision}");
        decision
    };

    // The panel, listening on loopback; facegate's reader dials it.
    let panel = Panel::start(&["--listen", "127.0.0.1:0", "--address", "101", "--key", KEY, "--allow", "12:3456"]);
    let tcp = json!({ "transport": "tcp", "target": panel.listening, "address": 101 });
    for (settings, key, why) in [
        (json!({ "transport": "tcp", "target": panel.listening, "address": 127 }), Some(KEY), "the broadcast address"),
        (
            json!({ "transport": "tcp", "target": "10.1.2.3:4001", "address": 1 }),
            Some(KEY),
            "outside the egress policy",
        ),
        (json!({ "transport": "tcp", "target": "127.0.0.1", "address": 1 }), Some(KEY), "no port"),
        (json!({ "transport": "serial", "target": "/etc/passwd", "address": 1 }), Some(KEY), "a port not listed"),
        (tcp.clone(), Some("0011"), "a short key"),
        (tcp.clone(), None, "no key for a new reader"),
    ] {
        let (status, body) = reader(&api, &front, settings, key);
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{why}: {body}");
    }
    let (status, set) = reader(&api, &front, tcp.clone(), Some(KEY));
    assert_eq!(status, 200, "{set}");
    assert!(set.get("key").is_none() && !set.to_string().contains(KEY), "the key is never shown: {set}");
    panel.wait(|l| l["secure_channel"] == true, Duration::from_secs(15));
    let linked = wait_linked(&api, &front);
    assert!(linked["link"]["last_poll_at_ms"].is_i64(), "{linked}");

    // Without a card: denied before anything reaches the panel.
    let decision = attempt(&front, "0004_01_06_03_210.jpg");
    assert_eq!(
        (decision["access"].as_str(), decision["reason"].as_str()),
        (Some("denied"), Some("no_credential")),
        "{decision}"
    );
    assert_eq!(decision["subject"]["name"], "Ann", "{decision}");
    assert!(panel.cards().is_empty());

    // Cards: refused out of their format's range; Ann's allowed by the panel, Bob's not.
    let credentials = |subject: &str, cards: Value| {
        api.put_json(
            &format!("/v1/collections/{office}/subjects/{subject}/credentials"),
            json!({ "credentials": cards }),
        )
    };
    let (status, body) = credentials(&ann, json!([{ "format": "wiegand26", "facility_code": 300, "card_number": 1 }]));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    assert_eq!(credentials(&ann, json!([{ "format": "wiegand26", "facility_code": 12, "card_number": 3456 }])).0, 200);
    assert_eq!(credentials(&bob, json!([{ "format": "wiegand26", "facility_code": 12, "card_number": 999 }])).0, 200);
    let (_, shown) = api.get(&format!("/v1/collections/{office}/subjects/{ann}/credentials"));
    assert_eq!(shown["credentials"][0]["system"], "default", "{shown}");

    let granted = attempt(&front, "0004_01_06_03_210.jpg");
    assert_eq!(
        (granted["access"].as_str(), granted["panel"].as_str()),
        (Some("granted"), Some("granted")),
        "{granted}"
    );
    assert!(granted["panel_ms"].as_u64().is_some_and(|ms| ms < 2000), "{granted}");
    assert_eq!(granted["panel_text"], "Welcome", "the panel's text before its LED: {granted}");
    let read = panel.wait(|l| l["bits"] == 26, Duration::from_secs(5));
    assert_eq!(
        (read["card"].clone(), read["granted"].clone()),
        (json!([12, 3456]), json!(true)),
        "the right 26-bit card"
    );
    let denied = attempt(&front, "0013_01_07_03_160.jpg");
    assert_eq!(
        (denied["access"].as_str(), denied["reason"].as_str(), denied["panel"].as_str()),
        (Some("denied"), Some("panel_denied"), Some("denied")),
        "{denied}"
    );
    assert_eq!(panel.cards().last().map(|c| c["card"].clone()), Some(json!([12, 999])));
    assert_eq!(denied["panel_text"], "Denied", "{denied}");
    let (_, state) = api.get(&format!("/v1/doors/{front}/reader"));
    assert!(state["link"]["last_text"].is_string(), "the panel's text and buzzer in the link's state: {state}");
    let started = Instant::now();
    while api.get(&format!("/v1/doors/{front}/reader")).1["link"]["last_buzzer_at_ms"].as_i64().is_none() {
        assert!(started.elapsed() < Duration::from_secs(5), "the panel's beep was never recorded");
        std::thread::sleep(Duration::from_millis(20));
    }

    // In the door's trail: facegate's decision with the panel's beside it.
    let (_, trail) = api.get(&format!("/v1/collections/{office}/events?limit=100"));
    let reasons: Vec<&str> = trail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["door_id"] == front.as_str())
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["no_credential", "panel_granted", "panel_denied"], "{trail}");

    // Over 100 grants: the decision (its timestamp) to the card read at the panel (the panel's clock is
    // this machine's), the card read queued to the panel's LED verdict, and the whole attempt.
    let (mut reads, mut verdicts, mut attempts) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..100 {
        let started = Instant::now();
        let granted = attempt(&front, "0004_01_06_03_210.jpg");
        attempts.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(granted["panel"], "granted", "{granted}");
        verdicts.push(granted["panel_ms"].as_f64().expect("panel_ms"));
        let card = panel.card(2 + i, Duration::from_secs(5));
        reads.push(card["at_ms"].as_f64().expect("at_ms") - granted["at_ms"].as_f64().expect("at_ms"));
    }
    for figures in [&mut reads, &mut verdicts, &mut attempts] {
        figures.sort_by(f64::total_cmp);
    }
    println!(
        "OSDP over TCP, 100 grants: decision to the card read at the panel p50 {:.0} ms, p99 {:.0} ms; card read queued to \
         the panel's LED verdict p50 {:.0} ms, p99 {:.0} ms; whole attempt p50 {:.0} ms, p99 {:.0} ms",
        percentile(&reads, 0.5),
        percentile(&reads, 0.99),
        percentile(&verdicts, 0.5),
        percentile(&verdicts, 0.99),
        percentile(&attempts, 0.5),
        percentile(&attempts, 0.99)
    );
    assert_eq!(panel.cards().len(), 102);

    // A reader whose key the panel does not know: no Secure Channel, nothing sent, `panel_offline`.
    let stranger = Panel::start(&["--listen", "127.0.0.1:0", "--address", "101", "--key", KEY, "--allow", "12:3456"]);
    let (status, _) = reader(
        &api,
        &side,
        json!({ "transport": "tcp", "target": stranger.listening, "address": 101 }),
        Some(WRONG_KEY),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(3));
    let offline = attempt(&side, "0004_01_06_03_210.jpg");
    assert_eq!(
        (offline["reason"].as_str(), offline["panel"].as_str()),
        (Some("panel_offline"), Some("offline")),
        "{offline}"
    );
    assert!(
        stranger.seen().iter().all(|l| l["secure_channel"] != true) && stranger.cards().is_empty(),
        "{:?}",
        stranger.seen()
    );

    // The panel goes away: `panel_offline`, and facegate keeps answering.
    drop(panel);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let gone = attempt(&front, "0004_01_06_03_210.jpg");
    assert_eq!((gone["access"].as_str(), gone["reason"].as_str()), (Some("denied"), Some("panel_offline")), "{gone}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the verdict timeout");
    assert_eq!(api.get("/v1/collections").0, 200);

    // The same over a serial line (a pty pair made by socat).
    let serial = Panel::start(&[
        "--serial",
        &panel_end.display().to_string(),
        "--address",
        "7",
        "--key",
        KEY,
        "--allow",
        "12:3456",
    ]);
    let (status, body) =
        reader(&api, &back, json!({ "transport": "serial", "target": ports, "address": 7 }), Some(KEY));
    assert_eq!(status, 200, "{body}");
    serial.wait(|l| l["secure_channel"] == true, Duration::from_secs(15));
    wait_linked(&api, &back);
    let granted = attempt(&back, "0004_01_06_03_210.jpg");
    assert_eq!(
        (granted["access"].as_str(), granted["panel"].as_str()),
        (Some("granted"), Some("granted")),
        "{granted}"
    );
    assert_eq!(serial.wait(|l| l["bits"] == 26, Duration::from_secs(5))["card"], json!([12, 3456]));

    // Removing the reader: the door decides alone again.
    let removed = api
        .http
        .delete(format!("{}/v1/doors/{back}/reader", api.url))
        .header("x-api-key", &key)
        .send()
        .expect("delete");
    assert_eq!(removed.status(), 204);
    let alone = attempt(&back, "0004_01_06_03_210.jpg");
    assert_eq!((alone["access"].as_str(), alone.get("panel")), (Some("granted"), None), "{alone}");
}

/// Install mode: a reader set up with `install_mode` lets the panel in with the default key, the panel
/// sets the reader's own key (OSDP KEYSET), facegate keeps it sealed and leaves install mode; after a
/// restart the reader comes up with that key only.
#[test]
fn a_panel_in_install_mode_sets_the_readers_key_and_facegate_keeps_it() {
    const PANEL_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    let dir = tempfile::tempdir().expect("tempdir");
    let key = create_key(dir.path(), "acme", "admin");
    let mut server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let office = api.collection("office");
    let ann = api.subject(&office, "Ann");
    assert_eq!(api.enroll(&office, &ann, &frames(&["0004_01_00_01_406.jpg", "0004_01_00_01_55.jpg"])).0, 201);
    let card = json!({ "credentials": [{ "format": "wiegand26", "facility_code": 12, "card_number": 3456 }] });
    assert_eq!(api.put_json(&format!("/v1/collections/{office}/subjects/{ann}/credentials"), card).0, 200);
    let (status, door) = api.post_json(
        "/v1/doors",
        json!({ "name": "front", "collection_id": office, "policy": { "allow_everyone": true, "timezone": "UTC" } }),
    );
    assert_eq!(status, 201, "{door}");
    let door = door["id"].as_str().expect("door id").to_string();

    // The panel knows only the new key it will set; the reader starts with a provisional one.
    let installer = Panel::start(&[
        "--listen",
        "127.0.0.1:0",
        "--address",
        "101",
        "--key",
        PANEL_KEY,
        "--set-key",
        PANEL_KEY,
        "--allow",
        "12:3456",
    ]);
    let settings = json!({ "transport": "tcp", "target": installer.listening, "address": 101, "install_mode": true });
    assert_eq!(reader(&api, &door, settings, Some(KEY)).0, 200);
    installer.wait(|l| l["keyset"] == PANEL_KEY, Duration::from_secs(20));
    // The Secure Channel starts again with the new key.
    let started = Instant::now();
    while installer.seen().iter().filter(|l| l["secure_channel"] == true).count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", installer.seen());
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let state = loop {
        let (_, state) = api.get(&format!("/v1/doors/{door}/reader"));
        if state["reader"]["settings"]["install_mode"] == false && state["link"]["secure_channel"] == true {
            break state;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the key was never kept: {state}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(state["link"]["key_set_at_ms"].is_i64(), "{state}");
    let granted = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame("0004_01_06_03_210.jpg")]).1;
    assert_eq!(granted["panel"], "granted", "with the panel's key: {granted}");
    let (_, changes) = api.get("/v1/changes?limit=100");
    let by_panel: Vec<&Value> =
        changes["changes"].as_array().expect("changes").iter().filter(|c| c["key_id"] == "osdp-panel").collect();
    assert_eq!(by_panel.len(), 1, "the panel's change in the trail: {changes}");
    assert!(!changes.to_string().contains(PANEL_KEY), "the key is never shown");

    // A restart: the reader comes up with the kept key against a panel that enforces it.
    drop(installer);
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server, &key);
    let panel =
        Panel::start(&["--listen", "127.0.0.1:0", "--address", "101", "--key", PANEL_KEY, "--allow", "12:3456"]);
    let settings = json!({ "transport": "tcp", "target": panel.listening, "address": 101 });
    assert_eq!(reader(&api, &door, settings, None).0, 200, "the target moved; the key stays");
    panel.wait(|l| l["secure_channel"] == true, Duration::from_secs(15));
    wait_linked(&api, &door);
    let granted = api.post_images(&format!("/v1/doors/{door}/attempts"), vec![frame("0004_01_06_03_210.jpg")]).1;
    assert_eq!(granted["panel"], "granted", "{granted}");
}
