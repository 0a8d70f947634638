#!/usr/bin/env bash
# A Ray cluster inside a SLURM allocation, then a command on it: by default `ttscale sweep SWEEP`.
#
#   sbatch [sbatch options] cluster/slurm-ray.sh SWEEP.yaml                # run the sweep
#   sbatch [sbatch options] cluster/slurm-ray.sh SWEEP.yaml -- COMMAND ... # run COMMAND on the cluster instead
#
# Every #SBATCH line below is a default that sbatch's own options override, e.g.
#   sbatch --nodes=4 --gpus-per-node=4 --time=48:00:00 --requeue cluster/slurm-ray.sh sweeps/all.yaml
# Submit from the directory the sweep's relative paths are relative to, with ttscale's environment active
# (sbatch passes the environment on to the job). docs/cluster.md explains each step; in short:
#   - the Ray head starts on the first node, one Ray worker on each other node (srun -w NODE);
#   - ports and Ray's temp dir come from $SLURM_JOB_ID (two jobs on one node never collide), the temp dir on
#     node-local disk, never NFS; Ray's token authentication stays on, with a token made for this job;
#   - each node declares `gpu_80gb`, one per GPU of 80 GB or more (what large models' `resources:` ask for), or
#     the resources in TTSCALE_RAY_RESOURCES (JSON, e.g. '{"gpu_80gb": 8}') when set;
#   - it waits until every node has joined (TTSCALE_JOIN_TIMEOUT seconds, default 300), else fails;
#   - the command gets the head's explicit address (RAY_ADDRESS too), never `auto`;
#   - on SIGTERM (preemption) or SIGUSR1 (the time-limit warning below) the sweep stops taking work, writes
#     what finishes within its grace period, Ray is torn down, and a --requeue job is requeued to resume.
#
#SBATCH --job-name=ttscale
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --output=ttscale-%j.log
#SBATCH --open-mode=append

set -euo pipefail

die() {  # one line on stderr, non-zero exit
    echo "slurm-ray: error: $*" >&2
    exit 1
}
usage() {
    echo "usage: sbatch [sbatch options] cluster/slurm-ray.sh SWEEP.yaml [-- COMMAND ...]" >&2
    exit 2
}

