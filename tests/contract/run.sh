#!/usr/bin/env bash
# Contract test (issue 6, item 9; figures in the README): schemathesis, from PyPI at a pinned
# version, against the real service's own /openapi.json, with a key of the right role for every
# operation (tests/contract/hooks.py). Every operation that takes any input gets at least
# EXAMPLES generated cases (default 100), and every answer is checked (`--checks all`, none
# excluded; per-operation settings and their reasons in tests/contract/schemathesis.toml): no
# 5xx, a documented status, the documented content type, headers and body schema, valid data
# accepted, invalid data rejected, 405 for undeclared methods, 401 without a valid key. Then the
# service must stop cleanly on SIGTERM with no error in its log. Exits non-zero on any failure.
#
# The service runs on a free loopback port with a fresh SQLite file and the demo population
# (`serve --demo`), rate limits off so that the fuzzer's pace is not answered with 429s.
# Uses the debug binary under $CARGO_TARGET_DIR (default target/), building it if absent.
#
# Usage: tests/contract/run.sh [EXAMPLES]
# Environment: SEED (default 6); WORKERS (default 1: one request at a time, so that a run
# repeats exactly); KEEP=1 keeps the service's log, database and requests.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${1:-100}
seed=${SEED:-6}
workers=${WORKERS:-1}
schemathesis_version=4.32.5
target=${CARGO_TARGET_DIR:-target}

# --- schemathesis in a venv of its own, reused while its version stays the same
venv="$target/contract-venv"
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $schemathesis_version" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

# --- the service
bin="$target/debug/smecredit"
[ -x "$bin" ] || cargo build --bin smecredit
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM "$server" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work (service log, keys, requests)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
echo "machine: $(nproc) cores; service on $base, database $work/contract.db"
SMECREDIT_DATABASE_URL="sqlite://$work/contract.db" SMECREDIT_BIND="127.0.0.1:$port" SMECREDIT_LOG=warn \
  SMECREDIT_RATE_LIMIT_PLATFORM_PER_SECOND=0 SMECREDIT_RATE_LIMIT_LENDER_PER_SECOND=0 \
  SMECREDIT_RATE_LIMIT_MERCHANT_PER_SECOND=0 SMECREDIT_RATE_LIMIT_ADMIN_PER_SECOND=0 \
  "$bin" serve --demo >"$work/keys.out" 2>"$work/serve.log" &
