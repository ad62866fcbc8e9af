"""The train_sft rule in the real workflow (tiny preset, sft enabled): GRPO starts from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_workflow


@pytest.mark.slow
def test_sft_then_grpo_on_the_tiny_preset(tmp_path: Path, data_dir):
    run_workflow(
        tmp_path,
        "results/models/EXP/loco_k562/config.json",
        extra_config={"sft": {"enabled": True}},
    )
    sft = tmp_path / "results/sft/EXP/loco_k562"
    summary = json.loads((sft / "training_summary.json").read_text())
    assert summary["steps"] == 8 and summary["labels_visible"]
    assert (sft / "model.safetensors").is_file() and (sft / "provenance.json").is_file()
    grpo = json.loads((tmp_path / "results/models/EXP/loco_k562/provenance.json").read_text())
    started_from = [item["path"] for item in grpo["inputs"]]
    assert "results/sft/EXP/loco_k562/config.json" in started_from
    assert "results/models/base/config.json" not in started_from
