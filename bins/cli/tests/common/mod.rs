//! Helpers shared by the tests that drive a real `facegate serve` process over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use facegate_testing::{facegate_command, lfw_image};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

/// A fixed master key so a restarted server reads what the killed one wrote.
pub const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub fn facegate() -> Command {
    facegate_command(env!("CARGO_BIN_EXE_facegate"), MASTER_KEY)
}

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with(data_dir, extra, Stdio::inherit(), &[])
    }

    /// Starts a server whose standard error goes to `stderr`, with extra environment variables.
    pub fn start_with(data_dir: &Path, extra: &[&str], stderr: Stdio, env: &[(&str, &str)]) -> Server {
        let mut child = facegate()
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("server announces its address");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening line").to_string();
        Server { child, url }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn create_key(data_dir: &Path, tenant: &str, scopes: &str) -> String {
    let output = facegate()
        .args(["keys", "create", "--tenant", tenant, "--scopes", scopes, "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("keys create runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).expect("json");
    created["key"].as_str().expect("key").to_string()
}

pub fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(120)).build().expect("client")
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct Api {
    pub url: String,
    pub key: String,
    pub http: Client,
}

impl Api {
    pub fn new(server: &Server, key: &str) -> Api {
        Api { url: server.url.clone(), key: key.to_string(), http: client() }
    }

    pub fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response =
            self.http.get(format!("{}{path}", self.url)).header("x-api-key", &self.key).send().expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    pub fn post_image(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    pub fn enroll(&self, collection: &str, subject: &str, images: &[PathBuf]) -> (u16, Value) {
        self.enroll_with(collection, subject, images, "face=largest")
    }

    pub fn enroll_with(&self, collection: &str, subject: &str, images: &[PathBuf], query: &str) -> (u16, Value) {
        let mut form = multipart::Form::new();
        for (i, image) in images.iter().enumerate() {
            form = form.part(format!("image{i}"), multipart::Part::bytes(read(image)).file_name(format!("{i}.jpg")));
        }
        let response = self
            .http
            .post(format!("{}/v1/collections/{collection}/subjects/{subject}/faces?{query}", self.url))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    pub fn patch_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    pub fn put_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .put(format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    /// Posts images as multipart files (`image0`, `image1`...).
    pub fn post_images(&self, path: &str, images: Vec<Vec<u8>>) -> (u16, Value) {
        let mut form = multipart::Form::new();
        for (i, bytes) in images.into_iter().enumerate() {
            form = form.part(format!("image{i}"), multipart::Part::bytes(bytes).file_name(format!("{i}.jpg")));
        }
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .expect("request");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    /// A GET answered as text, with its content type.
    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        let response =
            self.http.get(format!("{}{path}", self.url)).header("x-api-key", &self.key).send().expect("request");
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (status, kind, response.text().unwrap_or_default())
    }

    pub fn collection(&self, name: &str) -> String {
        let (status, body) = self.post_json("/v1/collections", json!({ "name": name }));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    pub fn subject(&self, collection: &str, name: &str) -> String {
        let (status, body) = self.post_json(&format!("/v1/collections/{collection}/subjects"), json!({ "name": name }));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    pub fn recognize(&self, collection: &str, image: &Path) -> (u16, Value) {
        self.post_image(&format!("/v1/recognize?collection={collection}"), read(image), "image/jpeg")
    }

    pub fn face_count(&self, collection: &str, subject: &str) -> usize {
        let (status, body) = self.get(&format!("/v1/collections/{collection}/subjects/{subject}/faces"));
        assert_eq!(status, 200, "{body}");
        body["faces"].as_array().expect("faces").len()
    }
}

pub const PEOPLE: [&str; 3] = ["George_W_Bush", "Colin_Powell", "Tony_Blair"];

/// The largest face of a recognize answer: LFW photos often show bystanders too.
pub fn main_face(body: &Value) -> Value {
    let area = |f: &Value| f["bbox"]["width"].as_f64().unwrap_or(0.0) * f["bbox"]["height"].as_f64().unwrap_or(0.0);
    body["faces"]
        .as_array()
        .and_then(|faces| faces.iter().max_by(|a, b| area(a).total_cmp(&area(b))))
        .cloned()
        .unwrap_or_else(|| panic!("no face in {body}"))
}

/// Enrols the three people from their photos 1..=3; returns subject ids in PEOPLE order.
pub fn enrol_people(api: &Api, collection: &str) -> Vec<String> {
    PEOPLE
        .iter()
        .map(|person| {
            let subject = api.subject(collection, person);
            let images: Vec<PathBuf> = (1..=3).map(|n| lfw_image(person, n)).collect();
            let (status, body) = api.enroll(collection, &subject, &images);
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["accepted"].as_array().expect("accepted").len(), 3, "{body}");
            subject
        })
        .collect()
}

/// The test clip's folder (`data/video/hamilton`), its people enrolled by the command line into the
/// collection `hamilton` of tenant `acme` in `data_dir`.
pub fn enrol_hamilton(data_dir: &Path) -> PathBuf {
    let video = facegate_testing::shared_dir().join("data/video/hamilton");
    let enrolled = facegate()
        .arg("enroll")
        .arg(video.join("known"))
        .args(["--collection", "hamilton", "--tenant", "acme", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("enroll");
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    video
}
