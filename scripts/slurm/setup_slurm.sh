#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for testing the workflow's SLURM profile.
#
# Installs Debian's Slurm (slurmctld, slurmd, slurm-client) and munge if missing, writes a one-node
# slurm.conf for this host and starts munged, slurmctld and slurmd with pid files. No systemd and
# no cgroups are needed, so it also runs inside containers (as root). Idempotent: a second call
# with the same settings leaves running daemons alone; changed settings restart them.
#
#   sudo scripts/slurm/setup_slurm.sh          # then: snakemake --profile profiles/slurm-ci ...
#   sudo scripts/slurm/teardown_slurm.sh       # stops exactly the daemons started here
#
# Settings (environment):
#   RBIO_SLURM_DIR   runtime state: pid files, logs, spool, munge socket (default /tmp/rbio-slurm)
#   FAKE_GPUS        GPUs the node advertises as gres/gpu (default 2). They are character devices
#                    without hardware behind them: the scheduler plumbing (--gpus, gres/gpu TRES,
#                    CUDA_VISIBLE_DEVICES) is exercised, CUDA is not.
#   MIN_JOB_AGE      seconds a finished job stays visible to squeue/scontrol (default 900; the
#                    plugin's squeue status check needs >= 3 x slurm-init-seconds-before-status-checks)
#   PARTITION        name of the single partition (default "ci")
#   NODE_CPUS, NODE_MEMORY_MB
#                    node size the scheduler believes in (defaults 32 CPUs, 256000 MB): large
#                    enough for the real profile's GPU requests (profiles/slurm), so tests submit
#                    exactly what a cluster would get. Jobs are not confined (no cgroups): they
#                    share the machine's real CPUs and memory. Set them to the real size
#                    (`slurmd -C`) for a scheduler that never overcommits.
#
# The scheduler's own record of every finished job (id, name, state, exit code, TRES incl.
# gres/gpu) is appended to $RBIO_SLURM_DIR/log/jobcomp.log (jobcomp/filetxt): tests read it
# instead of sacct, which needs a slurmdbd and a database.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

STATE=${RBIO_SLURM_DIR:-/tmp/rbio-slurm}
FAKE_GPUS=${FAKE_GPUS:-2}
MIN_JOB_AGE=${MIN_JOB_AGE:-900}
PARTITION=${PARTITION:-ci}
NODE_CPUS=${NODE_CPUS:-32}
NODE_MEMORY_MB=${NODE_MEMORY_MB:-256000}
NODE=$(hostname -s)
MUNGE_SOCKET=$STATE/munge/munge.socket.2
CONF_DIR=/etc/slurm

if [ "$(id -u)" -ne 0 ]; then
    echo "setup_slurm.sh: run as root (it installs packages and starts system daemons)" >&2
    exit 1
fi
if [ "$FAKE_GPUS" -gt 4 ]; then
    echo "setup_slurm.sh: FAKE_GPUS must be 0..4 (one harmless character device each)" >&2
    exit 1
fi

mkdir -p "$STATE/log"
SETUP_LOG=$STATE/log/setup.log
log() { echo "[setup_slurm $(date +%H:%M:%S)] $*" | tee -a "$SETUP_LOG"; }

# A daemon counts as ours and alive only through its pid file: never look processes up by name.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>>"$SETUP_LOG"; }
stop_by_pidfile() {
    pid_alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>>"$SETUP_LOG" || return 0; sleep 0.2; done
    kill -KILL "$pid"
}

# --- 1. packages -------------------------------------------------------------------------------
packages="slurmctld slurmd slurm-client munge"
missing=""
for package in $packages; do
    dpkg -s "$package" >>"$SETUP_LOG" 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    log "installing:$missing"
    apt-get update -qq >>"$SETUP_LOG" 2>&1
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing >>"$SETUP_LOG" 2>&1
fi

# --- 2. state folders and munge (authentication between the Slurm daemons and clients) ---------
install -d -m 0755 "$STATE" "$STATE/run" "$STATE/spool" "$STATE/spool/ctld" "$STATE/spool/d"
install -d -o munge -g munge -m 0755 "$STATE/munge"
# Debian's munge postinst creates a key; create one if an image stripped it.
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! pid_alive "$STATE/munge/munged.pid"; then
    runuser -u munge -- munged --socket="$MUNGE_SOCKET" --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
fi
munge_ok=0
for _ in $(seq 1 30); do
    if munge -S "$MUNGE_SOCKET" -n 2>>"$SETUP_LOG" | unmunge -S "$MUNGE_SOCKET" >>"$SETUP_LOG" 2>&1
    then munge_ok=1; break; fi
    sleep 0.3