[[ -n "${SLURM_JOB_ID:-}" ]] || die "not inside a SLURM job: submit this script with sbatch"
[[ $# -ge 1 ]] || usage
sweep=$1
shift
if [[ $# -gt 0 ]]; then
    [[ $1 == -- ]] || usage
    shift
fi
user_command=("$@")

RAY=${RAY:-ray}
TTSCALE=${TTSCALE:-ttscale}
PYTHON=${PYTHON:-python3}
join_timeout=${TTSCALE_JOIN_TIMEOUT:-300}
stop_grace=${TTSCALE_STOP_GRACE:-240}  # within the 300 s the USR1 warning leaves; SIGTERM leaves KillWait
command -v "$RAY" >/dev/null || die "'$RAY' is not on PATH: activate ttscale's environment before sbatch, or set RAY"
[[ ${#user_command[@]} -gt 0 || -f $sweep ]] || die "sweep file '$sweep' not found (from $(pwd))"

# -- where: ports, temp dir, nodes, token --------------------------------------------------------------------
# A block of 200 ports per job, chosen by the job id: jobs sharing a node get different blocks unless their ids
# differ by a multiple of 200 (then set TTSCALE_PORT_BASE). Ray's other ports stay inside the block too.
port_base=${TTSCALE_PORT_BASE:-$((20000 + (SLURM_JOB_ID % 200) * 200))}
gcs_port=$port_base
dashboard_port=$((port_base + 1))
client_port=$((port_base + 2))
# Ray's temp dir: per job, on node-local disk (Ray's sockets live there: keep the path short).
ray_tmp="${TTSCALE_RAY_TMP:-${SLURM_TMPDIR:-/tmp}}/ray-$SLURM_JOB_ID"

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_node=${nodes[0]}
workers=("${nodes[@]:1}")
# The batch script runs on the first node of the allocation: the head.
head_ip=${TTSCALE_HEAD_IP:-$(hostname -I 2>/dev/null | awk '{print $1}')}
[[ -n $head_ip ]] || head_ip=$(hostname -i | awk '{print $1}')
address="$head_ip:$gcs_port"
cpus=${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}

# Token authentication on, with a token for this job only: srun hands the environment to every node's Ray,
# and the driver reads it there too. The dashboard asks for it in the browser: it is kept in a user-only file.
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=${RAY_AUTH_TOKEN:-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')}
export RAY_AUTH_TOKEN
token_file="$HOME/.ray/ttscale-$SLURM_JOB_ID.token"
(umask 077 && mkdir -p "$HOME/.ray" && printf '%s\n' "$RAY_AUTH_TOKEN" >"$token_file")

log_file=$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null | sed -n 's/^ *StdOut=//p' | head -1)
cat <<EOF
== ttscale on SLURM job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): ${#nodes[@]} node(s), head $head_node ($address)
   dashboard: ssh -N -L 8265:$head_ip:$dashboard_port <you>@<login node>, then open http://localhost:8265
              token for the dashboard: cat $token_file
   follow:    tail -f ${log_file:-<the job log>}; squeue -j $SLURM_JOB_ID; $TTSCALE status $sweep
   stop:      scancel --signal=USR1 --batch $SLURM_JOB_ID (finished units are kept; the same sbatch resumes)
   ray:       ports $port_base-$((port_base + 199)), temp dir $ray_tmp on each node
EOF

# -- teardown and signals ------------------------------------------------------------------------------------
steps=()  # the srun steps running `ray start --block` on each node
driver=""
stop_signal=""

teardown() {
    local rc=$?
    trap - EXIT TERM USR1
    if [[ ${#steps[@]} -gt 0 ]]; then
        # srun passes SIGTERM on to `ray start --block`, which stops its own node's processes only (`ray stop`
        # would stop every Ray of this user on the node, other jobs' too). srun reports the step as cancelled.
        echo "slurm-ray: stopping Ray on ${#nodes[@]} node(s) (srun reports its steps as cancelled: that is this)"
        kill -TERM "${steps[@]}" 2>/dev/null || true
        # Ray's daemons can outlive a killed step: end every process of this job's Ray (its temp dir is in
        # their command lines; no other job's is) on this node now, and on the others while srun still works.
        pkill -TERM -f -- "$ray_tmp/" 2>/dev/null || true
        for node in "${workers[@]}"; do
            timeout 20 srun --nodes=1 --ntasks=1 --overlap -w "$node" pkill -TERM -f -- "$ray_tmp/" 2>/dev/null || true
        done
        for _ in $(seq 30); do
            kill -0 "${steps[@]}" 2>/dev/null || break
            sleep 1
        done
        kill -KILL "${steps[@]}" 2>/dev/null || true
        pkill -KILL -f -- "$ray_tmp/" 2>/dev/null || true
    fi
    [[ ${TTSCALE_KEEP_RAY_TMP:-0} == 1 ]] || rm -rf "$ray_tmp"
    rm -f "$token_file"
    exit "$rc"
}
on_signal() {
    stop_signal=$1
    echo "slurm-ray: got SIG$1: the sweep stops taking work and writes what finishes within ${stop_grace} s"
    if [[ -n $driver ]]; then
        kill -"$1" "$driver" 2>/dev/null || true  # ttscale sweep stops gracefully on either
    else
        exit 75  # nothing is running yet: tear down now
    fi
}
trap teardown EXIT
trap 'on_signal TERM' TERM
trap 'on_signal USR1' USR1

# -- start Ray -----------------------------------------------------------------------------------------------
ray_start=(
    "$RAY" start --block --disable-usage-stats --temp-dir="$ray_tmp" --num-cpus="$cpus"
    --node-manager-port=$((port_base + 3)) --object-manager-port=$((port_base + 4))
    --metrics-export-port=$((port_base + 5)) --dashboard-agent-grpc-port=$((port_base + 6))
    --dashboard-agent-listen-port=$((port_base + 7)) --runtime-env-agent-port=$((port_base + 8))
    --min-worker-port=$((port_base + 20)) --max-worker-port=$((port_base + 199))
)
# Each node's own resources, found on the node itself: `gpu_80gb`, one per GPU with >= 80,000 MiB (an 80 GB H100
# or A100 reports 81,559 or 81,920), which sweeps ask for to route large models; or TTSCALE_RAY_RESOURCES as given.
with_node_resources=(bash -c '
    resources=${TTSCALE_RAY_RESOURCES:-}
    if [[ -z $resources ]] && command -v nvidia-smi >/dev/null; then
        large=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null |
            awk "\$1 + 0 >= 80000 { n++ } END { print n + 0 }")
        [[ $large -gt 0 ]] && resources="{\"gpu_80gb\": $large}"
    fi
    exec "$@" ${resources:+"--resources=$resources"}' node-resources)
srun --nodes=1 --ntasks=1 --overlap -w "$head_node" "${with_node_resources[@]}" "${ray_start[@]}" --head --node-ip-address="$head_ip" \
    --port="$gcs_port" --dashboard-host="$head_ip" --dashboard-port="$dashboard_port" \
    --ray-client-server-port="$client_port" --include-dashboard=true &
steps+=($!)

for _ in $(seq "$join_timeout"); do
    "$RAY" health-check --address "$address" >/dev/null 2>&1 && break
    kill -0 "${steps[0]}" 2>/dev/null || die "the Ray head on $head_node exited while starting: see $ray_tmp/session_latest/logs"
    sleep 1
done
"$RAY" health-check --address "$address" >/dev/null 2>&1 || die "the Ray head did not answer at $address within ${join_timeout} s"

for node in "${workers[@]}"; do
    srun --nodes=1 --ntasks=1 --overlap -w "$node" "${with_node_resources[@]}" "${ray_start[@]}" --address="$address" &
    steps+=($!)
done

# Wait until every node has joined; name the missing ones otherwise.
"$PYTHON" - "$address" "$join_timeout" "${nodes[@]}" <<'PY' || die "not every node joined the Ray cluster (see above)"
import sys
import time

import ray

address, timeout, nodes = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + timeout
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= len(nodes):
        total = lambda key: sum(n["Resources"].get(key, 0) for n in alive)  # noqa: E731
        print(f"slurm-ray: all {len(nodes)} node(s) joined: {total('GPU'):g} GPUs ({total('gpu_80gb'):g} of them "
              f"gpu_80gb), {total('CPU'):g} CPUs")
        break
    if time.monotonic() > deadline:
        print(f"slurm-ray: only {len(alive)} of {len(nodes)} node(s) joined within {timeout:.0f} s; expected: "
              f"{' '.join(nodes)}; each node's log is under its Ray temp dir", file=sys.stderr)
        sys.exit(1)
    time.sleep(2)
PY

# -- run -----------------------------------------------------------------------------------------------------
if [[ ${#user_command[@]} -eq 0 ]]; then
    user_command=("$TTSCALE" sweep "$sweep" --address "$address" --stop-grace "$stop_grace")
fi
echo "slurm-ray: running: ${user_command[*]}"
RAY_ADDRESS=$address "${user_command[@]}" &
driver=$!
rc=0
while true; do
    wait "$driver" && rc=0 || rc=$?
    kill -0 "$driver" 2>/dev/null || break  # wait returned for a trapped signal: the driver still runs
done
driver=""

if [[ -n $stop_signal ]]; then
    echo "slurm-ray: stopped on SIG$stop_signal (exit $rc); the same sbatch command resumes where it stopped"
    requeue=$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -o 'Requeue=[01]' | cut -d= -f2 || true)
    if [[ $stop_signal == USR1 && ${requeue:-0} == 1 ]]; then
        echo "slurm-ray: requeueing job $SLURM_JOB_ID (submitted with --requeue)"
        scontrol requeue "$SLURM_JOB_ID" || echo "slurm-ray: requeue failed: resubmit the job to resume"
    fi
fi
exit "$rc"
