#!/usr/bin/env bash
# Stop the daemons that scripts/slurm/setup_slurm.sh started, each through its own pid file (never
# by process name: other Slurm or munge processes on the machine are left alone).
#   RESET=1  also deletes the state folder (logs, spool, job records).
set -uo pipefail

STATE=${RBIO_SLURM_DIR:-/tmp/rbio-slurm}
mkdir -p "$STATE/log"
TEARDOWN_LOG=$STATE/log/teardown.log

stop_by_pidfile() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>>"$TEARDOWN_LOG"; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>>"$TEARDOWN_LOG" || break; sleep 0.2; done
        if kill -0 "$pid" 2>>"$TEARDOWN_LOG"; then
            echo "teardown_slurm.sh: $pidfile ($pid) ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid"
        fi
    fi
    rm -f "$pidfile"
}

# Node daemon first (it reports to the controller), munge last (both authenticate through it).
stop_by_pidfile "$STATE/run/slurmd.pid"
stop_by_pidfile "$STATE/run/slurmctld.pid"
stop_by_pidfile "$STATE/munge/munged.pid"

if [ "${RESET:-0}" = 1 ]; then
    rm -rf "$STATE"
fi
echo "slurm stopped (state ${STATE}$([ "${RESET:-0}" = 1 ] && echo ' removed'))"
