#!/usr/bin/env bash
# Soak (figures in the README): the real service on loopback with the demo population, mixed
# traffic for SECONDS (default 600) with `wrk`: 60 % scores (lender key), 25 % payment batches of
# five new payments (platform key), 15 % eligibility (merchant key, whose default limit of 1/s
# makes most of them the intended 429s). Reports answers by status, p50/p99 latency, and the
# service's memory at minute 2 and at the end. Fails on any status other than 200 and 429, or if
# memory grew by 10 % or more between minute 2 and the end. Stops by itself; loopback only.
# Usage: benches/soak.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
conns=${2:-8}
port=18184
cargo build --release --bins
bin=target/release/smecredit
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"

# generous limits for lenders and platforms; the merchant keeps the default (1/s, burst 10)
SMECREDIT_DATABASE_URL="sqlite://$work/soak.db" SMECREDIT_BIND="127.0.0.1:$port" SMECREDIT_LOG=warn \
  SMECREDIT_RATE_LIMIT_LENDER_PER_SECOND=0 SMECREDIT_RATE_LIMIT_PLATFORM_PER_SECOND=0 \
  "$bin" serve --demo >"$work/keys.out" 2>"$work/serve.log" &
server=$!
# the listener answers before the demo is seeded and its keys printed: wait for both
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && grep -q '^export MERCHANT_KEY=' "$work/keys.out" && break
  sleep 0.2
done
key() { sed -n "s/^export $1_KEY=\(smk_[0-9a-f]*\).*/\1/p" "$work/keys.out"; }
platform=$(key PLATFORM)
lender=$(key LENDER)
merchant=$(key MERCHANT)
[ -n "$platform" ] && [ -n "$lender" ] && [ -n "$merchant" ] || { echo "no demo keys" >&2; exit 1; }

cat > "$work/soak.lua" <<LUA
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("id", #threads_list + 1)
  table.insert(threads_list, thread)
end
threads_list = {}
function init(args) thread_id = id or 1 end
function request()
  counter = counter + 1
  local r = math.random(100)
  local m = string.format("m%06d", math.random(0, 39))
  if r <= 60 then
    return wrk.format("POST", "/v1/scores",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $lender"},
      string.format('{"merchant_id":"%s"}', m))
  elseif r <= 85 then
    local ps = {}
    for k = 1, 5 do
      local n = counter * 5 + k
      table.insert(ps, string.format(
        '{"payment_id":"soak-%d-%d","occurred_at":"2026-11-%02dT%02d:%02d:%02dZ","amount":{"amount":"%d.50","currency":"CNY"},"kind":"sale","channel":"qr_code","payer_ref":"soak-payer-%d"}',
        thread_id, n, 1 + n % 20, n % 24, n % 60, k, 5 + n % 90, n % 300))
    end
    return wrk.format("POST", "/v1/merchants/" .. m .. "/payments",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $platform"},
      '{"payments":[' .. table.concat(ps, ",") .. ']}')
  else
    return wrk.format("GET", "/v1/merchants/m000001/eligibility",
      {["Authorization"] = "Bearer $merchant", ["Accept-Language"] = "zh-CN"}, nil)
  end
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and status ~= 429 and not first_failure then first_failure = body end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads_list) do
    for code, n in pairs(t:get("statuses")) do io.write(string.format("status %d: %d\\n", code, n)) end
    local f = t:get("first_failure")
    if f then io.write("first failure: " .. f .. "\\n") end
  end
  io.write(string.format("p50 %.1f ms, p99 %.1f ms, %d requests\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests))
end
LUA

# Resident memory of the process's own (anonymous) pages, in kB: the heap, SQLite's page caches,
# stacks. The rest of VmRSS is file pages (the binary, SQLite's shared-memory index), printed
# beside it; they do not grow with the traffic.
rss() { awk '/RssAnon/ {print $2}' "/proc/$server/status"; }
file_rss() { awk '/RssFile/ {print $2}' "/proc/$server/status"; }
echo "service memory at start: $(( $(rss) / 1024 )) MB own, $(( $(file_rss) / 1024 )) MB of mapped files"
# own memory every 30 s, to tell a level that settles from one that keeps growing
(
  t=0
  while sleep 30; do
    t=$((t + 30))
    r=$(rss)
    echo "$t $r" >> "$work/rss.trace"
    [ "$t" = 120 ] && echo "$r" > "$work/rss.2min"
  done
) &
sampler=$!
wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s "$work/soak.lua" "http://127.0.0.1:$port" | tee "$work/wrk.out"
kill "$sampler" 2>/dev/null || true
end_rss=$(rss)
start_rss=$(cat "$work/rss.2min" 2>/dev/null || echo "$end_rss")
echo "service memory at minute 2: $((start_rss / 1024)) MB own, at the end: $((end_rss / 1024)) MB own, $(( $(file_rss) / 1024 )) MB of mapped files"
growth=$(awk -v a="$start_rss" -v b="$end_rss" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "memory growth from minute 2 to the end: $growth %"
echo "own memory over time (s: MB): $(awk '{printf "%s: %.1f  ", $1, $2 / 1024}' "$work/rss.trace" 2>/dev/null)"
status=0
if grep -E "^status" "$work/wrk.out" | grep -vqE "^status (200|429):"; then
  echo "FAILED: answers other than 200 and 429" >&2; status=1
fi
if grep -qE "Socket errors" "$work/wrk.out"; then
  echo "FAILED: socket errors" >&2; status=1
fi
if awk -v g="$growth" 'BEGIN { exit !(g >= 10) }'; then
  echo "FAILED: memory grew by 10 % or more" >&2; status=1
fi
[ $status = 0 ] && echo "soak passed"
exit $status
