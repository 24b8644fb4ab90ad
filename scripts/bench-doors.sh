#!/usr/bin/env bash
# Door attempt latency over loopback: one `facegate serve` (1 worker, 1 thread), one person enrolled
# from two NUAA webcam frames, a door that requires liveness; then N attempts with 1 frame and N with 3
# frames, alternating, each timed by curl from request to answer. Prints p50/p99 of each and checks
# every answer was `granted`. Needs ../shared (liveness data).
# Usage: scripts/bench-doors.sh [N (default 50)]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
n=${1:-50}
frames=${FACEGATE_LIVENESS_DIR:-$root/../shared/data/liveness}/nuaa/ClientRaw
bin=${FACEGATE_BIN:-target/release/facegate}
[ -x "$bin" ] || cargo build --release --locked -p facegate-cli
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export FACEGATE_MASTER_KEY=$(python3 -c "import secrets; print(secrets.token_hex(32))")
key=$($bin keys create --tenant bench --scopes admin --data-dir "$work" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['key'])")
$bin --threads 1 serve --addr 127.0.0.1:0 --data-dir "$work" --workers 1 --rate-limit 1000 > "$work/serve.log" 2>&1 &
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
api() { curl -sf -H "x-api-key: $key" "$@"; }
id() { python3 -c "import json,sys; print(json.load(sys.stdin)['id'])"; }
collection=$(api -H 'content-type: application/json' -d '{"name":"bench"}' "$url/v1/collections" | id)
subject=$(api -H 'content-type: application/json' -d '{"name":"Ann"}' "$url/v1/collections/$collection/subjects" | id)
api -F a=@"$frames/0004_01_00_01_406.jpg" -F b=@"$frames/0004_01_00_01_55.jpg" \
  "$url/v1/collections/$collection/subjects/$subject/faces" > /dev/null
door=$(api -H 'content-type: application/json' \
  -d "{\"name\":\"front\",\"collection_id\":\"$collection\",\"policy\":{\"allow_everyone\":true,\"timezone\":\"UTC\"}}" \
  "$url/v1/doors" | id)
one=(-F "a=@$frames/0004_01_06_03_210.jpg")
three=(-F "a=@$frames/0004_01_06_03_210.jpg" -F "b=@$frames/0004_01_06_03_92.jpg" -F "c=@$frames/0004_01_00_02_292.jpg")
attempt() { curl -s -o "$work/answer" -w '%{time_total}\n' -H "x-api-key: $key" "$@" "$url/v1/doors/$door/attempts"; grep -q '"access":"granted"' "$work/answer" || { cat "$work/answer"; exit 1; }; }
for _ in 1 2 3; do attempt "${one[@]}" > /dev/null; attempt "${three[@]}" > /dev/null; done
for _ in $(seq "$n"); do attempt "${one[@]}" >> "$work/one"; attempt "${three[@]}" >> "$work/three"; done
python3 - "$work/one" "$work/three" "$n" <<'PY'
import sys
def stats(path):
    times = sorted(float(line) * 1000 for line in open(path))
    pick = lambda p: times[min(len(times) - 1, round((len(times) - 1) * p))]
    return pick(0.5), pick(0.99)
n = sys.argv[3]
for label, path in (("1 frame ", sys.argv[1]), ("3 frames", sys.argv[2])):
    p50, p99 = stats(path)
    print(f"door attempt, {label}, liveness required, {n} attempts (1 worker, 1 thread): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
PY
