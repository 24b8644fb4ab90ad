#!/usr/bin/env bash
# The operator console (console/): `build` installs Node.js if the machine lacks it, the pinned npm
# packages (package-lock.json), then type-checks and builds the app into console/dist, which the Rust
# build embeds; `browser` installs what its browser test needs (Debian's chromium and ffmpeg).
# Safe to re-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root/console"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  command -v npm >/dev/null || apt_install nodejs npm
  # Vite needs Node.js 20.19 or later; an older distribution's Node.js gets the registry's node 20.
  if [ "$(node_major)" -lt 20 ]; then
    npm install --prefix "$FACEGATE_HOME/node" --no-save node@20 >/dev/null
    export PATH="$FACEGATE_HOME/node/node_modules/node/bin:$PATH"
  fi
}

case "${1:-build}" in
  build)
    ensure_node
    # The lock file pins every package; a changed lock or missing folder reinstalls.
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
    npm run --silent build
    ;;
  browser)
    missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v ffmpeg >/dev/null || missing+=(ffmpeg)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
    ;;
  *)
    echo "usage: scripts/console.sh [build|browser]" >&2
    exit 2
    ;;
esac
