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
