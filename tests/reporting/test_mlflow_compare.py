"""MLflow comparison: evaluation runs logged with the shared tags come back filtered."""

from __future__ import annotations

import os

import pandas as pd

from rbio.reporting.mlflow_compare import (
    runs_of_artefacts,
    search_runs_table,
    tag_filter,
    write_runs_table,
)
from rbio.tracking import log_evaluation_run, metric_key


def _metrics(f1: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["f1", "f1", "mcc"],
            "value": [f1, f1 / 2, 0.1],
            "ci_low": [f1 - 0.1, float("nan"), 0.0],
            "ci_high": [f1 + 0.1, float("nan"), 0.2],
            "stratum": ["all", "pair_seen_elsewhere=True", "all"],
            "n": [10, 4, 10],
        }
    )


def test_metric_keys_are_mlflow_safe():
    assert metric_key("f1", "all") == "f1"
    assert metric_key("f1", "pair_seen_elsewhere=True") == "f1/pair_seen_elsewhere_true"


def test_tag_filter_quotes_values():
    assert tag_filter({"stage": "eval", "variant": "it's"}) == (
        "tags.stage = 'eval' and tags.variant = 'it\\'s'"
    )


def test_runs_table_filters_by_tags(tmp_path):
    uri = os.environ["MLFLOW_TRACKING_URI"]
    common = {"seed": 42, "stage": "eval", "provenance_digest": "abc", "prompt": "nocot"}
    for variant, split, f1 in (
        ("EXP", "loco_k562", 0.6),
        ("TF", "loco_k562", 0.3),
        ("EXP", "all", 0.7),
    ):
        log_evaluation_run(
            _metrics(f1),
            tracking_uri=uri,
            experiment="rbio-test",
            tags={**common, "variant": variant, "split": split, "model_kind": "trained"},
            params={"num_samples": 2},
        )
    table = search_runs_table(uri, "rbio-test", {"stage": "eval", "split": "loco_k562"})
    assert sorted(table["variant"]) == ["EXP", "TF"]
    assert sorted(table["f1"]) == [0.3, 0.6]
    everything = search_runs_table(uri, "rbio-test")
    assert len(everything) == 3
    path = write_runs_table(everything, tmp_path / "tables" / "mlflow_runs.csv")
    assert len(pd.read_csv(path)) == 3
    assert search_runs_table(uri, "no-such-experiment").empty


def test_workflow_table_holds_the_runs_of_its_artefacts_joined_through_the_model(tmp_path):
    import mlflow

    uri = os.environ["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment("rbio-test").experiment_id
    client = mlflow.MlflowClient()
    common = {"seed": "42", "split": "loco_k562", "variant": "EXP"}
    train = client.create_run(
        experiment, tags={**common, "stage": "train", "provenance_digest": "model-digest"}
    ).info.run_id
    client.log_metric(train, "reward", 0.25, step=10)
    client.create_run(  # an older configuration's model: not among the artefacts on disk
        experiment, tags={**common, "stage": "train", "provenance_digest": "old-model"}
    )
    for digest, model in (("eval-digest", "model-digest"), ("old-eval", "old-model")):
        log_evaluation_run(
            _metrics(0.5),
            tracking_uri=uri,
            experiment="rbio-test",
            tags={**common, "stage": "eval", "prompt": "nocot", "model_kind": "trained",
                  "provenance_digest": digest, "model_provenance_digest": model},
        )  # fmt: skip
    records = [{"digest": "model-digest"}, {"digest": "eval-digest"}]
    table = runs_of_artefacts(uri, "rbio-test", records)
    assert sorted(table["provenance_digest"]) == ["eval-digest", "model-digest"]
    evaluation = table[table["stage"] == "eval"].iloc[0]
    assert evaluation["train_run_id"] == train
    assert evaluation["f1"] == 0.5
    assert table[table["stage"] == "train"].iloc[0]["reward"] == 0.25  # training metrics too
