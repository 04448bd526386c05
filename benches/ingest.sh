#!/usr/bin/env bash
# Ingestion benchmarks (figures in the README):
#   1. `smecredit import` of 1,000,000 payments for 1,000 merchants into SQLite, then PostgreSQL:
#      payments/s and the importer's peak memory (GNU time's max RSS).
#   2. HTTP ingestion into SQLite in batches of 5,000 over loopback (examples/ingest_load.rs).
# Usage: benches/ingest.sh [PAYMENTS]   (PostgreSQL at $BENCH_POSTGRES_URL, default the local one)
set -euo pipefail
cd "$(dirname "$0")/.."
payments=${1:-1000000}
pg_server=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --release --bins --examples
bin=target/release/smecredit
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
target/release/examples/gen_ingest_data "$work/data" 1000 "$payments"
echo "data: $(wc -l < "$work/data/payments.csv") lines, $(du -h "$work/data/payments.csv" | cut -f1)"

import() {
  local url=$1 label=$2
  "$bin" --database-url "$url" import "$work/data/merchants.csv" >/dev/null 2>&1
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" --database-url "$url" import "$work/data/payments.csv" 2> "$work/import.log"
  end=$(date +%s.%N)
  tail -n 1 "$work/import.log" | sed 's/^/  /'
  awk -v s="$start" -v e="$end" -v n="$payments" -v rss="$(cat "$work/rss")" -v l="$label" \
    'BEGIN { printf "%s import: %d payments in %.1f s = %.0f payments/s, peak memory %.0f MB\n", l, n, e - s, n / (e - s), rss / 1024 }'
}

import "sqlite://$work/import.db" "SQLite"

db="smecredit_bench_$$"
psql "$pg_server" -qc "CREATE DATABASE $db" >/dev/null
import "${pg_server%/*}/$db" "PostgreSQL"
psql "$pg_server" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null

# A platform key for the load generator; the measurement is of ingestion, not of the rate limit.
key=$("$bin" --database-url "sqlite://$work/http.db" keys create --role platform --name bench 2>/dev/null)
SMECREDIT_DATABASE_URL="sqlite://$work/http.db" SMECREDIT_BIND=127.0.0.1:18181 SMECREDIT_LOG=warn \
  SMECREDIT_RATE_LIMIT_PLATFORM_PER_SECOND=0 "$bin" serve >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18181/readyz >/dev/null && break; sleep 0.2; done
echo -n "HTTP ingestion into SQLite: "
SMECREDIT_API_KEY="$key" target/release/examples/ingest_load http://127.0.0.1:18181 200 5000 4
