#!/usr/bin/env bash
# Installs the pinned OpenVINO libraries, taken from the `openvino` wheel on PyPI, into
# $FACEGATE_HOME/runtime/openvino-<version>/, each verified against its sha256 in models/manifest.toml.
# The embedder can run on them instead of ONNX Runtime (`embedder_runtime`; `auto` tries OpenVINO's bf16
# on CPUs with AVX-512 BF16 / AMX). x86_64 Linux only; elsewhere this says so and exits 0.
# Usage: scripts/fetch-openvino.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [ "$(uname -m)" != x86_64 ]; then
  echo "openvino: not pinned for $(uname -m); the embedder runs on ONNX Runtime"
  exit 0
fi
pins=$(python3 - "$root/models/manifest.toml" <<'PY'
import sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))["openvino"]
print(spec["version"])
for f in spec["file"]:
    print(f["sha256_x86_64"], f["name"])
PY
)
version=$(head -1 <<<"$pins")
sums=$(tail -n +2 <<<"$pins")
dest="$FACEGATE_HOME/runtime/openvino-$version"
if [ -d "$dest" ] && (cd "$dest" && sed 's/ /  /' <<<"$sums" | sha256sum --check --status 2>/dev/null); then
  echo "openvino $version: $dest (verified)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$tmp" "openvino==$version"
mkdir -p "$tmp/libs"
# shellcheck disable=SC2046
python3 - "$tmp" $(awk '{print $2}' <<<"$sums") <<'PY'
import glob, sys, zipfile
tmp, names = sys.argv[1], sys.argv[2:]
wheel = glob.glob(f"{tmp}/openvino-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with open(f"{tmp}/libs/{name}", "wb") as out:
            out.write(z.read(f"openvino/libs/{name}"))
PY
(cd "$tmp/libs" && sed 's/ /  /' <<<"$sums" | sha256sum --check --quiet) || {
  echo "openvino $version: checksum mismatch against models/manifest.toml" >&2
  exit 1
}
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial" && mv "$tmp/libs" "$dest.partial"
rm -rf "$dest" && mv "$dest.partial" "$dest"
echo "openvino $version: installed $dest (verified)"
