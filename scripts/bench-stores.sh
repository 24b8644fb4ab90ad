#!/usr/bin/env bash
# Store figures side by side (PostgreSQL + pgvector exact and HNSW, embedded SQLite + in-memory index):
# enrolment throughput, search p50/p99 and recall@1. Starts and stops a throwaway PostgreSQL cluster.
# Usage: scripts/bench-stores.sh [sizes, e.g. 10000,100000] [stores: postgres,embedded (default) or embedded]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$root"
scripts/postgres.sh install
cluster=$(mktemp -d /tmp/facegate-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$cluster"; rm -rf "$cluster"' EXIT
FACEGATE_BENCH_POSTGRES_URL=$(scripts/postgres.sh start "$cluster")
export FACEGATE_BENCH_POSTGRES_URL FACEGATE_BENCH_SIZES=${1:-10000,100000} FACEGATE_BENCH_STORES=${2:-postgres,embedded}
cargo bench --locked -p facegate-store-postgres --bench stores
