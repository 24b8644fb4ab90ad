#!/usr/bin/env bash
# facegate's pipeline against the Python reference (scripts/pipeline_reference.py: onnxruntime + OpenCV
# on the same fp32 models; for the int8 pack, the fp32 ONNX model its IR was quantised from), one thread
# each, on the same LFW images, alternating runs so that both see
# the same machine load. Prints each run and the median ratio of Python's time to facegate's.
#
#   scripts/bench-vs-python.sh [IMAGES (default 588)] [ROUNDS (default 3)] [PACK...]
#
# FACEGATE_BENCH_FLAGS adds flags to facegate's runs (e.g. `--mirror always` to mirror every probe as the
# reference does).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
count="${1:-588}"; rounds="${2:-3}"; shift $(( $# > 2 ? 2 : $# ))
packs=("$@"); [ ${#packs[@]} -gt 0 ] || packs=(omz-0095 mobilefacenet)
venv=target/bench-python
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "onnxruntime==1.31.1" "opencv-python-headless==5.0.0.93" "numpy<3"
fi
[ -x target/release/facegate ] || cargo build --release --locked -p facegate-cli
lfw="${FACEGATE_LFW_DIR:-../shared/data/lfw}"
list=$(mktemp); trap 'rm -f "$list"' EXIT
# Every 22nd image of the sorted list: many people, fixed across runs.
find "$(realpath "$lfw")" -name '*.jpg' | sort | awk 'NR % 22 == 1' | head -n "$count" > "$list"
echo "$(wc -l < "$list") LFW images, one thread, $rounds rounds"
for pack in "${packs[@]}"; do
  target/release/facegate --pack "$pack" models fetch >/dev/null
  ratios=()
  for round in $(seq "$rounds"); do
    py=$("$venv/bin/python" scripts/pipeline_reference.py "$pack" "$list")
    # shellcheck disable=SC2086 # the flags are words
    rs=$(target/release/facegate --pack "$pack" --threads 1 ${FACEGATE_BENCH_FLAGS:-} bench --images "$list")
    line=$(python3 - "$py" "$rs" "$pack" "$round" <<'PY'
import json, sys
py, rs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = py["seconds"] / rs["seconds"]
print(f"{ratio:.3f}  {sys.argv[3]} round {sys.argv[4]}: python {py['seconds']:.2f} s ({py['faces']} faces), "
      f"facegate {rs['seconds']:.2f} s ({rs['faces']} faces), ratio {ratio:.3f}")
PY
)
    ratios+=("${line%% *}")
    echo "  ${line#*  }"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$pack: facegate is ${median}x the Python reference's speed (median of $rounds)"
done
