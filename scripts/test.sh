#!/usr/bin/env bash
# The test command: installs what the tests need (ONNX Runtime, models, PostgreSQL 15 + pgvector,
# mosquitto, socat, the SAM and cfn-lint validators), starts a throwaway PostgreSQL cluster on a free loopback port,
# validates the SAM template, checks formatting and lints, runs every test against the real models,
# photos and servers (the Lambda function against an emulated Runtime API), and stops the cluster.
# The workspace is compiled once, for the tests (the `facegate` binary included); each phase's time is
# printed as it ends and again at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
phases=$(mktemp /tmp/facegate-phases.XXXXXX)
phase_name="" phase_start=$SECONDS
phase() {
  if [ -n "$phase_name" ]; then
    printf '== phase %-34s %5d s\n' "$phase_name" $((SECONDS - phase_start)) | tee -a "$phases" >&2
  fi
  phase_name=$1 phase_start=$SECONDS
}
summary() {
  phase ""
  printf '== phases (total %d s)\n' "$SECONDS" >&2
  cat "$phases" >&2
  rm -f "$phases"
}
trap summary EXIT

phase "setup (runtime, console, build, models)"
FACEGATE_SETUP_BUILD=tests scripts/setup.sh
phase "postgresql install"
scripts/postgres.sh install
# The console's browser test drives Debian's Chromium with a fake camera made by ffmpeg.
phase "chromium and ffmpeg install"
scripts/console.sh browser
# The MQTT integration's tests publish to a real broker (Debian's mosquitto, started by each test); the
# OSDP reader's test runs a serial line over a pty pair made by socat.
phase "mosquitto and socat install"
missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v socat >/dev/null || missing+=(socat)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
phase "python test tools install"
# moto_server stands in for AWS KMS in the KMS key provider's tests.
command -v moto_server >/dev/null || python3 -m pip install -q --disable-pip-version-check "moto[server]"
# schemathesis fuzzes the running server from its OpenAPI document (bins/cli/tests/faults.rs).
command -v schemathesis >/dev/null || python3 -m pip install -q --disable-pip-version-check "schemathesis==4.32.5"
# A Python client generated from the OpenAPI document enrols and recognises (bins/cli/tests/server.rs).
command -v openapi-python-client >/dev/null || python3 -m pip install -q --disable-pip-version-check "openapi-python-client==0.29.1"
phase "postgresql start"
cluster=$(mktemp -d /tmp/facegate-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$cluster"; rm -rf "$cluster"; summary' EXIT
export FACEGATE_TEST_POSTGRES_DIR=$cluster
FACEGATE_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$cluster")
export FACEGATE_TEST_POSTGRES_URL
phase "SAM template validation"
deploy/validate.sh
# The derived OMZ ONNX files are reproduced from Intel's IR originals (same graph, same outputs).
phase "OMZ conversion check"
if [ -n "${FACEGATE_MODEL_MIRROR:-}" ]; then scripts/convert-omz.sh; fi
phase "rustfmt"
cargo fmt --all -- --check
phase "clippy"
cargo clippy --release --locked --workspace --all-targets -- -D warnings
phase "tests"
cargo test --release --locked --workspace
