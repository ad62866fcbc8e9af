"""The summary printed at the end of a workflow run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rbio.reporting.run_summary import run_summary, unparseable_rates


def _metrics(path: Path, unparseable: float, n: int, strict: float = 0.9) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "metric": ["mcc", "unparseable", "unparseable", "unparseable"],
            "value": [0.3, unparseable, 0.0, strict],
            "stratum": ["all", "all", "pair_seen_elsewhere=True", "all"],
            "n": [n, n, 5, n],
            "protocol": ["conservative", "conservative", "conservative", "strict"],
        }
    ).to_parquet(path)


def test_unparseable_rate_per_model_weighted_by_questions(tmp_path):
    _metrics(tmp_path / "eval/EXP/loco_k562/cot/metrics.parquet", 0.1, 100)
    _metrics(tmp_path / "eval/EXP/loco_k562/nocot/metrics.parquet", 0.4, 50)
    _metrics(tmp_path / "eval/base/loco_k562/cot/metrics.parquet", 0.0, 100)
    _metrics(tmp_path / "eval/baselines/loco_k562/majority/metrics.parquet", 0.0, 100)
    rates = unparseable_rates(tmp_path).set_index("model")
    assert list(rates.index) == ["EXP", "base"]
    assert rates.loc["EXP", "unparseable"] == (0.1 * 100 + 0.4 * 50) / 150
    assert (rates.loc["EXP", "questions"], rates.loc["EXP", "evaluations"]) == (150, 2)

    text = run_summary(
        tmp_path, tracking_uri="sqlite:///results/mlflow/mlflow.db", configfiles=["tiny.yaml"]
    )
    assert "  EXP    20.0%  (150 questions, 2 evaluations)" in text
    assert "snakemake --report report.html --configfile tiny.yaml" in text
    assert "mlflow ui --backend-store-uri sqlite:///results/mlflow/mlflow.db" in text


def test_summary_of_a_run_that_evaluated_nothing(tmp_path):
    assert run_summary(tmp_path / "results") == f"rbio: nothing in {tmp_path / 'results'}/ yet."
    (tmp_path / "results/models").mkdir(parents=True)
    text = run_summary(tmp_path / "results")
    assert "models/" in text and "No readable answer" not in text and "MLflow" not in text


def test_a_tracking_server_is_opened_by_its_address_without_credentials(tmp_path):
    (tmp_path / "results/models").mkdir(parents=True)
    text = run_summary(tmp_path / "results", tracking_uri="http://rbio:secret@login1:5000")
    assert "MLflow:  open http://login1:5000" in text
    assert "rbio compare --tracking-uri http://login1:5000 --tag stage=eval" in text
    assert "secret" not in text and "mlflow ui" not in text
