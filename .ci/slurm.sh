#!/usr/bin/env bash
# CI step: start the one-node test SLURM (if it is not running yet), run the `slurm`-marked tests
# against it, and stop it again if this script started it. Needs root (apt-get, daemons) or sudo.
#   .ci/slurm.sh                 # from the repository root, after `make setup`
set -euo pipefail
cd "$(dirname "$0")/.."

export RBIO_SLURM_DIR=${RBIO_SLURM_DIR:-/tmp/rbio-slurm}
export OMP_NUM_THREADS=1
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo --preserve-env=RBIO_SLURM_DIR "$@"; fi; }

started_here=0
if ! { [ -s "$RBIO_SLURM_DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$RBIO_SLURM_DIR/run/slurmctld.pid")" 2>/dev/null; }; then
    started_here=1
fi
if [ "$started_here" = 1 ]; then
    trap 'as_root scripts/slurm/teardown_slurm.sh' EXIT
fi

setup_start=$(date +%s)
as_root scripts/slurm/setup_slurm.sh
echo "slurm setup: $(($(date +%s) - setup_start)) s"

test_start=$(date +%s)
# Fail (not skip) when the cluster is unreachable; a private basetemp so that other pytest
# sessions on the machine cannot rotate the test's folders away mid-run.
RBIO_REQUIRE_SLURM=1 .venv/bin/pytest -m slurm --basetemp="${TMPDIR:-/tmp}/rbio-slurm-pytest" tests/slurm
echo "slurm tests: $(($(date +%s) - test_start)) s"
