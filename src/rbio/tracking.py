"""MLflow runs: the tags every run carries (:func:`run_tags`, the one place they are built) and
the run of one evaluation.

Every run, training or evaluation, is tagged ``variant``, ``split``, ``seed``, ``stage`` and with
the provenance of the artefact it made (``provenance_digest``, ``params_digest``,
``code_version``, ``lock_digest``: ``rbio.provenance``); an evaluation adds ``prompt``,
``model_kind`` (trained/base/published/baseline) and, for a trained model,
``model_provenance_digest`` (the model folder's provenance digest, equal to its training run's
``provenance_digest``) and ``train_run_id`` (from the model's ``run.json``).

Every first contact with a store goes through :func:`open_store` (the store lock around MLflow's
schema creation), and every URI written to an output or a log through :func:`public_uri`.
Evaluation runs are nested under their training run (``mlflow.parentRunId``) when both are in the same store.
Metric names are grouped with ``/`` (:func:`metric_key`).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rbio import provenance
from rbio.evaluation.metrics import HEADLINE_PROTOCOL

RUN_TAGS: tuple[str, ...] = ("variant", "split", "seed", "stage")
EVALUATION_TAGS: tuple[str, ...] = (
    "prompt",
    "model_kind",
    "train_run_id",
    "model_provenance_digest",
)
# Every tag a run may carry, in the order tables show them.
TAG_NAMES: tuple[str, ...] = (*RUN_TAGS, *EVALUATION_TAGS, *provenance.TAGS)

# MLflow's tag for a nested run: the UI shows the run under its parent (the training run).
PARENT_RUN_TAG = "mlflow.parentRunId"
METRICS_PER_BATCH = 1000  # MLflow's limit on metrics in one log_batch call

_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")
# Query parameters of a store URI that carry a secret (postgresql://host/db?password=...).
_SECRET_PARAMETER = re.compile(r"pass|secret|token|key", re.IGNORECASE)
REDACTED = "REDACTED"
SUPPRESS_URL_PRINTING_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


def run_tags(
    *,
    variant: str,
    split: str,
    seed: int,
    stage: str,
    provenance_tags: Mapping[str, str],
    **evaluation: Any,
) -> dict[str, str]:
    """The MLflow tags of a run: what it is (``variant`` is the model or baseline name; ``stage``
    train or eval), the provenance tags of the artefact it made (``Provenance.tags()``), and for
    an evaluation the values of :data:`EVALUATION_TAGS` it has.

    >>> run_tags(variant="EXP", split="all", seed=42, stage="train", provenance_tags={})
    {'variant': 'EXP', 'split': 'all', 'seed': '42', 'stage': 'train'}
    """
    unknown = sorted(set(evaluation) - set(EVALUATION_TAGS))
    if unknown:
        raise ValueError(f"unknown run tag(s) {unknown}; evaluation tags: {EVALUATION_TAGS}")
    identity = {"variant": variant, "split": split, "seed": seed, "stage": stage}
    return {key: str(value) for key, value in {**identity, **evaluation, **provenance_tags}.items()}


def metric_key(metric: str, stratum: str, protocol: str = HEADLINE_PROTOCOL) -> str:
    """MLflow metric name, grouped with ``/`` (the MLflow UI makes a section of each first part):
    ``f1`` for all rows, ``f1/pair_seen_elsewhere_true`` for a stratum, under a protocol prefix
    for any protocol but the headline one (``strict/f1``).

    >>> metric_key("mcc", "pert_seen_elsewhere=False", "strict")
    'strict/mcc/pert_seen_elsewhere_false'
    """
    parts = [] if protocol == HEADLINE_PROTOCOL else [protocol]
    parts.append(metric)
    if stratum != "all":
        column, _, flag = stratum.partition("=")
        parts.append(f"{column}_{flag.lower()}")
    return _UNSAFE.sub("_", "/".join(parts))


def evaluation_metrics(metrics: pd.DataFrame) -> dict[str, float]:
    """A metrics table as MLflow metrics: each value by :func:`metric_key`, and each overall
    value's 95% CI bounds beside it (``mcc/ci_low``, ``strict/mcc/ci_high``); NaN left out."""
    if "protocol" not in metrics:  # a table of one protocol (hand-made): the headline one
        metrics = metrics.assign(protocol=HEADLINE_PROTOCOL)
    values = {}
    for row in metrics.itertuples(index=False):
        key = metric_key(row.metric, row.stratum, row.protocol)
        bounds = (("", row.value),)
        if row.stratum == "all":
            bounds += (("/ci_low", row.ci_low), ("/ci_high", row.ci_high))
        for suffix, value in bounds:
            if value is not None and not math.isnan(value):
                values[key + suffix] = float(value)
    return values


def public_uri(uri: str | None) -> str | None:
    """``uri`` without its credentials, for outputs and logs: the ``user:password@`` part is
    dropped and the values of query parameters that name a secret are replaced.

    >>> public_uri("https://alice:s3cret@mlflow.example.org:5000/?token=abc&x=1")
    'https://mlflow.example.org:5000/?token=REDACTED&x=1'
    >>> public_uri("sqlite:///results/mlflow/mlflow.db")
    'sqlite:///results/mlflow/mlflow.db'
    """
    if not uri:
        return uri
    parts = urllib.parse.urlsplit(uri)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secret = any(_SECRET_PARAMETER.search(key) for key, _ in pairs)
    if "@" not in parts.netloc and not secret:
        return uri  # as given: urlunsplit would rewrite sqlite:/// paths
    if secret:
        pairs = [
            (key, REDACTED if _SECRET_PARAMETER.search(key) else value) for key, value in pairs
        ]
    query = urllib.parse.urlencode(pairs, safe="/:") if secret else parts.query
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