server=$!
# the listener answers before the demo is seeded and its keys printed: wait for both
for _ in $(seq 1 600); do
  curl -sf "$base/readyz" >/dev/null && grep -q '^export ADMIN_KEY=' "$work/keys.out" && break
  kill -0 "$server" 2>/dev/null || { echo "the service stopped:" >&2; cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
grep -q '^export ADMIN_KEY=' "$work/keys.out" || { echo "no demo keys" >&2; cat "$work/serve.log" >&2; exit 1; }
key() { sed -n "s/^export $1_KEY=\(smk_[0-9a-f]*\).*/\1/p" "$work/keys.out"; }
key_id() { sed -n "s/^export $1_KEY=smk_[0-9a-f]* *# *\(key_[0-9a-z]*\).*/\1/p" "$work/keys.out"; }
export CONTRACT_PLATFORM_KEY CONTRACT_LENDER_KEY CONTRACT_MERCHANT_KEY CONTRACT_ADMIN_KEY CONTRACT_PROTECTED_KEY_IDS
CONTRACT_PLATFORM_KEY=$(key PLATFORM)
CONTRACT_LENDER_KEY=$(key LENDER)
CONTRACT_MERCHANT_KEY=$(key MERCHANT)
CONTRACT_ADMIN_KEY=$(key ADMIN)
CONTRACT_PROTECTED_KEY_IDS="$(key_id PLATFORM) $(key_id LENDER) $(key_id MERCHANT) $(key_id ADMIN)"
# a key for the fuzzer to revoke in place of the run's own
export CONTRACT_SACRIFICIAL_KEY_ID
CONTRACT_SACRIFICIAL_KEY_ID=$(curl -sf -X POST "$base/v1/keys" -H "Authorization: Bearer $CONTRACT_ADMIN_KEY" \
  -H 'Content-Type: application/json' -d '{"role": "lender", "name": "contract-revocable"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key_id"])')
# loans the demo holds, so that loan routes are also tried on loans that exist
export CONTRACT_LOAN_IDS
CONTRACT_LOAN_IDS=$(curl -sf "$base/v1/merchants/m000001/loans" -H "Authorization: Bearer $CONTRACT_PLATFORM_KEY" |
  python3 -c 'import json, sys; print(" ".join(l["loan_id"] for l in json.load(sys.stdin)["loans"]))')
# the model versions, so that activation is also tried on models that exist (switching the
# model changes the scores, nothing the run depends on)
export CONTRACT_MODEL_VERSIONS
CONTRACT_MODEL_VERSIONS=$(curl -sf "$base/v1/models" -H "Authorization: Bearer $CONTRACT_ADMIN_KEY" |
  python3 -c 'import json, sys; print(" ".join(m["version"] for m in json.load(sys.stdin)["models"]))')
# decisions made before the run, so that reading a decision is also tried on ones that exist
export CONTRACT_DECISION_IDS=""
for m in m000002 m000003 m000004; do
  CONTRACT_DECISION_IDS+=" $(curl -sf -X POST "$base/v1/scores" -H "Authorization: Bearer $CONTRACT_LENDER_KEY" \
    -H 'Content-Type: application/json' -d "{\"merchant_id\": \"$m\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["decision_id"])')"
done

# --- the run
# Two passes, because one run in both modes (`--mode all`) stops drawing cases for some
# operations well before EXAMPLES: valid data through every phase (the stateful phase chains
# real answers: a merchant created, then its payments, loans, scores and decisions), then invalid
# data through the coverage and fuzzing phases. No check is excluded: `--checks all`, with the
# per-operation settings and their reasons in tests/contract/schemathesis.toml.
started=$(date +%s)
status=0
rm -rf "$target/contract-report"
schemathesis() {
  CONTRACT_CALLS_LOG="$work/calls.$1.log" PYTHONPATH=tests/contract SCHEMATHESIS_HOOKS=hooks "$venv/bin/schemathesis" \
    --config-file tests/contract/schemathesis.toml \
    run "$base/openapi.json" \
    --checks all \
    --max-examples "$examples" \
    --seed "$seed" \
    --workers "$workers" \
    --generation-database none \
    --request-timeout 30 \
    --no-color \
    --report junit --report-dir "$target/contract-report" --mode "$@" || status=1
}
echo "== valid data: examples, coverage, fuzzing, stateful"
schemathesis positive
# (Operations that take no input but the key get only 401s here: a missing or wrong key is the
# only invalid request they have; schemathesis warns about it.)
echo "== invalid data: coverage, fuzzing"
schemathesis negative --phases coverage,fuzzing
echo "contract run: $(($(date +%s) - started)) s, up to $examples cases per operation, phase and mode, seed $seed"

# Cases per operation (a case and the requests the checks derive from it count once), with the
# answers to them by status. Fails if an operation that takes any input got fewer than EXAMPLES:
# only /healthz and /readyz take none (no parameter, body or key), so only one request to each
# can be generated, plus the coverage phase's variations of method and headers.
python3 - "$examples" "$work"/calls.*.log <<'PY' || status=1
import collections, sys
cases = collections.defaultdict(set)
answers = collections.defaultdict(collections.Counter)
for log in sys.argv[2:]:
    for line in open(log):
        method, path, code, key, phase, case = line.split()
        cases[f"{method} {path}"].add((log, case))
        answers[f"{method} {path}"][code] += 1
print("cases per operation, and the answers to them by status:")
short = []
for op in sorted(cases):
    codes = " ".join(f"{c}:{n}" for c, n in sorted(answers[op].items()))
    print(f"  {len(cases[op]):5d}  {op:45s} {codes}")
    if len(cases[op]) < int(sys.argv[1]) and op not in ("GET /healthz", "GET /readyz"):
        short.append(op)
total = sum(len(c) for c in cases.values())
print(f"  {total:5d}  cases in all, {sum(sum(a.values()) for a in answers.values())} requests, {len(cases)} operations")
if short:
    sys.exit(f"FAILED: fewer than {sys.argv[1]} cases for {', '.join(short)}")
PY

# --- stop the service as an orchestrator would, and expect a clean exit
if kill -TERM "$server" 2>/dev/null; then
  exit_code=0
  wait "$server" || exit_code=$?
  if [ "$exit_code" != 0 ]; then
    echo "FAILED: the service exited with $exit_code on SIGTERM" >&2
    status=1
  fi
else
  exit_code=0
  wait "$server" || exit_code=$?
  echo "FAILED: the service stopped during the run (exit status $exit_code); the end of its log:" >&2
  tail -n 40 "$work/serve.log" >&2
  status=1
fi
server=""
# Every error the service logs is a failure, but actix-http's own report of a request it could
# not parse (the fuzzer sends header bytes HTTP forbids, on purpose): it answered 400 and the
# service is fine.
errors=$(grep -E 'ERROR' "$work/serve.log" | grep -v 'actix_http::h1::dispatcher: stream error: request parse error' || true)
if [ -n "$errors" ]; then
  echo "FAILED: the service logged errors:" >&2
  echo "$errors" | head -20 >&2
  status=1
fi
[ $status = 0 ] && echo "contract test passed"
exit $status
