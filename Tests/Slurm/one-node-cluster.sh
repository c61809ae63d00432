#!/usr/bin/env bash
# A real Slurm in the tests: starts a one-node Slurm cluster on this machine from Debian's packages
# (munged, slurmctld, slurmd: this host is controller and node; no cgroups, no accounting), all of
# it private to a temporary folder (its own munge key and socket, its own slurm.conf and ports;
# nothing under /etc is read or changed), then runs `locklab slurm Tests/Slurm/tiny.yaml --shards 3
# --submit` (a 3-task job array and its afterany merge-and-report job), waits for them with a
# timeout, checks the merged folder (every planned run exactly once, each shard's log, report.md
# written) and stops the daemons it started, by their process ids.
#
# Exit status: 0 passed; 1 failed; 77 skipped (Slurm or munge not installed, or the daemons cannot
# start here: the reason is printed in a SKIPPED banner; `make test-slurm` says so loudly, and fails
# instead when SLURM_REQUIRED=1, as CI sets).
#
# Usage: Tests/Slurm/one-node-cluster.sh [LOCKLAB]   (default .build/debug/locklab; KEEP=1 keeps the folder)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LOCKLAB=${1:-$ROOT/.build/debug/locklab}
EXPERIMENT=$ROOT/Tests/Slurm/tiny.yaml
SHARDS=3
TIMEOUT=${SLURM_TEST_TIMEOUT:-300}
started=$(date +%s)

