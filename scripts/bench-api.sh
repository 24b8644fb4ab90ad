#!/usr/bin/env bash
# Load figures for POST /v1/recognize on a one-face photo over loopback: wrk against `facegate serve`
# at 1 and 2 workers, after enrolling three LFW people. Needs ../shared (LFW) and installs wrk if missing.
# Usage: scripts/bench-api.sh [seconds] [connections]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
seconds=${1:-15}
connections=${2:-4}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
lfw=${FACEGATE_LFW_DIR:-$root/../shared/data/lfw}/lfw-deepfunneled
bin=target/release/facegate
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export FACEGATE_MASTER_KEY=$(python3 -c "import secrets; print(secrets.token_hex(32))")
key=$($bin keys create --tenant bench --scopes admin --data-dir "$work" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['key'])")
cat > "$work/recognize.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "image/jpeg"
wrk.headers["x-api-key"] = "$key"
local f = io.open("$lfw/Colin_Powell/Colin_Powell_0010.jpg", "rb")
wrk.body = f:read("*all")
f:close()
LUA
for workers in 1 2; do
  $bin serve --addr 127.0.0.1:0 --data-dir "$work" --workers "$workers" --rate-limit 100000 > "$work/serve.log" 2>&1 &
  for _ in $(seq 50); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.log")
  if [ "$workers" = 1 ]; then
    collection=$(curl -sf -H "x-api-key: $key" -H 'content-type: application/json' -d '{"name":"bench"}' "$url/v1/collections" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
    for person in George_W_Bush Colin_Powell Tony_Blair; do
      subject=$(curl -sf -H "x-api-key: $key" -H 'content-type: application/json' -d "{\"name\":\"$person\"}" "$url/v1/collections/$collection/subjects" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
      curl -sf -H "x-api-key: $key" -F "a=@$lfw/$person/${person}_0001.jpg" -F "b=@$lfw/$person/${person}_0002.jpg" \
        "$url/v1/collections/$collection/subjects/$subject/faces?face=largest" > /dev/null
    done
  fi
  echo "== POST /v1/recognize, $workers worker(s), $connections connections, ${seconds}s =="
  wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${seconds}s" --latency -s "$work/recognize.lua" "$url/v1/recognize?collection=$collection" \
    | grep -E "Requests/sec|50%|99%|Non-2xx|requests in"
  kill %1 2>/dev/null || true
  wait 2>/dev/null || true
done
