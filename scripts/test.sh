#!/usr/bin/env bash
# The test command: installs what the tests need (ONNX Runtime, models, PostgreSQL 15 + pgvector,
# the SAM and cfn-lint validators), starts a throwaway PostgreSQL cluster on a free loopback port,
# validates the SAM template, checks formatting and lints, runs every test against the real models,
# photos and servers (the Lambda function against an emulated Runtime API), and stops the cluster.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
scripts/setup.sh
scripts/postgres.sh install
# The console's browser test drives Debian's Chromium with a fake camera made by ffmpeg.
scripts/console.sh browser
# moto_server stands in for AWS KMS in the KMS key provider's tests.
command -v moto_server >/dev/null || python3 -m pip install -q --disable-pip-version-check "moto[server]"
# schemathesis fuzzes the running server from its OpenAPI document (bins/cli/tests/faults.rs).
command -v schemathesis >/dev/null || python3 -m pip install -q --disable-pip-version-check "schemathesis==4.32.5"
# A Python client generated from the OpenAPI document enrols and recognises (bins/cli/tests/server.rs).
command -v openapi-python-client >/dev/null || python3 -m pip install -q --disable-pip-version-check "openapi-python-client==0.29.1"
cluster=$(mktemp -d /tmp/facegate-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$cluster"; rm -rf "$cluster"' EXIT
export FACEGATE_TEST_POSTGRES_DIR=$cluster
FACEGATE_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$cluster")
export FACEGATE_TEST_POSTGRES_URL
deploy/validate.sh
# The derived OMZ ONNX files are reproduced from Intel's IR originals (same graph, same outputs).
if [ -n "${FACEGATE_MODEL_MIRROR:-}" ]; then scripts/convert-omz.sh; fi
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
