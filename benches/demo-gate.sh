#!/usr/bin/env bash
# Acceptance demos of issue 8, each must hold:
#  1. the instruction gate passes on this tree, and fails on a deliberately slower ratchet (one
#     extra HMAC per message: cargo feature `demo-slow-ratchet`, compiled only here);
#  2. a changed routing decision (birdychat routed directly instead of through its adapter)
#     fails `bench check`, naming the scenario and the counters (an integration test).
# Takes a few minutes (two builds of the bench target; callgrind). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet
bin=./target/release/interop-sim

echo "== instruction gate, this tree (must pass)"
"$bin" bench instructions --out "$out/normal.json" 2>"$out/normal.log" || {
  cat "$out/normal.log"
  echo "demo: the gate failed on the unchanged tree" >&2
  exit 1
}

echo "== instruction gate, one extra HMAC per ratchet message (must fail)"
code=0
"$bin" bench instructions --features demo-slow-ratchet --out "$out/slow.json" \
  >"$out/slow.txt" 2>"$out/slow.log" || code=$?
cat "$out/slow.txt"
if [ "$code" -ne 1 ]; then
  cat "$out/slow.log"
  echo "demo: expected exit code 1 from the slower ratchet, got $code" >&2
  exit 1
fi
grep -q '^ratchet_encrypt .* FAILED$' "$out/slow.txt"
grep -q '^ratchet_decrypt .* FAILED$' "$out/slow.txt"

echo "== counter check, birdychat routed directly instead of through its adapter (must fail)"
cargo test --release --quiet --test integration \
  bench::changed_routing_fails_counter_check_naming_scenario_and_counter -- --nocapture

echo "demo: ok (the slower ratchet failed the instruction gate; the rerouting failed bench check)"
