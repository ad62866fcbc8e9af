"""MLflow records of evaluations: one run per (model, split, prompt style), tagged like training.

Tags every run carries (docs/architecture.md): ``variant``, ``split``, ``seed``, ``stage``,
``config_hash``; evaluation adds ``prompt``, ``model_kind`` (trained/base/published/baseline) and,
for a trained model, ``train_run_id`` (read from the model's ``run.json``) so a comparison can join
an evaluation to its training run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


def metric_key(metric: str, stratum: str) -> str:
    """MLflow metric name: ``f1`` for all rows, ``f1.pair_seen_elsewhere_true`` for a stratum."""
    if stratum == "all":
        return metric
    column, _, flag = stratum.partition("=")
    return _UNSAFE.sub("_", f"{metric}.{column}_{flag.lower()}")


def log_evaluation_run(
    metrics: pd.DataFrame,
    *,
    tracking_uri: str,
    experiment: str,
    tags: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> str:
    """Log one evaluation (its metrics table) as an MLflow run; returns the run id."""
    import mlflow

    required = {"variant", "split", "seed", "stage", "config_hash"}
    missing = sorted(required - set(tags))
    if missing:
        raise ValueError(f"MLflow evaluation run needs tag(s) {missing}")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    values = {
        metric_key(row.metric, row.stratum): float(row.value)
        for row in metrics.itertuples(index=False)
        if row.value is not None and not math.isnan(row.value)
    }
    values |= {
        metric_key(f"{row.metric}_ci_{side}", row.stratum): float(bound)
        for row in metrics.itertuples(index=False)
        if row.stratum == "all"
        for side, bound in (("low", row.ci_low), ("high", row.ci_high))
        if bound is not None and not math.isnan(bound)
    }
    with mlflow.start_run(run_name=run_name, tags={k: str(v) for k, v in tags.items()}) as run:
        if params:
            mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(values)
        return run.info.run_id
