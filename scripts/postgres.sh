#!/usr/bin/env bash
# A throwaway PostgreSQL 15 + pgvector cluster on loopback, for tests and benchmarks.
#   scripts/postgres.sh install      install PostgreSQL 15 (Debian) and build pgvector from Debian trixie's source package
#   scripts/postgres.sh start DIR    init a cluster in DIR, start it on a free port, print its URL (also in DIR/url)
#   scripts/postgres.sh stop DIR     stop it (fast shutdown)
#   scripts/postgres.sh kill DIR     SIGKILL the postmaster (crash tests)
#   scripts/postgres.sh restart DIR  start it again on the same port
set -euo pipefail
pg_bin=/usr/lib/postgresql/15/bin
pgvector_source_version=${PGVECTOR_SOURCE_SUITE:-trixie}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  if [ -x "$pg_bin/postgres" ] && [ -f /usr/share/postgresql/15/extension/vector.control ]; then
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15 postgresql-server-dev-15 build-essential dpkg-dev > /dev/null
  if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
    # Debian 12 has no pgvector for PostgreSQL 15; the newer suite's source package builds against it.
    # The mirror is whatever this machine's own Debian sources use.
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    list=/etc/apt/sources.list.d/facegate-pgvector-src.list
    echo "deb-src $uri $pgvector_source_version main" > "$list"
    apt-get update -qq
    build=$(mktemp -d)
    (cd "$build" && apt-get source -qq pgvector > /dev/null && cd pgvector-*/ \
      && make -s PG_CONFIG="$pg_bin/pg_config" > /dev/null && make -s PG_CONFIG="$pg_bin/pg_config" install > /dev/null)
    rm -rf "$build" "$list"
  fi
}

free_port() {
  python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

start() {
  local dir=$1 port
  mkdir -p "$dir"
  chown postgres "$dir" 2>/dev/null || true
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_postgres "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync > /dev/null
  fi
  port=$(cat "$dir/port" 2>/dev/null || free_port)
  echo "$port" > "$dir/port"
  as_postgres "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start > /dev/null
  as_postgres "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'facegate'" | grep -q 1 \
    || as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres facegate
  as_postgres "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d facegate -qc "CREATE EXTENSION IF NOT EXISTS vector" > /dev/null
  echo "postgres://postgres@127.0.0.1:$port/facegate" | tee "$dir/url"
}

stop() {
  as_postgres "$pg_bin/pg_ctl" -D "$1/data" -m fast -w stop > /dev/null 2>&1 || true
}

kill_cluster() {
  # A crash: SIGKILL the postmaster and every backend at once, as a power cut would.
  local pid children
  pid=$(head -1 "$1/data/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  children=$(pgrep -P "$pid" || true)
  kill -9 "$pid" $children 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" $children 2>/dev/null || break
    sleep 0.1
  done
}

case "${1:-}" in
  install) install ;;
  start) start "$2" ;;
  stop) stop "$2" ;;
  kill) kill_cluster "$2" ;;
  restart) start "$2" ;;
  *) echo "usage: $0 install | start DIR | stop DIR | kill DIR | restart DIR" >&2; exit 2 ;;
esac
