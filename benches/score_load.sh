#!/usr/bin/env bash
# Scoring under load over HTTP (figures in the README):
#   MERCHANTS stored merchants on SQLite, each with a year of history (10,950 payments: 30 a day),
#   scored as of 2026-06-30 by `wrk` over loopback (POST /v1/scores, a random merchant each time)
#   for SECONDS with CONNECTIONS connections, each sending its next request as soon as the last is
#   answered: the most the service can do (closed loop). Then RATE scores a second at fixed
#   intervals for SECONDS (`examples/score_rate.rs`, open loop): the latency a client sees at that
#   load, measured from the instant each request was due, so a stall counts against every request
#   that should have gone out during it. The service's resident memory is sampled every 0.2 s.
#   Last, the closed-loop load again while the active model is switched back and forth every
#   0.5 s: every request must succeed.
# Usage: benches/score_load.sh [MERCHANTS] [SECONDS] [CONNECTIONS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
merchants=${1:-500}
secs=${2:-30}
conns=${3:-32}
rate=${4:-1500}
port=18182
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
target/release/examples/gen_ingest_data "$work/data" "$merchants" $((merchants * 10950)) >/dev/null
db="sqlite://$work/score.db"
"$bin" --database-url "$db" import "$work/data/merchants.csv" >/dev/null 2>&1
"$bin" --database-url "$db" import "$work/data/payments.csv" >/dev/null 2>&1
echo "data: $merchants merchants, $((merchants * 10950)) payments, database $(du -h "$work/score.db" | cut -f1)"
# The import leaves some 600 MB of the new file for the kernel to write back; flushed during the
# runs, it slowed every commit of the audit log (p99 at 1,500/s 124-184 ms in the first run after
# a copy of the file, 7-11 ms once written). Write it out first: the runs measure scoring.
sync

# the shipped model, and a copy of it under a second version to switch to
mkdir "$work/models"
shipped=$(ls models | sort | tail -n 1)
cp -r "models/$shipped" "$work/models/$shipped"
cp -r "models/$shipped" "$work/models/zz-switch"

keys=$("$bin" --database-url "$db" keys create --role lender --name bench 2>/dev/null | tail -n 1 || true)
admin=$("$bin" --database-url "$db" keys create --role admin --name bench-admin 2>/dev/null | tail -n 1 || true)

SMECREDIT_DATABASE_URL="$db" SMECREDIT_BIND="127.0.0.1:$port" SMECREDIT_LOG=warn \
  SMECREDIT_MODELS_DIR="$work/models" SMECREDIT_MODEL="$shipped" \
  SMECREDIT_RATE_LIMIT_LENDER_PER_SECOND=0 SMECREDIT_RATE_LIMIT_ADMIN_PER_SECOND=0 \
  "$bin" serve >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
# another process answering on the port would be measured instead (and refuse this run's keys)
kill -0 "$server" 2>/dev/null || { echo "the service did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

cat > "$work/score.lua" <<LUA
math.randomseed(42)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $keys"
request = function()
  local body = string.format('{"merchant_id":"bm-%06d","as_of":"2026-06-30"}', math.random(0, $merchants - 1))
  return wrk.format(nil, "/v1/scores", nil, body)
end
threads = {}
setup = function(thread) table.insert(threads, thread) end
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and not first_failure then first_failure = body end
end
done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do io.write(string.format("status %d: %d\n", code, n)) end
    local f = t:get("first_failure")
    if f then io.write("first failure: " .. f .. "\n") end
  end
end
LUA

# Peaks of the service's resident memory (VmRSS) and of its own (anonymous) part, RssAnon: the
# heap, SQLite's page caches and stacks; the rest is file pages (the binary, SQLite's index).
# Bash builtins only (no awk, no sleep process): on 2 cores, forking 15 processes a second to
# sample took CPU from the service being measured.
sample_rss() {
  local max=0 anon=0 key value _ tick
  exec {tick}<> <(:) # a pipe nobody writes to: `read -t` on it waits without a process
  while [ -r "/proc/$server/status" ]; do
    while read -r key value _; do
      case $key in
        VmRSS:) [ "$value" -gt "$max" ] && max=$value && echo "$max" > "$work/rss.max" ;;
        RssAnon:) [ "$value" -gt "$anon" ] && anon=$value && echo "$anon" > "$work/anon.max" ;;
      esac
    done < "/proc/$server/status" 2>/dev/null || true
    read -r -t 0.2 -u "$tick" _ || true
  done
}

run() {
  echo 0 > "$work/rss.max"
  echo 0 > "$work/anon.max"
  echo "service memory before: $(awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$server/status") resident, $(awk '/RssAnon/ {printf "%.0f MB", $2 / 1024}' "/proc/$server/status") own"
  sample_rss &
  local sampler=$!
  wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$work/score.lua" "http://127.0.0.1:$port" | tee "$work/wrk.out"
  kill "$sampler" 2>/dev/null || true
  memory
}
memory() {
  echo "service memory peak during the run: $(awk '{printf "%.0f MB", $1 / 1024}' "$work/rss.max") resident, of which own (anonymous) $(awk '{printf "%.0f MB", $1 / 1024}' "$work/anon.max")"
}

echo "== scoring, $conns connections, ${secs}s"
curl -s -o /dev/null -H "Authorization: Bearer $keys" -H 'Content-Type: application/json' \
  -d '{"merchant_id":"bm-000000","as_of":"2026-06-30"}' "http://127.0.0.1:$port/v1/scores"
run

echo "== $rate scores a second at fixed intervals (open loop), ${secs}s"
echo 0 > "$work/rss.max"
echo 0 > "$work/anon.max"
sample_rss &
sampler=$!
# A machine that cannot keep up fails requests here (they time out); that is a result, and
# the model-switch run below still runs.
SMECREDIT_API_KEY="$keys" target/release/examples/score_rate "http://127.0.0.1:$port" "$merchants" "$rate" "$secs" ||
  echo "(the open loop had failed requests: the service did not keep up with $rate/s)"
kill "$sampler" 2>/dev/null || true
memory

echo "== the closed-loop load while the model is switched every 0.5 s"
(
  switches=0 failed=0
  end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    for v in zz-switch "$shipped"; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
        "http://127.0.0.1:$port/v1/models/$v/activate")
      switches=$((switches + 1))
      [ "$code" = 200 ] || failed=$((failed + 1))
      sleep 0.5
    done
  done
  echo "model switches: $switches, failed: $failed" > "$work/switch.out"
) &
switcher=$!
run
wait "$switcher"
cat "$work/switch.out"
if grep -q -E "Non-2xx|Socket errors" "$work/wrk.out"; then
  echo "FAILED: some requests failed during the model switches" >&2
  exit 1
fi
echo "zero failed requests during the model switches"
