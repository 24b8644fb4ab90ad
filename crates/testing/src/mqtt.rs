//! A real MQTT broker for tests (Debian's `mosquitto`, installed by `scripts/test.sh`) on a loopback
//! port, and a subscriber that records everything published on it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, Incoming, MqttOptions, QoS};

use crate::KillOnDrop;

/// A `mosquitto` process listening on 127.0.0.1, anonymous, without persistence.
pub struct Broker {
    process: Option<KillOnDrop>,
    port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn mosquitto() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mosquitto"))
}

impl Broker {
    /// Starts a broker on a free loopback port; panics if it does not listen within 10 s.
    pub fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("mosquitto.conf");
        let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n");
        std::fs::write(&config, text).expect("broker config");
        let mut broker = Broker { process: None, port, config, _dir: dir };
        broker.restart();
        broker
    }

    /// The broker's URL (`mqtt://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops it (SIGKILL: retained messages and sessions are gone, as after a crash).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting mosquitto (scripts/test.sh installs it): {e}"));
        self.process = Some(KillOnDrop(child));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "mosquitto did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A message seen by a [`Subscriber`].
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its topic.
    pub topic: String,
    /// Its payload, as text.
    pub payload: String,
    /// Whether the broker sent it as a retained message (to a new subscription).
    pub retain: bool,
    /// When it arrived.
    pub at: Instant,
}

impl Seen {
    /// The payload as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or_default()
    }
}

/// A client subscribed to every topic (`#`), again after every reconnection, recording what arrives.
#[derive(Clone)]
pub struct Subscriber {
    seen: Arc<Mutex<Vec<Seen>>>,
    client: Client,
}

impl Subscriber {
    /// Connects to the broker on `port` (in a thread of its own) and waits until it is subscribed.
    pub fn start(port: u16, name: &str) -> Subscriber {
        let mut options = MqttOptions::new(name, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5)).set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 64);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let subscribed = Arc::new(Mutex::new(false));
        let (record, resubscribe, ready) = (seen.clone(), client.clone(), subscribed.clone());
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = resubscribe.try_subscribe("#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        *ready.lock().unwrap_or_else(PoisonError::into_inner) = true;
                    }
                    Ok(Event::Incoming(Incoming::Publish(message))) => {
                        let seen = Seen {
                            topic: message.topic.clone(),
                            payload: String::from_utf8_lossy(&message.payload).into_owned(),
                            retain: message.retain,
                            at: Instant::now(),
                        };
                        record.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        *ready.lock().unwrap_or_else(PoisonError::into_inner) = false;
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        });
        let subscriber = Subscriber { seen, client };
        subscriber.wait_until(Duration::from_secs(10), "subscribed", || {
            *subscribed.lock().unwrap_or_else(PoisonError::into_inner)
        });
        subscriber
    }

    /// Everything seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// What was seen on `topic`.
    pub fn on(&self, topic: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.topic == topic).collect()
    }

    /// Waits until `done` holds; panics after `limit` naming `what`.
    pub fn wait_until(&self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < limit, "waited {limit:?} for {what}; seen: {:#?}", self.topics());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `topic` has had `count` messages; they.
    pub fn wait_for(&self, topic: &str, count: usize, limit: Duration) -> Vec<Seen> {
        self.wait_until(limit, &format!("{count} messages on {topic}"), || self.on(topic).len() >= count);
        self.on(topic)
    }

    /// Publishes `payload` on `topic` (QoS 1).
    pub fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.client.publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec()).expect("publish");
    }

    fn topics(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.topic).collect()
    }
}
