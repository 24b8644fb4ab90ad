#!/usr/bin/env bash
# Everything facegate needs besides the Rust toolchain: the pinned ONNX Runtime library and OpenVINO's
# (from PyPI; the embedder runs on OpenVINO where the dispatch chooses it),
# the operator console (Node.js and the pinned npm packages; embedded by the build), the pinned models
# (mirror or upstream, sha256-verified) and a release build. Safe to re-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
command -v python3 >/dev/null || { echo "setup: python3 with pip is required" >&2; exit 1; }
scripts/fetch-onnxruntime.sh
scripts/fetch-openvino.sh
scripts/console.sh build
# The test command (scripts/test.sh) builds the tests and the binary in one pass with one feature set,
# so nothing is compiled twice; the quick start builds the binary alone.
if [ "${FACEGATE_SETUP_BUILD:-binary}" = tests ]; then
  cargo test --release --locked --workspace --no-run
else
  cargo build --release --locked --bin facegate
fi
target/release/facegate models fetch --all
target/release/facegate models verify
