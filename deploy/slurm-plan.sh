#!/usr/bin/env bash
# interop-sim plan on Slurm: a job array of shards solves one plan together over a folder of
# finished runs that every node sees; each shard runs the runs no other has taken and writes the
# whole plan. A dependent job checks that the shards agree and keeps one copy as the plan.
#   bash deploy/slurm-plan.sh SCENARIO SHARDS OUT_DIR
# OUT_DIR must be on a file system every node sees. See deploy/README.md.
set -euo pipefail

scenario=${1:?usage: slurm-plan.sh SCENARIO SHARDS OUT_DIR}
shards=${2:?usage: slurm-plan.sh SCENARIO SHARDS OUT_DIR}
out=${3:?usage: slurm-plan.sh SCENARIO SHARDS OUT_DIR}
bin=${INTEROP_SIM:-interop-sim}
case "$shards" in
  '' | *[!0-9]* | 0) echo "slurm-plan: SHARDS must be a whole number of 1 or more, got '$shards'" >&2; exit 2 ;;
esac
case "$scenario$out" in
  *"'"*) echo "slurm-plan: paths with a ' in them are not supported" >&2; exit 2 ;;
esac
# A resubmission into the same OUT_DIR starts its shards' plans afresh (the check must not
# find an earlier submission's plan); the finished runs in OUT_DIR/runs are kept and reused.
rm -rf "$out/shards" "$out/plan"
mkdir -p "$out/shards" "$out/logs" "$out/runs"

array_id=$(sbatch --parsable \
  --job-name=interop-sim-plan \
  --array="0-$((shards - 1))" \
  --nodes=1 --exclusive \
  --time="${SHARD_TIME:-12:00:00}" \
  --output="$out/logs/plan-%a.out" \
  --wrap="$bin plan '$scenario' --shard \$SLURM_ARRAY_TASK_ID/$shards --runs '$out/runs' --out '$out/shards/'\$SLURM_ARRAY_TASK_ID")

# `plan` exits 1 when even the ranges' maximum misses an SLO: an answer all the same, so the
# check runs after the shards whatever their exit codes, and fails if one wrote no plan.
check="set -e; for k in \$(seq 0 $((shards - 1))); do test -f '$out/shards/'\$k/plan.json; diff -r '$out/shards/0' '$out/shards/'\$k; done; rm -rf '$out/plan'; cp -r '$out/shards/0' '$out/plan'"
check_id=$(sbatch --parsable \
  --job-name=interop-sim-plan-check \
  --dependency="afterany:$array_id" \
  --ntasks=1 --time=00:10:00 \
  --output="$out/logs/check.out" \
  --wrap="$check")

echo "shards: job array $array_id ($shards tasks); check: job $check_id -> $out/plan"
