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
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
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
    """MLflow metric name: ``f1`` for all rows, ``f1.pair_seen_elsewhere_true`` for a stratum,
    prefixed by any protocol but the headline one (``strict.f1``).

    >>> metric_key("mcc", "pert_seen_elsewhere=False", "strict")
    'strict.mcc.pert_seen_elsewhere_false'
    """
    prefix = "" if protocol == HEADLINE_PROTOCOL else f"{protocol}."
    if stratum == "all":
        return _UNSAFE.sub("_", prefix + metric)
    column, _, flag = stratum.partition("=")
    return _UNSAFE.sub("_", f"{prefix}{metric}.{column}_{flag.lower()}")


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


@contextlib.contextmanager
def open_store(tracking_uri: str, experiment: str) -> Iterator[str]:
    """Point MLflow at a store and an experiment (created if new) and hold the store lock while
    the caller's first writes (its run) are made; yields the experiment id.

    The one place a writer first touches a store: MLflow creates a fresh sqlite store's schema on
    first contact, and parallel first contacts break it (and every later job on it).
    """
    import mlflow

    if public_uri(tracking_uri) != tracking_uri:
        # MLflow prints each finished run's address, URI credentials included, to stdout (the
        # job's log); better: give them in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
        os.environ[SUPPRESS_URL_PRINTING_ENV] = "true"
    with store_lock(tracking_uri):
        mlflow.set_tracking_uri(tracking_uri)
        yield mlflow.set_experiment(experiment).experiment_id


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

    missing = sorted({*RUN_TAGS, "provenance_digest"} - set(tags))
    if missing:
        raise ValueError(f"MLflow evaluation run needs tag(s) {missing}")
    if "protocol" not in metrics:  # a table of one protocol (hand-made): the headline one
        metrics = metrics.assign(protocol=HEADLINE_PROTOCOL)
    values = {
        metric_key(row.metric, row.stratum, row.protocol): float(row.value)
        for row in metrics.itertuples(index=False)
        if row.value is not None and not math.isnan(row.value)
    }
    values |= {
        metric_key(f"{row.metric}_ci_{side}", row.stratum, row.protocol): float(bound)
        for row in metrics.itertuples(index=False)
        if row.stratum == "all"
        for side, bound in (("low", row.ci_low), ("high", row.ci_high))
        if bound is not None and not math.isnan(bound)
    }
    with open_store(tracking_uri, experiment):
        tag_text = {key: str(value) for key, value in tags.items()}
        with mlflow.start_run(run_name=run_name, tags=tag_text) as run:
            if params:
                mlflow.log_params({key: str(value) for key, value in params.items()})
            mlflow.log_metrics(values)
            return run.info.run_id
