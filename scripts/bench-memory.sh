#!/usr/bin/env bash
# Peak memory (VmHWM) of `facegate serve --workers 2` in the two cases that used to blow it up:
# 64 concurrent uploads of a ~7.9 MB, 28 MP JPEG to /v1/detect, and one 6300x6300 16-bit RGBA PNG.
# Prints each case's peak RSS and the answers by status. Installs Pillow (PyPI) to make the images.
# Usage: scripts/bench-memory.sh [path/to/facegate]   (default: target/release/facegate)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
bin=$(realpath "${1:-target/release/facegate}")
python3 -c "import PIL" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pillow
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work" "$root/../shared/data/photos/group_t1.jpg" <<'PY'
import random, sys
from PIL import Image
work, group = sys.argv[1], sys.argv[2]
photo = Image.open(group).convert("RGB")
photo = photo.resize((6400, photo.height * 6400 // photo.width), Image.BILINEAR)
random.seed(7)
noise = Image.frombytes("RGB", photo.size, random.randbytes(photo.width * photo.height * 3))
photo = Image.blend(photo, noise, 0.06)
for quality in (97, 95, 92, 90, 88, 85, 80, 75):
    photo.save(f"{work}/big.jpg", quality=quality)
    if open(f"{work}/big.jpg", "rb").seek(0, 2) <= 8_000_000:
        break
PY
# A 16-bit RGBA PNG, written directly (Pillow cannot write 16-bit RGBA).
python3 - "$work/deep.png" <<'PY'
import struct, sys, zlib
width = height = 6300
row = b"\x00" + b"".join(struct.pack(">4H", (x // 700) * 7000, 30000, 40000, 65535) for x in range(width))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
compressor = zlib.compressobj(9)
idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)))
    f.write(chunk(b"IDAT", idat) + chunk(b"IEND", b""))
PY
export FACEGATE_MASTER_KEY=$(python3 -c "import secrets; print(secrets.token_hex(32))")
key=$($bin keys create --tenant bench --scopes admin --data-dir "$work" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['key'])")
serve() {
  $bin serve --addr 127.0.0.1:0 --data-dir "$work" --workers 2 > "$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.log")
}
peak() { awk '/VmHWM/ {printf "%.0f MB\n", $2 / 1000}' "/proc/$pid/status"; }

serve
echo "== 64 concurrent uploads of $(stat -c %s "$work/big.jpg") bytes ($(python3 -c "from PIL import Image; i = Image.open('$work/big.jpg'); print(f'{i.width}x{i.height}')")), --workers 2 =="
seq 64 | xargs -P 64 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "x-api-key: $key" -H 'content-type: image/jpeg' \
  -H 'Expect:' --data-binary "@$work/big.jpg" "$url/v1/detect" | sort | uniq -c | sed 's/^/answers: /'
echo "peak RSS: $(peak)"
kill "$pid"; wait "$pid" 2>/dev/null || true

serve
echo "== one 6300x6300 16-bit RGBA PNG of $(stat -c %s "$work/deep.png") bytes =="
curl -s -o /dev/null -w 'answer: %{http_code}\n' -H "x-api-key: $key" -H 'content-type: image/png' --data-binary "@$work/deep.png" "$url/v1/detect"
echo "peak RSS: $(peak)"
kill "$pid"; wait "$pid" 2>/dev/null || true
