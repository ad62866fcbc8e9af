"""An evaluation's MLflow run: open during the work, nested under its training run, with the
metrics grouped by '/', the predictions and a sample of completions as artifacts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from rbio import provenance
from rbio.evaluation import stages
from rbio.evaluation.generate import EvaluationRequest, GenerationSettings
from rbio.tracking import evaluation_metrics

WORK_SECONDS = 1.0


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["mcc", "mcc", "mcc"],
            "value": [0.4, 0.2, 0.3],
            "ci_low": [0.1, float("nan"), 0.0],
            "ci_high": [0.6, float("nan"), 0.5],
            "stratum": ["all", "pair_seen_elsewhere=False", "all"],
            "protocol": ["conservative", "conservative", "strict"],
            "n": [10, 4, 10],
        }
    )


def test_metric_names_are_grouped_with_slashes():
    assert evaluation_metrics(_metrics()) == {
        "mcc": 0.4, "mcc/ci_low": 0.1, "mcc/ci_high": 0.6, "mcc/pair_seen_elsewhere_false": 0.2,
        "strict/mcc": 0.3, "strict/mcc/ci_low": 0.0, "strict/mcc/ci_high": 0.5,
    }  # fmt: skip


@pytest.fixture
def trained_model(tmp_path):
    """A model folder as train_grpo leaves it (run.json, provenance) and its training run."""
    import mlflow

    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment("rbio").experiment_id
    train = mlflow.MlflowClient().create_run(experiment, tags={"stage": "train"}).info.run_id
    model = tmp_path / "models" / "EXP" / "loco_k562"
    model.mkdir(parents=True)
    (model / "run.json").write_text(json.dumps({"run_id": train, "tracking_uri": uri}))
    provenance.of_inputs("train_grpo", {}, {}, []).write(model / provenance.FILE_NAME)
    return model, train


def _request(model: Path, tmp_path: Path) -> EvaluationRequest:
    out = tmp_path / "eval"
    return EvaluationRequest(
        model_name="EXP", model_dir=str(model), test_parquet="unused", split="loco_k562",
        prompt_style="nocot", settings=GenerationSettings(num_samples=0, batch_size=2),
        n_bootstrap=10, predictions_path=str(out / "predictions.parquet"),
        metrics_path=str(out / "metrics.parquet"), summary_path=str(out / "evaluation.json"),
    )  # fmt: skip


def _stand_in_evaluation(request: EvaluationRequest) -> pd.DataFrame:
    time.sleep(WORK_SECONDS)
    Path(request.predictions_path).parent.mkdir(parents=True, exist_ok=True)
    predictions = pd.DataFrame({"pert": ["TP53"], "gene": ["MYC"], "label": [1],
                                "greedy_completion": ["<answer>yes</answer>"], "answer": [1]})  # fmt: skip
    predictions.to_parquet(request.predictions_path)
    Path(request.summary_path).write_text("{}")
    return _metrics()


def _eval_run(train_run: str):
    import mlflow

    runs = mlflow.search_runs(experiment_names=["rbio"], filter_string="tags.stage = 'eval'")
    assert len(runs) == 1
    return mlflow.get_run(runs.iloc[0]["run_id"]), train_run


def test_evaluation_run_is_nested_timed_and_holds_its_artifacts(
    trained_model, tmp_path, monkeypatch
):
    import mlflow

    model, train = trained_model
    monkeypatch.setattr(stages, "run_evaluation", _stand_in_evaluation)
    record = provenance.of_inputs("evaluate_model", {}, {}, [])
    stages.evaluate_model(_request(model, tmp_path), model_kind="trained", record=record)

    run, _ = _eval_run(train)
    assert run.data.tags["mlflow.parentRunId"] == train
    assert run.data.tags["train_run_id"] == train
    assert run.info.status == "FINISHED"
    # Opened before the work, closed after it (it used to open after: ~0.1 s for 20 s jobs).
    assert (run.info.end_time - run.info.start_time) / 1000 >= WORK_SECONDS
    assert run.data.metrics["mcc/ci_low"] == 0.1
    names = {item.path for item in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert names == {"predictions.parquet", "evaluation.json", "completions_sample.json"}
    sample = json.loads(
        mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/completions_sample.json")
    )
    assert sample[0]["greedy_completion"] == "<answer>yes</answer>"


def test_failed_evaluation_leaves_a_failed_run(trained_model, tmp_path, monkeypatch):
    model, train = trained_model

    def broken(request):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(stages, "run_evaluation", broken)
    record = provenance.of_inputs("evaluate_model", {}, {}, [])
    with pytest.raises(RuntimeError, match="out of memory"):
        stages.evaluate_model(_request(model, tmp_path), model_kind="trained", record=record)
    run, _ = _eval_run(train)
    assert run.info.status == "FAILED"