@contextlib.contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Serialise access to a local sqlite store across processes.

    Parallel jobs that open a fresh sqlite store at once race in MLflow's schema migration
    ("Online migration expected to match one row"); a lock file beside the database avoids it.
    Other stores (a tracking server) need no lock.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        yield
        return
    database = Path(tracking_uri[len(prefix) :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The tag the MLflow UI reads to pick an experiment's landing view (mlflow/server/js: the
# experimentKind enum); without it MLflow 3 opens the GenAI traces view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
ARTIFACTS_DIR = "artifacts"  # beside a sqlite store's database


def artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a sqlite store's database (so that
    they live under ``results/mlflow``, not in a ``./mlruns`` of whatever folder a job ran in);
    a tracking server decides for itself (None).

    >>> artifact_root("sqlite:///results/mlflow/mlflow.db")
    'results/mlflow/artifacts'
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return str(Path(tracking_uri[len(prefix) :]).parent / ARTIFACTS_DIR)


def use_experiment(tracking_uri: str, name: str) -> Any:
    """Point MLflow at ``name`` (created with :func:`artifact_root` if new), typed as a model
    training experiment; returns it. Call under :func:`store_lock` (:func:`open_store` does)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        # Created meanwhile by a job on another machine (a server store has no lock): fine.
        with contextlib.suppress(MlflowException):
            mlflow.create_experiment(
                name,
                artifact_location=artifact_root(tracking_uri),
                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND},
            )
    elif experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        mlflow.MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
        )
    return mlflow.set_experiment(name)


@contextlib.contextmanager
def evaluation_run(
    *,
    tracking_uri: str,
    experiment: str,
    tags: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """An MLflow run open while the evaluation works (its duration is the work's), FAILED if the
    work raises; nested under ``parent_run_id`` (the model's training run) where given. Yields
    the run id. The store lock is taken to create the run, not held during the work."""
    import mlflow
    from mlflow.entities import Param

    missing = sorted({*RUN_TAGS, "provenance_digest"} - set(tags))
    if missing:
        raise ValueError(f"MLflow evaluation run needs tag(s) {missing}")
    tag_text = {key: str(value) for key, value in tags.items()}
    if parent_run_id:
        tag_text[PARENT_RUN_TAG] = parent_run_id
    with open_store(tracking_uri, experiment) as experiment_id:
        client = mlflow.MlflowClient(tracking_uri)
        run_id = client.create_run(experiment_id, run_name=run_name, tags=tag_text).info.run_id
        if params:
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")


def log_evaluation_results(
    run_id: str,
    metrics: pd.DataFrame,
    *,
    tracking_uri: str,
    artifacts: Sequence[str | Path] = (),
) -> None:
    """Log a metrics table (:func:`evaluation_metrics`) and files as artifacts on a run."""
    import time

    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri)
    now = int(time.time() * 1000)
    values = [Metric(k, v, now, 0) for k, v in evaluation_metrics(metrics).items()]
    with store_lock(tracking_uri):
        for start in range(0, len(values), METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=values[start : start + METRICS_PER_BATCH])
    for path in artifacts:
        client.log_artifact(run_id, str(path))


def log_step_metrics(
    run_id: str, step: int, metrics: Mapping[str, float], *, tracking_uri: str
) -> None:
    """Log metrics at a training step on an existing run (values computed outside TRL's logs)."""
    import time

    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    mlflow.MlflowClient(tracking_uri).log_batch(run_id, metrics=values)


def log_run_files(
    run_id: str, paths: Sequence[str | Path], *, tracking_uri: str, folder: str
) -> None:
    """Add files to an existing run's artifacts under ``folder`` (a figure drawn after the run
    ended, e.g. a model's learning curves)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=folder)


@contextlib.contextmanager
def open_store(tracking_uri: str, experiment: str) -> Iterator[str]:
    """Point MLflow at a store and an experiment (created if new) and hold the store lock while
    the caller's first writes (its run) are made; yields the experiment id.

    The one place a writer first touches a store: MLflow creates a fresh sqlite store's schema on
    first contact, and parallel first contacts break it (and every later job on it).
    """
    if public_uri(tracking_uri) != tracking_uri:
        # MLflow prints each finished run's address, URI credentials included, to stdout (the
        # job's log); better: give them in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
        os.environ[SUPPRESS_URL_PRINTING_ENV] = "true"
    with store_lock(tracking_uri):
        yield use_experiment(tracking_uri, experiment).experiment_id


def log_evaluation_run(
    metrics: pd.DataFrame,
    *,
    tracking_uri: str,
    experiment: str,
    tags: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> str:
    """Log one finished evaluation (its metrics table) as an MLflow run; returns the run id."""
    with evaluation_run(
        tracking_uri=tracking_uri,
        experiment=experiment,
        tags=tags,
        params=params,
        run_name=run_name,
    ) as run_id:
        log_evaluation_results(run_id, metrics, tracking_uri=tracking_uri)
    return run_id
