#!/usr/bin/env bash
# Sets facegate up and runs the main job on sample photos: detect and draw faces, compare two people.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
scripts/setup.sh
photos=${FACEGATE_PHOTOS:-$root/../shared/data/photos}
lfw=${FACEGATE_LFW_DIR:-$root/../shared/data/lfw}
mkdir -p out
echo "== detect =="
target/release/facegate detect "$photos/group_t1.jpg" --draw out/group_t1.faces.png
echo "annotated image: out/group_t1.faces.png"
if [ -d "$lfw/lfw-deepfunneled" ]; then
  echo "== compare =="
  target/release/facegate compare "$lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg" \
    "$lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0002.jpg"
  target/release/facegate compare "$lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg" \
    "$lfw/lfw-deepfunneled/Tony_Blair/Tony_Blair_0001.jpg"
fi
if [ -d "$lfw/lfw-deepfunneled" ]; then
  echo "== serve: enrol one person, recognise them and a stranger =="
  data=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$data"' EXIT
  key=$(target/release/facegate keys create --tenant demo --scopes admin --data-dir "$data" --json \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['key'])")
  target/release/facegate serve --addr 127.0.0.1:0 --data-dir "$data" > "$data/serve.log" 2>&1 &
  for _ in $(seq 100); do grep -q listening "$data/serve.log" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$data/serve.log")
  api() { curl -sS -H "x-api-key: $key" "$@"; }
  json_id() { python3 -c "import json,sys; print(json.load(sys.stdin)['id'])"; }
  collection=$(api -H 'content-type: application/json' -d '{"name":"front-door"}' "$url/v1/collections" | json_id)
  subject=$(api -H 'content-type: application/json' -d '{"name":"Colin Powell"}' "$url/v1/collections/$collection/subjects" | json_id)
  api -F "a=@$lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0001.jpg" \
    -F "b=@$lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0002.jpg" \
    "$url/v1/collections/$collection/subjects/$subject/faces?face=largest" > /dev/null
  for probe in Colin_Powell/Colin_Powell_0010.jpg Tony_Blair/Tony_Blair_0001.jpg; do
    api -H 'content-type: image/jpeg' --data-binary "@$lfw/lfw-deepfunneled/$probe" "$url/v1/recognize?collection=$collection" \
      | python3 -c "
import json, sys
r = json.load(sys.stdin)
f = max(r['faces'], key=lambda f: f['bbox']['width'] * f['bbox']['height'])
who = f['subject']['name'] if f['subject'] else 'unknown'
print(f'$probe: {who} (best score {f[\"candidates\"][0][\"score\"]:.3f}, threshold {r[\"threshold\"]:.3f} at FMR {r[\"target_fmr\"]:g})')"
  done
fi
