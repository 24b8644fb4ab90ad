//! Fixtures for facegate's tests: paths into `../shared` (photos, LFW) and the real model pipeline.
//!
//! `FACEGATE_SHARED` overrides where shared data lives (default: `../shared` beside the workspace);
//! models come through the normal cache, filled from `FACEGATE_MODEL_MIRROR` (default: `shared/models`).

pub mod mqtt;
pub mod rtsp;
pub mod walkby;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;

use facegate_core::{DecodeLimits, EmbedderRuntime, Pipeline, PipelineConfig, RuntimeConfig, decode_image};
use facegate_models::{ModelCache, builtin_manifest};
use image::RgbImage;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared data folder.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("FACEGATE_SHARED").map_or_else(|| workspace_root().join("../shared"), PathBuf::from)
}

/// A photo from `shared/data/photos`.
pub fn photo(name: &str) -> PathBuf {
    shared_dir().join("data/photos").join(name)
}

/// The LFW root (holds `pairs.txt`).
pub fn lfw_dir() -> PathBuf {
    shared_dir().join("data/lfw")
}

/// An LFW image by person and number, e.g. `lfw_image("George_W_Bush", 1)`.
pub fn lfw_image(person: &str, number: u32) -> PathBuf {
    lfw_dir().join("lfw-deepfunneled").join(person).join(format!("{person}_{number:04}.jpg"))
}

/// Ten LFW people with at least 20 photos each (206 photos): a small real training set.
pub const LFW_TEN_PEOPLE: [&str; 10] = [
    "Angelina_Jolie",
    "Igor_Ivanov",
    "Jiang_Zemin",
    "Michael_Bloomberg",
    "Paul_Bremer",
    "Amelie_Mauresmo",
    "Carlos_Menem",
    "Jennifer_Aniston",
    "Jennifer_Lopez",
    "George_Robertson",
];

/// A dataset folder `dir/people/<person>` of links to [`LFW_TEN_PEOPLE`]'s LFW folders (LFW itself
/// stays in `../shared`); returns the dataset folder.
pub fn lfw_ten_people_dataset(dir: &Path) -> PathBuf {
    let root = dir.join("people");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    for person in LFW_TEN_PEOPLE {
        std::os::unix::fs::symlink(lfw_dir().join("lfw-deepfunneled").join(person), root.join(person))
            .unwrap_or_else(|e| panic!("linking {person}: {e}"));
    }
    root
}

/// A child process killed and reaped when the test lets go of it (also when the test panics).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads and decodes an image file; panics with the path on failure (test fixtures only).
pub fn load_image(path: &std::path::Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    decode_image(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
}

/// The model cache as the CLI sees it (`FACEGATE_HOME`, else the user's cache folder), filled from
/// `FACEGATE_MODEL_MIRROR`, else from the shared mirror without downloading.
pub fn model_cache() -> ModelCache {
    let home = std::env::var_os("FACEGATE_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("facegate")))
        .unwrap_or_else(|| PathBuf::from(".facegate"));
    match std::env::var_os("FACEGATE_MODEL_MIRROR").filter(|m| !m.is_empty()) {
        Some(mirror) => {
            let offline = std::env::var("FACEGATE_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
            ModelCache::new(home, Some(PathBuf::from(mirror)), !offline)
        }
        None => ModelCache::new(home, Some(shared_dir().join("models")), false),
    }
}

/// A pipeline for `pack` with the given settings, on the real models.
pub fn pipeline_with(pack: &str, config: PipelineConfig) -> Pipeline {
    let manifest = builtin_manifest().expect("built-in manifest");
    let cache = model_cache();
    let environment =
        cache.onnxruntime(&manifest.runtime).expect("ONNX Runtime installed (scripts/fetch-onnxruntime.sh) and loads");
    cache.load_pipeline(environment, &manifest, pack, config).expect("pack loads")
}

/// The `mobilefacenet` pack (the default until omz-0095) with default settings, its embedder on ONNX
/// Runtime (scores asserted to the third decimal are the same on every CPU; `auto` may pick OpenVINO bf16
/// on one with bf16, tested on its own), loaded once per test binary.
pub fn default_pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let runtime = RuntimeConfig { embedder: EmbedderRuntime::Onnxruntime, ..RuntimeConfig::default() };
        pipeline_with("mobilefacenet", PipelineConfig { runtime, ..PipelineConfig::default() })
    })
}

/// A fresh, empty database on the test PostgreSQL server (`FACEGATE_TEST_POSTGRES_URL`, which
/// `scripts/test.sh` sets after starting a throwaway cluster); returns its URL.
pub fn fresh_postgres_database(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let base = std::env::var("FACEGATE_TEST_POSTGRES_URL").expect(
        "FACEGATE_TEST_POSTGRES_URL must point at a PostgreSQL server with pgvector (scripts/test.sh starts one)",
    );
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{prefix}_{}_{n}", std::process::id());
    let drop = format!("DROP DATABASE IF EXISTS {name}");
    let create = format!("CREATE DATABASE {name}");
    let created = std::process::Command::new("psql")
        .args([base.as_str(), "-q", "-c", &drop, "-c", &create])
        .output()
        .expect("psql runs");
    assert!(created.status.success(), "creating {name}: {}", String::from_utf8_lossy(&created.stderr));
    let (prefix_url, _) = base.rsplit_once('/').expect("URL ends with a database name");
    format!("{prefix_url}/{name}")
}

/// The egress policy of every server a test starts (as environment settings): loopback only, so no test
/// can make a server connect beyond this machine, whatever webhook URL it registers.
pub const LOOPBACK_EGRESS: [(&str, &str); 3] = [
    ("FACEGATE_EGRESS_PUBLIC", "0"),
    ("FACEGATE_EGRESS_ALLOW", "127.0.0.0/8,::1,localhost"),
    ("FACEGATE_CAMERA_PRIVATE_NETWORKS", "0"),
];

/// A command running the `facegate` binary at `binary` with the shared model mirror (unless one is
/// set), a fixed master key (so a restarted server reads what an earlier one wrote) and the loopback-only
/// egress policy ([`LOOPBACK_EGRESS`]).
pub fn facegate_command(binary: &str, master_key: &str) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    if std::env::var_os("FACEGATE_MODEL_MIRROR").is_none() {
        command.env("FACEGATE_MODEL_MIRROR", shared_dir().join("models"));
    }
    command.env("FACEGATE_MASTER_KEY", master_key).envs(LOOPBACK_EGRESS);
    command
}

/// The README's table of API error codes (between `<!-- error-codes -->` markers): (code, HTTP status)
/// in the order written.
pub fn readme_error_codes() -> Vec<(String, u16)> {
    let path = workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = readme.split("<!-- error-codes -->").nth(1).expect("README has an error-code table");
    section
        .lines()
        .take_while(|line| !line.contains("<!-- /error-codes -->"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_string(), cells.get(2)?.parse().ok()?))
        })
        .collect()
}

/// A PNG that is only a header claiming `width`×`height` 8-bit RGBA pixels: a decompression bomb's
/// announcement, to check that limits are applied before decoding.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let writer = encoder.write_header().expect("writing a PNG header to memory");
    drop(writer);
    bytes
}
