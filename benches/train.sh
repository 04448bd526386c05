#!/usr/bin/env bash
# Training speed (issue 4): `train` on 100,000 loans with all catalog features must take at most
# 60 s on the project's 2-core machine with a peak memory under 2 GB.
#
# The 100,000 rows are drawn with replacement (seed 1) from the shipped model's simulated dataset
# (110,000 merchants, seed 42, a two-year window, 90-day loans: 43,165 rows; built once and kept in
# $WORK). The timed command is the full `train` with its defaults: out-of-time split,
# recalibration, 5-fold cross-validation over 6 α, the challenger forest, the report and plots.
#
#   benches/train.sh            # WORK=target/bench-train by default
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
work=${WORK:-$target/bench-train}
mkdir -p "$work"
cargo build --release --example pipeline
bin=$target/release/examples/pipeline
if [ ! -f "$work/sim.csv" ]; then
    "$bin" simulate-dataset --merchants 110000 --seed 42 --history-days 730 --term-days 90 \
        --out "$work/sim.csv"
fi
"$bin" resample --data "$work/sim.csv" --rows 100000 --seed 1 --out "$work/bench.csv"
rm -rf "$work/models"
/usr/bin/time -f "train: %e s wall, %M KB peak resident" \
    "$bin" train --data "$work/bench.csv" --out-dir "$work/models" --version bench --seed 42 \
    --created-at 2026-01-01T00:00:00Z > "$work/summary.json"
grep -E '"(train_rows|test_rows|test_auc)"' "$work/summary.json"
