#!/usr/bin/env bash
# Builds the Lambda deployment package(s): `bootstrap` built by cargo-lambda with zig (linked against an
# old glibc, so it runs on provided.al2023), zipped with the ONNX Runtime library and the default pack's
# models in the layout the function reads from its task root (FACEGATE_HOME=/var/task):
#   bootstrap, models/<file>.onnx, runtime/onnxruntime-<version>/libonnxruntime.so.<version>
# Usage: scripts/package-lambda.sh [x86_64] [arm64]   (default: x86_64, plus arm64 when its Rust target is installed)
# Output: target/lambda/facegate-<arch>.zip and the sizes against Lambda's limits.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
command -v cargo-lambda >/dev/null || python3 -m pip install -q cargo-lambda ziglang
python3 -c "import ziglang" 2>/dev/null || python3 -m pip install -q ziglang
arches=("$@")
if [ ${#arches[@]} -eq 0 ]; then
  arches=(x86_64)
  if rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
    arches+=(arm64)
  else
    echo "arm64: the Rust target aarch64-unknown-linux-gnu is not installed here (rustup target add aarch64-unknown-linux-gnu); skipped"
  fi
fi
scripts/setup.sh > /dev/null
read -r version library < <(python3 - "$root/models/manifest.toml" <<'PY'
import sys, tomllib
runtime = tomllib.load(open(sys.argv[1], "rb"))["runtime"]
print(runtime["version"], runtime["library"])
PY
)
default_pack=$(grep -o 'DEFAULT_PACK: &str = "[^"]*"' crates/core/src/pack.rs | cut -d'"' -f2)
mapfile -t model_files < <(python3 - "$root/models/manifest.toml" "$default_pack" <<'PY'
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
pack = next(p for p in m["pack"] if p["name"] == sys.argv[2])
liveness = next((l["models"] for l in m.get("liveness", []) if l["name"] == pack.get("liveness")), [])
for model in m["model"]:
    if model["name"] in (pack["detector"], pack["embedder"], pack.get("landmarks"), *liveness):
        print(model["file"])
PY
)
mkdir -p target/lambda
for arch in "${arches[@]}"; do
  case $arch in
    x86_64) flag=--x86-64; triple=x86_64-unknown-linux-gnu; ort_arch=x86_64 ;;
    arm64) flag=--arm64; triple=aarch64-unknown-linux-gnu; ort_arch=aarch64 ;;
    *) echo "unknown architecture $arch" >&2; exit 2 ;;
  esac
  scripts/fetch-onnxruntime.sh "$ort_arch" > /dev/null
  lib_dir="$FACEGATE_HOME/runtime/onnxruntime-$version"
  [ "$ort_arch" = "$(uname -m)" ] || lib_dir="$lib_dir-$ort_arch"
  cargo lambda build --release --locked --bin bootstrap $flag --output-format binary --lambda-dir "target/lambda/$arch" > /dev/null
  # The release profile keeps line tables for profiling; the package does not need them.
  objcopy --strip-debug "target/lambda/$arch/bootstrap/bootstrap" "target/lambda/$arch/bootstrap/bootstrap.stripped"
  zip="target/lambda/facegate-$arch.zip"
  python3 - "$zip" "target/lambda/$arch/bootstrap/bootstrap.stripped" "$lib_dir/$library" "runtime/onnxruntime-$version/$library" \
    "$FACEGATE_HOME/models" "${model_files[@]}" <<'PY'
import os, sys, zipfile
zip_path, bootstrap, lib, lib_name, models_dir, *models = sys.argv[1:]
entries = [(bootstrap, "bootstrap"), (lib, lib_name)] + [(os.path.join(models_dir, m), "models/" + m) for m in models]
with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for source, name in entries:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = (0o755 if name == "bootstrap" else 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(source, "rb") as f:
            z.writestr(info, f.read())
unzipped = sum(os.path.getsize(s) for s, _ in entries)
zipped = os.path.getsize(zip_path)
print(f"{zip_path}: {zipped / 1e6:.1f} MB zipped (limit 50 MB), {unzipped / 1e6:.1f} MB unzipped (limit 250 MB)")
PY
done
