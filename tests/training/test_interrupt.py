"""The rule process owns its training workers: signals reach them, failures come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rbio.training.checks import MachineConfigError
from rbio.training.grpo import launch
from tests.helpers import REPO
from tests.training.conftest import grpo_job, tiny_config

# Stands in for `accelerate launch`: starts one worker and ends with its exit code. It has no
# handler for SIGUSR1, so it would die at once if the signal reached it instead of the worker.
LAUNCHER = """
import subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
sys.exit(worker.wait())
"""
# Stands in for a training worker: on a stop signal it "saves" (writes the signal) and exits.
WORKER = """
import signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def save(signum, frame):
    out.write_text(f"saved {signum}")
    sys.exit(128 + signum)
for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
    signal.signal(signum, save)
out.write_text("ready")
while True:
    time.sleep(0.05)
"""
RULE = """
import sys
sys.path.insert(0, {src!r})
from rbio.training.interrupt import run_workers
run_workers([sys.executable, "-c", {launcher!r}, {worker!r}, sys.argv[1]])
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signals_to_the_rule_reach_its_workers_and_it_waits_for_them(tmp_path: Path, signum):
    import psutil

    out = tmp_path / "worker"
    rule = subprocess.Popen(
        [sys.executable, "-c", RULE.format(src=str(REPO / "src"), launcher=LAUNCHER, worker=WORKER),
         str(out)],
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not out.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.read_text() == "ready"
    family = psutil.Process(rule.pid).children(recursive=True)
    try:
        assert len(family) == 2  # the launcher and its worker
        assert family[0].pid == os.getpgid(family[0].pid), "the launcher leads its process group"
        rule.send_signal(signum)
        assert rule.wait(timeout=60) != 0, "the workers' failure is the rule's"
        assert out.read_text() == f"saved {int(signum)}"
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    finally:  # whatever failed, leave no process behind
        for process in [psutil.Process(rule.pid), *family] if rule.poll() is None else family:
            if process.is_running():
                process.kill()


def test_more_gpu_processes_than_visible_devices_fail_before_any_worker_starts(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("rbio.training.checks.cuda_status", lambda: (True, 2))
    job = grpo_job(tiny_config(), tmp_path, tmp_path, tmp_path, processes=4)
    started = []
    monkeypatch.setattr("rbio.training.grpo.run_workers", started.append)
    with pytest.raises(MachineConfigError, match=r"4 GPU processes .* only 2 CUDA device"):
        launch(job, accelerate_config=REPO / "workflow" / "accelerate" / "zero3.yaml")
    assert not started
