#!/usr/bin/env bash
# Installs the pinned ONNX Runtime shared library, taken from the `onnxruntime` wheel on PyPI, into
# $FACEGATE_HOME/runtime/onnxruntime-<version>[-<arch>]/, verified against the sha256 in models/manifest.toml.
# Usage: scripts/fetch-onnxruntime.sh [x86_64|aarch64]   (default: this machine's architecture)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
arch=${1:-$(uname -m)}
read -r version library sha < <(python3 - "$root/models/manifest.toml" "$arch" <<'PY'
import sys, tomllib
runtime = tomllib.load(open(sys.argv[1], "rb"))["runtime"]
print(runtime["version"], runtime["library"], runtime["sha256_" + sys.argv[2]])
PY
)
dest="$FACEGATE_HOME/runtime/onnxruntime-$version"
[ "$arch" = "$(uname -m)" ] || dest="$dest-$arch"
if [ -f "$dest/$library" ] && echo "$sha  $dest/$library" | sha256sum --check --status; then
  echo "onnxruntime $version ($arch): $dest/$library (verified)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform "manylinux_2_28_$arch" --platform "manylinux_2_27_$arch" --platform "manylinux_2_17_$arch" \
  -d "$tmp" "onnxruntime==$version"
python3 - "$tmp" "$library" <<'PY'
import glob, sys, zipfile
tmp, library = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(f"{tmp}/{library}", "wb") as out:
    out.write(z.read(f"onnxruntime/capi/{library}"))
PY
echo "$sha  $tmp/$library" | sha256sum --check --status || {
  echo "onnxruntime $version ($arch): checksum mismatch, expected $sha" >&2
  exit 1
}
mkdir -p "$dest"
mv "$tmp/$library" "$dest/.$library.partial"
mv "$dest/.$library.partial" "$dest/$library"
echo "onnxruntime $version ($arch): installed $dest/$library (verified)"
