#!/usr/bin/env bash
# Sweep speed-up: the same sweep on 1 thread and on 2 (or $THREADS), best of $REPEATS each,
# and a check that both wrote identical files. Run it on an otherwise idle machine: the figure
# is wall time, and other processes on the cores skew it.
#   benches/sweep_speedup.sh [SCENARIO_WITH_SWEEP]
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-benches/data/sweep-speedup.toml}
threads=${THREADS:-2}
repeats=${REPEATS:-3}
bin=./target/release/interop-sim
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
best() { # threads -> best wall seconds
  local t=$1 best=
  for _ in $(seq "$repeats"); do
    "$bin" sweep "$file" --threads "$t" --out "$out/t$t" > /dev/null
    w=$(grep -o '"wall_s": [0-9.]*' "$out/t$t/perf.json" | cut -d' ' -f2)
    c=$(grep -o '"cpu_s": [0-9.]*' "$out/t$t/perf.json" | cut -d' ' -f2)
    echo "  $t thread(s): wall ${w}s, cpu ${c}s" >&2
    if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w; fi
  done
  echo "$best"
}
w1=$(best 1)
wn=$(best "$threads")
for f in sweep.csv runs.json report.html; do cmp "$out/t1/$f" "$out/t$threads/$f"; done
awk -v a="$w1" -v b="$wn" -v t="$threads" 'BEGIN{printf "1 thread %.2fs, %d threads %.2fs: speed-up %.2fx (identical output)\n", a, t, b, a/b}'
