"""The signal reaches the metrics: on the gene panel (config/tiny_panel.yaml) the EXP model's SFT
cold start learns answers that carry over to questions it never trained on, and the workflow's
evaluation reads them (~8 minutes on 2 cores: data, verifiers, 1,000 SFT steps, GRPO, evaluation).

A bug between prompt, target, parser and metric (a label flipped, an answer misread, a row of the
wrong line) would leave the held-out answers at chance; a model that only learned the format would
answer every held-out row one way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, run_workflow

PANEL = REPO / "config" / "tiny_panel.yaml"
SFT = "results/sft/EXP/loco_k562/training_summary.json"
GRPO = "results/models/EXP/loco_k562/training_summary.json"
METRICS = "results/eval/EXP/loco_k562/nocot/metrics.parquet"


def headline(metrics_path: Path) -> pd.Series:
    """Conservative-protocol metrics over all test rows, by name (value, ci_low, ci_high)."""
    metrics = pd.read_parquet(metrics_path)
    rows = metrics[(metrics["stratum"] == "all") & (metrics["protocol"] == "conservative")]
    return rows.set_index("metric")


@pytest.mark.slow
def test_exp_cold_start_answers_held_out_questions(tmp_path: Path, data_dir):
    run_workflow(tmp_path, METRICS, GRPO, overlays=(PANEL,), timeout=2400)
    sft = json.loads((tmp_path / SFT).read_text())
    validation = pd.read_parquet(tmp_path / "results/splits/loco_k562/validation.parquet")
    majority = max(validation["label"].mean(), 1 - validation["label"].mean())
    curve = sft["heldout_curve"]
    print("SFT held-out curve:", curve, "validation majority share:", round(majority, 3))
    assert [p["step"] for p in curve] == [0, 250, 500, 750, 1000]
    assert curve[0]["heldout/unparseable"] == 1.0, "the untrained tiny model writes no answer"
    assert curve[-1]["heldout/unparseable"] == 0.0
    # Answers, not one class: well above always answering the majority class.
    assert curve[-1]["heldout/accuracy"] > majority + 0.15
    assert curve[-1]["heldout/auroc"] > 0.85
    grpo = json.loads((tmp_path / GRPO).read_text())
    assert grpo["heldout_curve"][0] == {**curve[-1], "step": 0}, "GRPO starts from the SFT model"

    test = headline(tmp_path / METRICS)
    print(test[["value", "ci_low", "ci_high"]])
    assert test.loc["unparseable", "value"] == 0.0
    # On the held-out cell line the answer likelihood ranks DE above chance.
    assert test.loc["auroc_likelihood", "ci_low"] > 0.5
