"""A table of MLflow runs (training and evaluation): ``tables/mlflow_runs.csv``.

The workflow's table holds the runs that made the artefacts on disk, found by their provenance
digest (``rbio.provenance``), and joins each evaluation of a trained model to that model's training
run through the model's digest; ``rbio compare`` filters by tags instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rbio.config import EXPERIMENT_ENV, TRACKING_URI_ENV
from rbio.io import atomic_path
from rbio.tracking import TAG_NAMES, store_lock

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


class StoreError(LookupError):
    """The tracking store or the experiment asked for does not exist."""


SQLITE_PREFIX = "sqlite:///"


def store_from_config(
    config_files: Sequence[str | Path], tracking_uri: str | None = None
) -> tuple[str, str | None]:
    """(tracking URI, experiment or None) as a workflow run with ``config_files`` used them:
    ``tracking_uri`` if given, else ``$MLFLOW_TRACKING_URI``, else the files' ``mlflow``
    section (later files win); a relative sqlite path is relative to the first file's folder
    (the workflow root, where Snakemake ran), not to the current folder."""
    import yaml

    section: dict[str, Any] = {}
    for path in config_files:
        section |= (yaml.safe_load(Path(path).read_text()) or {}).get("mlflow") or {}
    uri = tracking_uri or os.environ.get(TRACKING_URI_ENV) or section.get("tracking_uri")
    if not uri:
        raise StoreError(
            "no tracking store: pass --tracking-uri, set MLFLOW_TRACKING_URI or --config "
            "the workflow's config.yaml"
        )
    if uri.startswith(SQLITE_PREFIX) and config_files:
        database = Path(uri[len(SQLITE_PREFIX) :])
        if not database.is_absolute():
            uri = SQLITE_PREFIX + str(Path(config_files[0]).resolve().parent / database)
    experiment = os.environ.get(EXPERIMENT_ENV) or section.get("experiment")
    return uri, experiment


def check_store(tracking_uri: str, experiment: str) -> None:
    """Fail with what exists when the sqlite database or the experiment does not (MLflow would
    create an empty database and find no runs)."""
    import mlflow

    if tracking_uri.startswith(SQLITE_PREFIX):
        database = Path(tracking_uri[len(SQLITE_PREFIX) :])
        if not database.is_file():
            raise StoreError(
                f"no MLflow database at {database.resolve()} (tracking URI {tracking_uri})"
            )
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        names = sorted(e.name for e in mlflow.search_experiments())
        raise StoreError(
            f"experiment '{experiment}' does not exist in {tracking_uri}; experiments there: {names}"
        )


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
    # Reading a fresh sqlite store creates its schema too: under the lock writers take.
    with store_lock(tracking_uri):
        found = mlflow.get_experiment_by_name(experiment)
    if found is None:
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
