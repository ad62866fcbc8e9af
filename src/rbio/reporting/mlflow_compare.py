"""A table of MLflow runs (training and evaluation): ``tables/mlflow_runs.csv``.

The workflow's table holds the runs that made the artefacts on disk, found by their provenance
digest (``rbio.provenance``), and joins each evaluation of a trained model to that model's training
run through the model's digest; ``rbio compare`` filters by tags instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rbio.io import atomic_path
from rbio.tracking import TAG_NAMES

# Evaluation runs' metrics (names: rbio.tracking.metric_key) ...
EVALUATION_METRICS: tuple[str, ...] = (
    "f1", "mcc", "mcc/ci_low", "mcc/ci_high", "tpr", "tnr", "balanced_accuracy", "auroc",
    "auroc_per_gene", "unparseable",
    "strict/mcc", "strict/auroc", "strict/coverage",  # the paper's protocol
)  # fmt: skip
# ... and training runs' (TRL's last logged values; rbio.training.grpo's run-level ones).
TRAINING_METRICS: tuple[str, ...] = (
    "reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "train_loss",
    "seconds_per_step", "reward_failures_total",
)  # fmt: skip
DEFAULT_METRICS: tuple[str, ...] = (*EVALUATION_METRICS, *TRAINING_METRICS)


def tag_filter(tags: Mapping[str, str]) -> str:
    """MLflow search syntax for equality on tags: ``tags.stage = 'eval' and tags.split = '…'``."""
    clauses = []
    for key, value in tags.items():
        escaped = str(value).replace("'", "\\'")
        clauses.append(f"tags.{key} = '{escaped}'")
    return " and ".join(clauses)


def search_runs_table(
    tracking_uri: str,
    experiment: str,
    tags: Mapping[str, str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """One row per run: id, name, status, start time, the shared tags, the chosen metrics."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    columns = ["run_id", "run_name", "status", "start_time", *TAG_NAMES, *metrics]
    if mlflow.get_experiment_by_name(experiment) is None:
        return pd.DataFrame(columns=columns)
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=tag_filter(tags or {}),
        order_by=["start_time DESC"],
        output_format="pandas",
    )
    if runs.empty:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs.get("tags.mlflow.runName"),
            "status": runs["status"],
            "start_time": runs["start_time"],
        }
    )
    for tag in TAG_NAMES:
        table[tag] = runs.get(f"tags.{tag}")
    for metric in metrics:
        table[metric] = runs.get(f"metrics.{metric}")
    return table.sort_values(["stage", "variant", "split", "prompt"], na_position="last")


def runs_of_artefacts(
    tracking_uri: str,
    experiment: str,
    records: Iterable[Mapping[str, Any]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """The runs whose ``provenance_digest`` is one of ``records``' digests (the newest run per
    artefact and variant: a killed attempt may have left an older one), each evaluation of a
    trained model with ``train_run_id`` = the run that trained that model."""
    digests = {record["digest"] for record in records}
    table = search_runs_table(tracking_uri, experiment, metrics=metrics)
    table = table[table["provenance_digest"].isin(digests)]
    table = table.sort_values("start_time", ascending=False).drop_duplicates(
        ["provenance_digest", "variant"]
    )
    trained = table[table["stage"] == "train"].set_index("provenance_digest")["run_id"]
    evaluation = table["stage"] == "eval"
    table.loc[evaluation, "train_run_id"] = (
        table.loc[evaluation, "model_provenance_digest"].map(trained).fillna("")
    )
    return table.sort_values(["stage", "variant", "split", "prompt"], na_position="last")


def write_runs_table(table: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)