banner() { printf '\n%s\n%s\n%s\n\n' "==================================================================" "$1" "=================================================================="; }
skip() { banner "SKIPPED: one-node Slurm test: $*"; exit 77; }
fail() {
    echo "FAILED: one-node Slurm test: $*" >&2
    for log in "${WORK:-/nonexistent}"/*.log "${WORK:-/nonexistent}"/out/logs/*.out; do
        [ -f "$log" ] && { echo "--- $log (last 15 lines)" >&2; tail -n 15 "$log" >&2; }
    done
    exit 1
}

for tool in munged munge slurmctld slurmd sbatch squeue sinfo scontrol python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install munge slurmctld slurmd slurm-client)"
done
[ -x "$LOCKLAB" ] || fail "no locklab executable at $LOCKLAB (swift build first)"

WORK=$(mktemp -d /tmp/locklab-slurm.XXXXXX)
chmod 700 "$WORK"
pids=()
cleanup() {
    # Only the daemons this script started, by process id: TERM, then KILL after 10 s.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for _ in $(seq 100); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

user=$(id -un)
host=$(hostname -s)
read -r ctld_port slurmd_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

# munge: a private key and socket.
mkdir -m 700 "$WORK/munge"
head -c 1024 /dev/urandom > "$WORK/munge/munge.key"
chmod 400 "$WORK/munge/munge.key"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.sock" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munged.log" --seed-file="$WORK/munge/munged.seed" \
    >"$WORK/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$WORK/munge/munge.sock" ] && break; sleep 0.1; done
munge --socket="$WORK/munge/munge.sock" -n 2>/dev/null | unmunge --socket="$WORK/munge/munge.sock" >/dev/null 2>&1 \
    || skip "munged did not start here: $(tail -n 3 "$WORK/munged.log" "$WORK/munged.out" 2>/dev/null | tr '\n' ' ')"

# slurm.conf: this host as controller and only node, no cgroups (linuxproc, task/none), no accounting.
node_line=$(slurmd -C 2>/dev/null | grep '^NodeName=' | sed -e "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/" -e 's/ RealMemory=[0-9]*//')
[ -n "$node_line" ] || node_line="NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc)"
mkdir -p "$WORK/state" "$WORK/spool"
: > "$WORK/plugstack.conf"
export SLURM_CONF=$WORK/slurm.conf
cat > "$SLURM_CONF" <<EOF
ClusterName=locklab-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
PlugStackConfig=$WORK/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
$node_line State=UNKNOWN
PartitionName=locklab Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i -f "$SLURM_CONF" >"$WORK/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >"$WORK/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || skip "a Slurm daemon exited at start: $(tail -n 3 "$WORK"/slurm*.log "$WORK"/slurm*.out 2>/dev/null | grep -i -m 3 -E 'error|fatal' | tr '\n' ' ')"
    done
    sleep 1
done
[ "$state" = idle ] || skip "the node did not become idle within 60 s (state '${state:-none}'): $(grep -h -i -m 3 -E 'error|fatal' "$WORK"/slurm*.log 2>/dev/null | tr '\n' ' ')"
echo "one-node Slurm cluster up in $(( $(date +%s) - started )) s: $(sinfo -h -N -o '%N %T %c CPUs')"

# The sweep as 3 shards and a dependent merge-and-report job.
OUT=$WORK/out
submitted=$("$LOCKLAB" slurm "$EXPERIMENT" --shards $SHARDS --out "$OUT" --partition locklab --time 10 --submit) \
    || fail "locklab slurm --submit failed"
echo "$submitted"
array=$(sed -n 's/.*array job \([0-9]*\).*/\1/p' <<<"$submitted")
merge=$(sed -n 's/.*merge and report as job \([0-9]*\).*/\1/p' <<<"$submitted")
[ -n "$array" ] && [ -n "$merge" ] || fail "no job ids in: $submitted"

deadline=$(( $(date +%s) + TIMEOUT ))
while [ -n "$(squeue -h -j "$array,$merge" -o %i 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { squeue >&2; fail "jobs still queued or running after $TIMEOUT s"; }
    sleep 1
done
merge_state=$(scontrol -o show job "$merge" 2>/dev/null | grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' | sed 's/ .*ExitCode=/ ExitCode=/')
echo "merge job $merge: $merge_state"
[[ "$merge_state" == "JobState=COMPLETED ExitCode=0:0" ]] || fail "the merge job did not complete cleanly ($merge_state)"

# Every planned run exactly once, each shard logged, the report written.
for i in $(seq $SHARDS); do
    ls "$OUT"/logs/shard-"$i"-job-"$array".out >/dev/null 2>&1 || fail "no log of shard $i in $OUT/logs"
done
[ -s "$OUT/report.md" ] || fail "no report.md in $OUT"
"$LOCKLAB" sweep "$EXPERIMENT" --shards $SHARDS --dry-run | sed -n 's/^  //p' | sort > "$WORK/planned.txt"
python3 - "$OUT" "$WORK/planned.txt" <<'EOF' || fail "the merged folder is not what was planned"
import csv, json, sys
out, planned_path = sys.argv[1], sys.argv[2]
planned = sorted(line.strip() for line in open(planned_path) if line.strip())
runs = list(csv.DictReader(open(f"{out}/runs.csv", newline="")))
threads = list(csv.DictReader(open(f"{out}/threads.csv", newline="")))
keys = sorted(r["config_key"] for r in runs)
assert keys == planned, f"runs.csv holds {len(keys)} runs ({len(set(keys))} distinct), {len(planned)} planned"
assert all(r["status"] == "ok" for r in runs), "a run is not ok"
assert [r["run_id"] for r in runs] == [str(i) for i in range(1, len(runs) + 1)], "run ids not 1..N"
assert len(threads) == sum(int(r["threads"]) for r in runs), "thread rows do not match the runs"
manifest = json.load(open(f"{out}/manifest.json"))
assert [s["shard"] for s in manifest["shards"]] == [1, 2, 3], "manifest does not list shards 1-3"
per_lock = {}
for r in runs:
    per_lock[r["lock"]] = per_lock.get(r["lock"], 0) + 1
report = open(f"{out}/report.md").read().splitlines()
print(f"merged: runs.csv {len(runs)} rows ({', '.join(f'{k} {v}' for k, v in sorted(per_lock.items()))}), "
      f"threads.csv {len(threads)} rows, manifest {len(manifest['shards'])} shards; report.md {len(report)} lines")
EOF
echo "PASSED: one-node Slurm test in $(( $(date +%s) - started )) s"
