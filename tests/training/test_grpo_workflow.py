"""The train_grpo rule in the real workflow (tiny preset)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import run_workflow

MODEL = "results/models/EXP/loco_k562"


def test_bf16_on_a_cpu_machine_fails_while_the_dag_is_built(tmp_path: Path, data_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_workflow(
        tmp_path, f"{MODEL}/config.json", extra_config={"grpo": {"bf16": True}}, check=False
    )
    assert result.returncode != 0
    assert "grpo.bf16" in result.stderr + result.stdout
    assert not (tmp_path / "results" / "data").exists(), "no job may start"


@pytest.mark.slow
def test_train_rule_outputs_and_rerun_resumes(tmp_path: Path, data_dir):
    run_workflow(tmp_path, f"{MODEL}/config.json")
    model = tmp_path / MODEL
    summary = json.loads((model / "training_summary.json").read_text())
    assert summary["steps"] == 8 and summary["resumed_from_step"] is None
    run = json.loads((model / "run.json").read_text())
    assert run["variant"] == "EXP" and run["run_id"]
    assert (tmp_path / "logs" / MODEL.removeprefix("results/") / "train.log").is_file()

    # Checkpoints are removed once the model is written; a lost model is trained again, in a
    # new MLflow run (resuming after a kill: tests/training/test_grpo.py).
    checkpoints = tmp_path / "results/checkpoints/EXP" / Path(MODEL).name
    assert not list(checkpoints.glob("checkpoint-*"))
    shutil.rmtree(model)
    run_workflow(tmp_path, f"{MODEL}/config.json")
    again = json.loads((model / "training_summary.json").read_text())
    assert again["steps"] == 8 and again["resumed_from_step"] is None
    assert json.loads((model / "run.json").read_text())["run_id"] != run["run_id"]