done
[ "$munge_ok" = 1 ] || { echo "setup_slurm.sh: munged does not answer on $MUNGE_SOCKET" >&2; exit 1; }

# --- 3. fake GPUs ------------------------------------------------------------------------------
# slurmd drops gres/gpu entries without a device file and rejects regular files, so each fake GPU
# is a character device. Major 1 is the kernel's memory devices; these minors are null, zero,
# full and urandom: harmless if a job opens them.
gres_types=""
node_gres=""
: >"$CONF_DIR/gres.conf.new"
if [ "$FAKE_GPUS" -gt 0 ]; then
    minors=(3 5 7 9)
    install -d -m 0755 "$STATE/dev"
    for index in $(seq 0 $((FAKE_GPUS - 1))); do
        [ -c "$STATE/dev/gpu$index" ] || mknod -m 0666 "$STATE/dev/gpu$index" c 1 "${minors[$index]}"
    done
    gres_types="GresTypes=gpu"
    node_gres="Gres=gpu:$FAKE_GPUS"
    echo "NodeName=$NODE Name=gpu File=$STATE/dev/gpu[0-$((FAKE_GPUS - 1))]" >"$CONF_DIR/gres.conf.new"
fi

# --- 4. slurm.conf for this one node -----------------------------------------------------------

cat >"$CONF_DIR/slurm.conf.new" <<CONF
# Written by scripts/slurm/setup_slurm.sh: one node ($NODE), one partition ($PARTITION).
ClusterName=rbio-ci
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Containers have no usable cgroups: track processes through /proc, no task confinement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: the completion log below is the scheduler's persistent record of finished jobs.
# (AccountingStorageTRES=gres/gpu would need slurmdbd; slurmctld refuses to start with it.)
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Trust the node size written below over what slurmd detects (else a smaller machine is drained).
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue/scontrol this long (the plugin's squeue status needs it).
MinJobAge=$MIN_JOB_AGE
# A job without --mem must not reserve the whole node.
DefMemPerCPU=1024
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$NODE_MEMORY_MB $node_gres State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# Replace the configs only when they changed; running daemons must then be restarted.
changed=0
for name in slurm.conf gres.conf; do
    if cmp -s "$CONF_DIR/$name.new" "$CONF_DIR/$name"; then
        rm -f "$CONF_DIR/$name.new"
    else
        mv "$CONF_DIR/$name.new" "$CONF_DIR/$name"
        changed=1
    fi
done
if [ "$changed" = 1 ]; then
    log "configuration written to $CONF_DIR (restarting any running daemons)"
    stop_by_pidfile "$STATE/run/slurmd.pid"
    stop_by_pidfile "$STATE/run/slurmctld.pid"
fi

# --- 5. daemons (they daemonise and write the pid files named in slurm.conf) --------------------
pid_alive "$STATE/run/slurmctld.pid" || slurmctld
pid_alive "$STATE/run/slurmd.pid" || slurmd
# The daemons write their pid files shortly after forking.
for _ in $(seq 1 25); do
    [ -s "$STATE/run/slurmctld.pid" ] && [ -s "$STATE/run/slurmd.pid" ] && break
    sleep 0.2
done

# --- 6. wait for the node, then prove a job runs end to end ------------------------------------
state=""
for _ in $(seq 1 40); do
    # A controller that exits at start-up (bad slurm.conf) must fail the setup now, not in minutes.
    if ! pid_alive "$STATE/run/slurmctld.pid"; then
        echo "setup_slurm.sh: slurmctld is not running; last lines of its log:" >&2
        tail -n 5 "$STATE/log/slurmctld.log" >&2
        exit 1
    fi
    state=$(timeout 5 sinfo -h -N -o '%t' 2>>"$SETUP_LOG" | head -1 || true)
    case "$state" in idle | mix | alloc) break ;; esac
    # A node left drained by an earlier unclean stop comes back on RESUME.
    case "$state" in drain* | down*) scontrol update NodeName="$NODE" State=RESUME 2>>"$SETUP_LOG" || true ;; esac
    sleep 0.5
done
case "$state" in
    idle | mix | alloc) ;;
    *)
        echo "setup_slurm.sh: node $NODE is not ready (state '$state'); see $STATE/log/" >&2
        scontrol show node >&2 || true
        exit 1
        ;;
esac
timeout 60 srun --time=1 --mem=10 hostname >>"$SETUP_LOG"
if [ "$FAKE_GPUS" -gt 0 ]; then
    timeout 60 srun --time=1 --mem=10 --gpus=1 printenv CUDA_VISIBLE_DEVICES >>"$SETUP_LOG"
fi
sinfo -o "%P %D %t %c %m %G"
log "slurm ready: node $NODE, partition $PARTITION, $FAKE_GPUS fake GPU(s); state in $STATE"
