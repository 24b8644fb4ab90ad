#!/usr/bin/env bash
# Reproduces what a hostile tenant, a stolen low-scope key or a careless operator could do to a door
# (issue 23), against a real `facegate serve` on loopback, and prints one line per defect: PASS or FAIL,
# with what was measured. Loopback only: the server's egress policy allows public addresses (the
# default) and 127.0.0.2 (the probe's webhook receivers); no probe registers a public address, and the
# internal addresses probed are only registered, never triggered. Bounded: about two minutes.
#
#   scripts/probe-security.sh                    # the release build of this checkout
#   FACEGATE_BIN=/path/to/facegate scripts/probe-security.sh   # another build (e.g. an older one, for "before")
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
bin=${FACEGATE_BIN:-$root/target/release/facegate}
[ -x "$bin" ] || { echo "probe-security: no facegate binary at $bin (cargo build --release --bin facegate)" >&2; exit 1; }
exec timeout 600 python3 "$root/scripts/probe_security.py" "$bin" "$root/../shared"
