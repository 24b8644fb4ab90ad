//! The operator console in a real browser: `console/e2e/console.test.mjs` (Playwright driving Debian's
//! Chromium with a fake camera made from LFW photos) against a real `facegate serve` that embeds the
//! built console. This test starts the server with an admin key, runs the browser test (which also
//! runs `facegate watch` on the test clip into the server's data folder for the sightings screen, and adds
//! a camera, a loopback RTSP server looping the clip, which the server then watches, configures a
//! real MQTT broker and a door's reader on a real access panel) and
//! fails with it; the browser test prints its figures (first load, end-to-end time) and the screenshots' paths.

mod common;

use std::process::Command;

use common::{Server, create_key};
use facegate_testing::{lfw_dir, shared_dir, workspace_root};

/// The Secure Channel key of the test's access panel.
const PANEL_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Starts the `osdp_panel` example listening on loopback for a reader at address 5: it and its address.
fn access_panel() -> (facegate_testing::KillOnDrop, String) {
    use std::io::BufRead;
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_facegate")).with_file_name("examples").join("osdp_panel");
    let mut child = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--address", "5", "--key", PANEL_KEY])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds the example)", binary.display()));
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().expect("a line").expect("text")).expect("JSON");
    let address = first["listening"].as_str().expect("listening").to_string();
    // Keep reading what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (facegate_testing::KillOnDrop(child), address)
}

#[test]
fn console_end_to_end_in_chromium() {
    let data = tempfile::tempdir().expect("tempdir");
    let key = create_key(data.path(), "console", "admin");
    // A camera on loopback wanting a login, which the browser test adds on the cameras screen.
    let camera = facegate_testing::rtsp::RtspServer::start_with_login(
        &shared_dir().join("data/video/hamilton/short_hamilton_clip.mp4"),
        0,
        Some(("operator", "s3cret-console")),
    );
    // A real MQTT broker, which the browser test configures on the integrations screen, and an access
    // panel (libosdp's control panel, the `osdp_panel` example) for a door's reader.
    let broker = facegate_testing::mqtt::Broker::start();
    let (_panel, panel_address) = access_panel();
    let server = Server::start_with(data.path(), &[], std::process::Stdio::inherit(), &[("FACEGATE_CAMERA_POLL", "1")]);
    let console = workspace_root().join("console");
    assert!(
        console.join("node_modules/playwright-core").is_dir(),
        "the console's packages are missing: run scripts/console.sh build (scripts/setup.sh does)"
    );
    let screenshots = workspace_root().join("target/test-output/console");
    let started = std::time::Instant::now();
    let status = Command::new("node")
        .args(["--test", "--test-reporter=spec", "e2e/"])
        .current_dir(&console)
        .env("FACEGATE_URL", &server.url)
        .env("FACEGATE_KEY", &key)
        .env("FACEGATE_LFW_DIR", lfw_dir())
        .env("FACEGATE_SCREENSHOTS", &screenshots)
        .env("FACEGATE_BIN", env!("CARGO_BIN_EXE_facegate"))
        .env("FACEGATE_DATA_DIR", data.path())
        .env("FACEGATE_MASTER_KEY", common::MASTER_KEY)
        .envs(facegate_testing::LOOPBACK_EGRESS)
        .env("FACEGATE_VIDEO_DIR", shared_dir().join("data/video/hamilton"))
        .env("FACEGATE_MQTT_URL", broker.url())
        .env("FACEGATE_PANEL_ADDRESS", panel_address)
        .env("FACEGATE_PANEL_KEY", PANEL_KEY)
        .env("FACEGATE_RTSP_URL", format!("rtsp://operator:s3cret-console@127.0.0.1:{}/clip", camera.port()))
        .env(
            "FACEGATE_MODEL_MIRROR",
            std::env::var_os("FACEGATE_MODEL_MIRROR").unwrap_or_else(|| shared_dir().join("models").into()),
        )
        .status()
        .expect("node runs (scripts/console.sh installs it)");
    println!("console end-to-end: {:.1} s; screenshots in {}", started.elapsed().as_secs_f64(), screenshots.display());
    assert!(status.success(), "the browser test failed ({status}); screenshots so far in {}", screenshots.display());
}
