"""Synthetic metrics files shaped like the evaluate stage's outputs."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from rbio.evaluation.baselines import BASELINES
from rbio.evaluation.metrics import metrics_table, same_under_every_protocol

VARIANTS = ["EXP", "MLP", "TF", "TF+GO+MLP", "TF+GO+MLP+EXP"]
SPLITS = ["loco_k562", "loco_rpe1", "single_rpe1"]
PROMPTS = ["nocot", "cot"]


@functools.cache
def _cached(skill: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    label = (rng.random(n) < 0.15).astype(int)
    score = np.clip(label * skill + rng.random(n) * (1 - skill) + rng.normal(0, 0.05, n), 0, 1)
    rows = pd.DataFrame(
        {
            "label": label,
            "score": score,
            "predicted": (score > 0.5).astype(int),
            "gene": rng.choice(list("ABCDEFGH"), n),
            "pert": rng.choice([f"p{i}" for i in range(25)], n),
            "pair_seen_elsewhere": rng.random(n) < 0.3,
            "pert_seen_elsewhere": rng.random(n) < 0.8,
            "unparseable": rng.random(n) < 0.05,
            # The answer likelihood: a finer ranking than the sampled share (models only).
            "score_likelihood": np.clip(score + rng.normal(0, 0.05, n), 0, 1),
        }
    )
    conservative = metrics_table(rows, n_bootstrap=20, seed=seed, rate_columns=("unparseable",))
    # The strict protocol drops the unreadable answers (here: the unparseable ones).
    strict = metrics_table(
        rows.assign(kept=~rows["unparseable"]),
        n_bootstrap=20,
        seed=seed,
        rate_columns=("unparseable",),
        protocol="strict",
        kept_column="kept",
    )
    return pd.concat([conservative, strict], ignore_index=True)


def _metrics(skill: float, seed: int) -> pd.DataFrame:
    """Tables for a few skill levels, reused with a small seeded shift (keeps fixtures fast)."""
    table = _cached(round(skill, 1), seed % 3).copy()
    shift = np.random.default_rng(seed).normal(0, 0.02)
    for column in ("value", "ci_low", "ci_high"):
        keep = ~table["metric"].isin(["tp", "fp", "tn", "fn", "coverage"])
        table.loc[keep, column] = table.loc[keep, column] + shift
    return table


@pytest.fixture(scope="session")
def metrics_entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    entries = []
    seed = 0
    for split in SPLITS:
        for prompt in PROMPTS:
            models = [(v, "trained", 0.3 + 0.1 * i) for i, v in enumerate(VARIANTS)]
            for model, kind, skill in [*models, ("base", "base", 0.05)]:
                seed += 1
                path = root / model / split / prompt / "metrics.parquet"
                path.parent.mkdir(parents=True)
                _metrics(skill + (0.1 if prompt == "cot" else 0), seed).to_parquet(path)
                entries.append(
                    dict(model=model, kind=kind, split=split, prompt=prompt, path=str(path))
                )
        for i, baseline in enumerate(BASELINES):
            seed += 1
            path = root / "baselines" / split / baseline / "metrics.parquet"
            path.parent.mkdir(parents=True)
            # A baseline reads no answer: the same values under both protocols.
            conservative = _metrics(0.1 * i, seed).query(
                "protocol == 'conservative' and not metric.str.endswith('_likelihood')"
            )
            same_under_every_protocol(conservative).to_parquet(path)
            entries.append(
                dict(model=baseline, kind="baseline", split=split, prompt="", path=str(path))
            )
    return entries
