//! Picks the console's built assets (`console/dist`, made by `scripts/console.sh build`) for
//! `include_dir!`; without them the API still builds and `/console` answers 404 saying so.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let console = manifest.join("../../console");
    let dist = console.join("dist");
    let dir = if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
        dist
    } else {
        println!("cargo:rerun-if-changed={}", console.display());
        println!("cargo:warning=console/dist is missing: /console answers 404 until `scripts/console.sh build` runs");
        let empty = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("console-not-built");
        std::fs::create_dir_all(&empty).expect("OUT_DIR is writable");
        empty
    };
    println!("cargo:rustc-env=FACEGATE_CONSOLE_DIR={}", dir.display());
}
