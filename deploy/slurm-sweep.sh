#!/usr/bin/env bash
# interop-sim sweep on Slurm: a job array runs the shards, a dependent job merges them.
#   sbatch deploy/slurm-sweep.sh SCENARIO SHARDS OUT_DIR
# (this script submits both jobs; run it with bash, or with sbatch as a tiny driver job).
# OUT_DIR must be on a file system every node sees. See deploy/README.md.
#SBATCH --job-name=interop-sim-sweep-driver
#SBATCH --ntasks=1
#SBATCH --time=00:05:00
set -euo pipefail

scenario=${1:?usage: slurm-sweep.sh SCENARIO SHARDS OUT_DIR}
shards=${2:?usage: slurm-sweep.sh SCENARIO SHARDS OUT_DIR}
out=${3:?usage: slurm-sweep.sh SCENARIO SHARDS OUT_DIR}
bin=${INTEROP_SIM:-interop-sim}
mkdir -p "$out/shards" "$out/logs"

array_id=$(sbatch --parsable \
  --job-name=interop-sim-shard \
  --array="0-$((shards - 1))" \
  --nodes=1 --exclusive \
  --time="${SHARD_TIME:-12:00:00}" \
  --output="$out/logs/shard-%a.out" \
  --wrap="$bin sweep '$scenario' --shard \$SLURM_ARRAY_TASK_ID/$shards --out '$out/shards/'\$SLURM_ARRAY_TASK_ID")

dirs=$(for k in $(seq 0 $((shards - 1))); do printf "'%s' " "$out/shards/$k"; done)
merge_id=$(sbatch --parsable \
  --job-name=interop-sim-merge \
  --dependency="afterok:$array_id" \
  --ntasks=1 --time=01:00:00 \
  --output="$out/logs/merge.out" \
  --wrap="$bin merge $dirs --out '$out/merged'")

echo "shards: job array $array_id ($shards tasks); merge: job $merge_id -> $out/merged"
