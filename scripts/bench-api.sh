#!/usr/bin/env bash
# Load figures for POST /v1/recognize on a one-face photo over loopback: wrk against `facegate serve`
# at each worker count and connection count, after enrolling three LFW people; answers are counted by
# status and socket errors by kind. Needs ../shared (LFW) and installs wrk if missing.
# Usage: scripts/bench-api.sh [seconds] [connections,...] [workers,...]   (defaults: 15 1,4,16,64 1,2)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
seconds=${1:-15}
connection_list=${2:-1,4,16,64}
worker_list=${3:-1,2}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
lfw=${FACEGATE_LFW_DIR:-$root/../shared/data/lfw}/lfw-deepfunneled
bin=${FACEGATE_BIN:-target/release/facegate}
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
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  local line = "answers by status:"
  for status, n in pairs(total) do line = line .. " " .. status .. "=" .. n end
  print(line)
  local e = summary.errors
  print(string.format("socket errors: connect %d, read %d, write %d, timeout %d", e.connect, e.read, e.write, e.timeout))
end
LUA
collection=
for workers in ${worker_list//,/ }; do
  $bin serve --addr 127.0.0.1:0 --data-dir "$work" --workers "$workers" --rate-limit 100000 > "$work/serve.log" 2>&1 &
  for _ in $(seq 50); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.log")
  if [ -z "$collection" ]; then
    collection=$(curl -sf -H "x-api-key: $key" -H 'content-type: application/json' -d '{"name":"bench"}' "$url/v1/collections" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
    for person in George_W_Bush Colin_Powell Tony_Blair; do
      subject=$(curl -sf -H "x-api-key: $key" -H 'content-type: application/json' -d "{\"name\":\"$person\"}" "$url/v1/collections/$collection/subjects" | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
      curl -sf -H "x-api-key: $key" -F "a=@$lfw/$person/${person}_0001.jpg" -F "b=@$lfw/$person/${person}_0002.jpg" \
        "$url/v1/collections/$collection/subjects/$subject/faces?face=largest" > /dev/null
    done
  fi
  for connections in ${connection_list//,/ }; do
    echo "== POST /v1/recognize, $workers worker(s), $connections connections, ${seconds}s =="
    wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${seconds}s" --latency -s "$work/recognize.lua" "$url/v1/recognize?collection=$collection" \
      | grep -E "Requests/sec|50%|99%|Non-2xx|requests in|answers by status|socket errors"
    curl -sf "$url/v1/health" > /dev/null || { echo "health check failed after the run" >&2; exit 1; }
  done
  kill %1 2>/dev/null || true
  wait 2>/dev/null || true
done
