"""Nested model selection for the MLP verifier: settings chosen on the training lines only.

For one held-out (outer) cell line, the candidate settings (an embedding and ``MlpSettings``) are
compared on an *inner* validation line taken from the training lines: each candidate is fitted on
the other training lines and scored on that line's rows, the best one by inner per-gene AUROC is
refitted on all training lines, and the held-out line is scored once. The held-out line's rows
never reach the comparison, so its score is not the maximum over the grid.

Why one inner line and not leave-one-line-out over the three training lines: the inner task is
then the outer task in miniature (fit on other lines, score a new line), and it costs one fit per
candidate instead of three. The inner line is the one after the outer line in the configured
order (cyclically), so over the four outer folds every line is inner validation exactly once and
the choice depends on no data.

Why per-gene AUROC: the verifier's reward ranks perturbations for one gene, which is what
PerturbQA's per-gene AUROC measures; the global AUROC is dominated by the gene-frequency prior
(~0.9 for every reasonable setting) and barely tells settings apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rbio.verifiers import mlp
from rbio.verifiers.embeddings import GeneEmbedding

SELECTION_METRIC = "auroc_per_gene"


@dataclass(frozen=True)
class Candidate:
    """One setting of the grid: a name for tables, the embedding and the MLP settings."""

    name: str
    embedding: GeneEmbedding
    settings: mlp.MlpSettings


@dataclass
class NestedResult:
    """The inner scores of every candidate, the one chosen, and its held-out metrics."""

    inner_lines: list[str]
    inner_scores: pd.DataFrame
    chosen: str
    metrics: dict


def inner_validation_line(lines: Sequence[str], outer_line: str) -> str:
    """The training line after ``outer_line`` in ``lines``, cyclically."""
    if outer_line not in lines or len(lines) < 3:
        raise ValueError(
            f"nested selection needs the outer line among >= 3 lines, got {outer_line!r} in "
            f"{list(lines)}"
        )
    return lines[(list(lines).index(outer_line) + 1) % len(lines)]


def score_candidates(
    train: pd.DataFrame, inner_lines: Sequence[str], candidates: Sequence[Candidate]
) -> pd.DataFrame:
    """Per inner line and candidate: fit on ``train`` without that line, score that line's rows."""
    rows = []
    for inner_line in inner_lines:
        held = train["cell_line"] == inner_line
        if not held.any() or held.all():
            raise ValueError(f"inner line {inner_line!r} must be one of several training lines")
        fit_rows = train[~held].reset_index(drop=True)
        validation = train[held].reset_index(drop=True)
        for candidate in candidates:
            started = time.time()
            trained = mlp.train_verifier(
                fit_rows, validation, candidate.embedding, candidate.settings
            )
            overall = mlp.verifier_metrics(
                validation, trained.test_scores, candidate.settings.threshold
            )["all"]
            rows.append(
                {
                    "inner_line": inner_line,
                    "candidate": candidate.name,
                    "auroc": overall["auroc"],
                    "auroc_per_gene": overall["auroc_per_gene"],
                    "seconds": round(time.time() - started),
                }
            )
    return pd.DataFrame(rows)


def choose(scores: pd.DataFrame, metric: str = SELECTION_METRIC) -> str:
    """The candidate with the highest ``metric`` (mean over inner lines); ties go to the earlier
    (cheaper) one."""
    means = scores.groupby("candidate", sort=False)[metric].mean()
    values = means.to_numpy(float)
    if len(values) == 0 or all(math.isnan(v) for v in values):
        raise ValueError(f"no candidate has a {metric}: {scores.to_dict('records')}")
    best = max(range(len(values)), key=lambda i: (not math.isnan(values[i]), values[i], -i))
    return str(means.index[best])


def nested_selection(
    train: pd.DataFrame,
    test: pd.DataFrame,
    inner_lines: Sequence[str],
    candidates: Sequence[Candidate],
) -> NestedResult:
    """Choose on ``train`` alone (validated on ``inner_lines``), refit on all of it, score
    ``test``."""
    mlp.check_training_lines(train, sorted(set(test["cell_line"])), "nested selection")
    if len({candidate.name for candidate in candidates}) != len(candidates):
        raise ValueError(f"candidate names repeat: {[c.name for c in candidates]}")
    scores = score_candidates(train, inner_lines, candidates)
    chosen = choose(scores)
    best = next(candidate for candidate in candidates if candidate.name == chosen)
    trained = mlp.train_verifier(train, test, best.embedding, best.settings)
    metrics = mlp.verifier_metrics(test, trained.test_scores, best.settings.threshold)
    return NestedResult(list(inner_lines), scores, chosen, metrics)
