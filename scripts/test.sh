#!/usr/bin/env bash
# The test command: installs what the tests need (ONNX Runtime, models), checks formatting and lints,
# and runs every test against the real models and photos.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
