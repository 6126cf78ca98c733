#!/usr/bin/env bash
# The Slurm path, tested on a real batch engine: installs Debian's slurm-wlm and munge if they
# are missing, brings up a one-node Slurm cluster (munged, slurmctld, slurmd) on this machine
# with its configuration and state in a scratch folder, submits `deploy/slurm-sweep.sh` (a job
# array of shards and a dependent merge job), waits for both, and checks that the merged
# results are byte-identical to the unsharded sweep; then submits `deploy/slurm-plan.sh` (a
# job array solving scenarios/plan-gateway.toml over a shared folder of finished runs) and
# checks that the plan it wrote is byte-identical to `plan` run alone. .ci/run runs it; run it
# by hand as root:
#   deploy/slurm-test.sh [SCENARIO [SHARDS]]
# It stops the daemons it started when it ends, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scenario=$(realpath "${1:-tests/data/scenarios/small-sweep.toml}")
shards=${2:-3}
bin=${INTEROP_SIM:-$root/target/release/interop-sim}
[ -x "$bin" ] || { echo "slurm-test: no binary at $bin (cargo build --release first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "slurm-test: needs root (it starts munged, slurmctld and slurmd)" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/interop-sim-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" != 0 ]; then
    echo "slurm-test: failed; daemon logs:" >&2
    tail -n 20 "$work"/*.log >&2 2>/dev/null || true
    tail -n 20 "$work"/out/logs/* "$work"/plan/logs/* >&2 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# munge: the cluster's authentication; its own key, socket and pid file in the scratch folder.
# (munged wants its key folder private and its socket folder open to all.)
mkdir -p "$work/munge" "$work/munge-run"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$work/munge" "$work/munge-run"
chmod 700 "$work/munge"
chmod 755 "$work/munge-run"
chmod 400 "$work/munge/munge.key"
socket="$work/munge-run/munge.socket"
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge-run/munged.pid" --log-file="$work/munge/munged.log" \
  --seed-file="$work/munge/seed" --foreground >>"$work/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "slurm-test: munged did not start" >&2; exit 1; }

host=$(hostname -s)
cpus=$(nproc)
# Odd ports, so that a Slurm already on this machine is not disturbed.
cat > "$work/slurm.conf" <<EOF
ClusterName=interop-sim-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$work/slurmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
  sleep 0.2
done
sinfo -h -o '%t' | grep -qE '^idle' || { echo "slurm-test: the node did not come up: $(sinfo 2>&1)" >&2; exit 1; }
echo "slurm-test: one-node cluster up ($(sinfo -h -o '%N %c CPUs %t'), $(slurmctld -V))"

# The job array and the merge, as a user would submit them.
out="$work/out"
export INTEROP_SIM="$bin"
started=$(date +%s)
submitted=$(bash deploy/slurm-sweep.sh "$scenario" "$shards" "$out")
echo "slurm-test: $submitted"
merge_id=$(printf '%s\n' "$submitted" | sed -n 's/.*merge: job \([0-9]*\).*/\1/p')
[ -n "$merge_id" ] || { echo "slurm-test: no merge job id in: $submitted" >&2; exit 1; }
# Waits for job $1 to end; fails unless it completed.
wait_job() {
  local state=""
  for _ in $(seq 1200); do
    state=$(scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case "$state" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;;
    esac
    sleep 0.5
  done
  [ "$state" = COMPLETED ] || { echo "slurm-test: job $1 ended $state" >&2; exit 1; }
}
wait_job "$merge_id"
array_states=$(scontrol show job | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
echo "slurm-test: jobs done in $(( $(date +%s) - started )) s (states:$array_states)"
for k in $(seq 0 $((shards - 1))); do
  [ -f "$out/shards/$k/shard.json" ] || { echo "slurm-test: shard $k wrote no shard.json" >&2; exit 1; }
done

# The unsharded sweep, outside Slurm, must be what the cluster merged, byte for byte (but for
# perf.json: the unsharded run's own wall and CPU times, which a merge does not have).
"$bin" sweep "$scenario" --out "$work/unsharded" >/dev/null
diff -r -x perf.json "$work/unsharded" "$out/merged"
echo "slurm-test: ok, $shards shards through Slurm merged equal the unsharded sweep ($(ls "$out/merged" | tr '\n' ' '))"

# A sharded plan: a job array solving one plan over a shared folder of finished runs; every
# shard's plan must be what `plan` alone writes, byte for byte.
plan_scenario=$(realpath "${PLAN_SCENARIO:-scenarios/plan-gateway.toml}")
started=$(date +%s)
submitted=$(bash deploy/slurm-plan.sh "$plan_scenario" "$shards" "$work/plan")
echo "slurm-test: $submitted"
check_id=$(printf '%s\n' "$submitted" | sed -n 's/.*check: job \([0-9]*\).*/\1/p')
[ -n "$check_id" ] || { echo "slurm-test: no check job id in: $submitted" >&2; exit 1; }
wait_job "$check_id"
echo "slurm-test: plan jobs done in $(( $(date +%s) - started )) s"
"$bin" plan "$plan_scenario" --out "$work/plan-alone" >/dev/null || [ $? = 1 ]
diff -r "$work/plan-alone" "$work/plan/plan"
echo "slurm-test: ok, a plan in $shards shards through Slurm equals the plan run alone ($(ls "$work/plan/runs" | grep -c '\.json$') runs recorded)"
