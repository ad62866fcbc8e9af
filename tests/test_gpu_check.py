"""The GPU check script runs on CPU where it can: its plan, and every check's job built and its
TRL arguments validated (``--dry-run``); the GPU run itself needs CUDA and the gpu extra."""

from __future__ import annotations

import json
import subprocess
import sys

from rbio.gpu_check import CHECKS, plan
from tests.helpers import REPO

SCRIPT = REPO / "bench" / "gpu_check.py"


def run_script(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_one_gpu_skips_the_two_gpu_checks_with_a_reason():
    skipped = {check.name: reason for check, reason in plan(1) if reason}
    assert skipped == {"vllm_server": "needs 2 GPUs, 1 here", "zero3": "needs 2 GPUs, 1 here"}
    assert all(reason is None for _, reason in plan(8))


def test_list_prints_the_plan_without_a_gpu():
    listed = run_script("--list", "--gpus", "1")
    assert list(listed) == [check.name for check in CHECKS]
    assert listed["zero3"].startswith("needs 2 GPUs") and listed["bf16"].startswith("runs:")


def test_dry_run_builds_every_check_and_trl_accepts_its_arguments(tmp_path):
    built = run_script("--dry-run", "--gpus", "2", "--steps", "3", "--work", str(tmp_path))
    assert list(built) == [check.name for check in CHECKS]
    assert built["vllm_colocate"]["use_vllm"] and built["vllm_colocate"]["vllm_mode"] == "colocate"
    assert built["vllm_server"] == {**built["vllm_server"], "vllm_mode": "server", "processes": 2}
    assert built["zero3"]["processes"] == 2 and not built["zero3"]["use_vllm"]
    assert built["lora"]["lora"] == {"r": 8, "alpha": 16}
    assert {entry["max_steps"] for name, entry in built.items() if name != "eval_vllm"} == {3}
    assert (tmp_path / "base" / "config.json").is_file()
