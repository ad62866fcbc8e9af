"""Binary classification metrics with perturbation-level bootstrap confidence intervals.

Point estimates use scikit-learn. The bootstrap resamples *perturbations* (all rows of a drawn
perturbation come along), because rows of one perturbation are not independent: they share the
knockdown's strength and off-target effects. Recomputing scikit-learn metrics 1000 times on
100k-row test sets with thousands of per-gene AUROCs would take hours, so the resamples use an
exactly equivalent weighted formulation (a resample is a vector of multiplicities per
perturbation) that is checked against scikit-learn in the tests.

Conventions for undefined values (every file uses them):
- precision, F1 with no predicted positives: 0 (scikit-learn's ``zero_division=0``);
- MCC when one class is predicted but both are present: 0, as scikit-learn (the "always no"
  majority baseline scores MCC 0);
- MCC, TPR, TNR, balanced accuracy and AUROC of rows with one class only (a stratum without DE
  rows): NaN, undefined, shown in tables as "n/a" with :func:`undefined_reason` rather than
  invented as 0;
- per-gene AUROC (PerturbQA's ``auc_per_gene``): AUROC of the score within each monitored gene,
  genes with a single class skipped, then the unweighted mean over genes; NaN without a gene of
  both classes. ``auroc_per_gene_genes`` counts the genes it averages.

Bootstrap: a resample in which a metric is undefined (e.g. it drew no DE row of a small stratum)
is left out of its percentile interval and counted in column ``undefined_resamples`` (of
``resamples`` drawn), so a table can say how many of the intervals' draws were lost.

Evaluation protocols (column ``protocol`` of every metrics table, see :data:`PROTOCOLS`):
- ``conservative`` (this project's): the lenient answer parse; an unreadable answer is a "no"
  for the hard metrics *and* for P(yes), so every row is scored (coverage 1);
- ``strict`` (the paper benchmark's): a bare yes/no in the first ``<answer>`` block; rows whose
  answer cannot be read are dropped, metrics are on the kept rows, and ``coverage`` is the share
  of rows kept. Baselines read no answer: both protocols give them the same values.

A second continuous score, the model's answer likelihood (column :data:`LIKELIHOOD_SCORE`,
``rbio.evaluation.likelihood``), is ranked beside ``score`` when a predictions file has it:
metrics ``auroc_likelihood`` and ``auroc_per_gene_likelihood`` (:data:`LIKELIHOOD_METRICS`), on
the rows each protocol scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    roc_auc_score,
)

METRICS: tuple[str, ...] = (
    "tp",
    "fp",
    "tn",
    "fn",
    "accuracy",
    "precision",
    "tpr",
    "tnr",
    "f1",
    "mcc",
    "balanced_accuracy",
    "auroc",
    "auroc_per_gene",
    "auroc_per_gene_genes",
)
# Metrics shown in tables and figures (counts stay in the long files).
HEADLINE_METRICS: tuple[str, ...] = (
    "f1",
    "mcc",
    "tpr",
    "tnr",
    "balanced_accuracy",
    "auroc",
    "auroc_per_gene",
)
# The answer likelihood's P(DE) column of a predictions file, and the metrics ranked by it.
LIKELIHOOD_SCORE = "score_likelihood"
LIKELIHOOD_METRICS: tuple[str, ...] = ("auroc_likelihood", "auroc_per_gene_likelihood")
# Every metrics file has these; files written before the bootstrap counts lack BOOTSTRAP_COLUMNS
# (read_metrics fills them with NaN: unknown).
CORE_METRIC_COLUMNS: tuple[str, ...] = (
    "metric", "value", "ci_low", "ci_high", "stratum", "n", "protocol",
)  # fmt: skip
BOOTSTRAP_COLUMNS: tuple[str, ...] = ("resamples", "undefined_resamples")
METRIC_COLUMNS: tuple[str, ...] = CORE_METRIC_COLUMNS + BOOTSTRAP_COLUMNS
PROTOCOLS: tuple[str, ...] = ("conservative", "strict")
# The project's protocol: unprefixed MLflow keys, figures, stratum tables.
HEADLINE_PROTOCOL = "conservative"
# Share of a stratum's rows that a protocol scored (n counts the scored rows).
COVERAGE = "coverage"
STRATUM_COLUMNS: tuple[str, ...] = ("pair_seen_elsewhere", "pert_seen_elsewhere")
STRATA: tuple[str, ...] = ("all",) + tuple(
    f"{column}={flag}" for column in STRATUM_COLUMNS for flag in (True, False)
)


class MetricsInputError(ValueError):
    """Inputs to the metrics that cannot be scored; the message names the column."""


# --------------------------------------------------------------------------------------------
# Point estimates (scikit-learn)
# --------------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def auroc_per_gene(label: np.ndarray, score: np.ndarray, gene: np.ndarray) -> tuple[float, int]:
    """Mean over monitored genes of the within-gene AUROC (single-class genes are skipped), and
    the number of genes averaged."""
    frame = pd.DataFrame({"label": label, "score": score, "gene": gene})
    values = [
        roc_auc_score(group["label"], group["score"])
        for _, group in frame.groupby("gene", sort=False)
        if group["label"].nunique() == 2
    ]
    return (float(np.mean(values)) if values else float("nan")), len(values)


def aurocs(label: np.ndarray, score: np.ndarray, gene: np.ndarray) -> tuple[float, float, int]:
    """AUROC and per-gene AUROC of ``score`` (NaN when a class is missing), and the number of
    genes the per-gene AUROC averages."""
    label = np.asarray(label, dtype=int)
    both_classes = 0 < label.sum() < len(label)
    auroc = float(roc_auc_score(label, score)) if both_classes else float("nan")
    return auroc, *auroc_per_gene(label, score, gene)


def point_metrics(
    label: np.ndarray, predicted: np.ndarray, score: np.ndarray, gene: np.ndarray
) -> dict[str, float]:
    """Every metric of METRICS for one set of rows (labels and predictions in {0, 1})."""
    label = np.asarray(label, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    if len(label) == 0:
        return dict.fromkeys(METRICS, float("nan"))
    tn, fp, fn, tp = confusion_matrix(label, predicted, labels=[0, 1]).ravel()
    tpr = _ratio(tp, tp + fn)
    tnr = _ratio(tn, tn + fp)
    both_classes = 0 < label.sum() < len(label)
    auroc, per_gene, genes = aurocs(label, score, gene)
    return {
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
        "accuracy": float((tp + tn) / len(label)),
        "precision": float(precision_score(label, predicted, zero_division=0)),
        "tpr": tpr,
        "tnr": tnr,
        "f1": float(f1_score(label, predicted, zero_division=0)),
        "mcc": float(matthews_corrcoef(label, predicted)) if both_classes else float("nan"),
        "balanced_accuracy": (tpr + tnr) / 2,
        "auroc": auroc,
        "auroc_per_gene": per_gene,
        "auroc_per_gene_genes": float(genes),
    }


# --------------------------------------------------------------------------------------------
# Weighted (bootstrap) versions: a resample is a multiplicity per perturbation
# --------------------------------------------------------------------------------------------


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(np.broadcast(numerator, denominator).shape, fill, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _confusion_metrics(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """Metrics from (possibly weighted) confusion counts, vectorised over resamples."""
    total = tp + fp + tn + fn
    tpr = _safe_divide(tp, tp + fn, np.nan)
    tnr = _safe_divide(tn, tn + fp, np.nan)
    mcc_denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "accuracy": _safe_divide(tp + tn, total, np.nan),
        "precision": _safe_divide(tp, tp + fp, 0.0),
        "tpr": tpr,
        "tnr": tnr,
        "f1": _safe_divide(2 * tp, 2 * tp + fp + fn, 0.0),
        # 0 when one class is predicted, undefined when one class is present (module docstring).
        "mcc": np.where(
            (tp + fn) * (tn + fp) == 0,
            np.nan,
            _safe_divide(tp * tn - fp * fn, mcc_denominator, 0.0),
        ),
        "balanced_accuracy": (tpr + tnr) / 2,
    }


def _auc_from_levels(
    positives: np.ndarray, negatives: np.ndarray, group_starts: np.ndarray
) -> np.ndarray:
    """AUROC per group from weighted class counts per score level (levels ascending in a group).

    ``positives``/``negatives`` are (levels x resamples); tied scores count one half, as in the
    Mann-Whitney form of the AUROC that scikit-learn's trapezoidal ROC area equals.
    """
    cumulative = np.cumsum(negatives, axis=0) - negatives  # negatives strictly below, all groups
    group_of_level = np.repeat(
        np.arange(len(group_starts)), np.diff(np.append(group_starts, len(positives)))
    )
    below_in_group = cumulative - cumulative[group_starts][group_of_level]
    pairs_won = np.add.reduceat(positives * (below_in_group + 0.5 * negatives), group_starts)
    n_pos = np.add.reduceat(positives, group_starts)
    n_neg = np.add.reduceat(negatives, group_starts)
    return _safe_divide(pairs_won, n_pos * n_neg, np.nan)


@dataclass
class _LevelDesign:
    """Sparse (score level within group) x perturbation class counts."""

    positives: sparse.csr_matrix
    negatives: sparse.csr_matrix
    group_starts: np.ndarray

    @classmethod
    def build(cls, label, score, group, pert_index, n_perts) -> _LevelDesign:
        frame = pd.DataFrame({"group": group, "score": score, "label": label, "pert": pert_index})
        frame["group"] = pd.factorize(frame["group"])[0]
        keys = frame[["group", "score"]].drop_duplicates().sort_values(["group", "score"])
        keys["level"] = np.arange(len(keys))
        frame = frame.merge(keys, on=["group", "score"], how="left")
        shape = (len(keys), n_perts)

        def counts(mask: np.ndarray) -> sparse.csr_matrix:
            ones = np.ones(int(mask.sum()))
            rows = frame["level"].to_numpy()[mask]
            cols = frame["pert"].to_numpy()[mask]
            return sparse.csr_matrix((ones, (rows, cols)), shape=shape)

        is_positive = frame["label"].to_numpy() == 1
        group_ids = keys["group"].to_numpy()
        starts = np.flatnonzero(np.r_[True, group_ids[1:] != group_ids[:-1]])
        return cls(counts(is_positive), counts(~is_positive), starts)

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """AUROC per group for each resample; ``weights`` is (perturbations x resamples)."""
        return _auc_from_levels(
            np.asarray(self.positives @ weights),
            np.asarray(self.negatives @ weights),
            self.group_starts,
        )


def weighted_metrics(
    label: np.ndarray,
    predicted: np.ndarray,
    score: np.ndarray,
    gene: np.ndarray,
    pert: np.ndarray,
    weights: np.ndarray,
    rates: Mapping[str, np.ndarray] | None = None,
    extra_scores: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Metrics under perturbation multiplicities ``weights`` (perturbations x resamples).

    Perturbations are indexed in order of first appearance (``pd.factorize(pert)``). With all
    weights 1 this equals :func:`point_metrics` (tested). ``extra_scores`` (name: score) add
    ``auroc_<name>`` and ``auroc_per_gene_<name>``.
    """
    label = np.asarray(label, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    pert_index, pert_names = pd.factorize(np.asarray(pert))
    n_perts = len(pert_names)
    weights = np.asarray(weights, dtype=float)
    if weights.ndim == 1:
        weights = weights[:, None]
    if weights.shape[0] != n_perts:
        raise MetricsInputError(f"weights have {weights.shape[0]} rows for {n_perts} perturbations")

    def per_pert(mask: np.ndarray) -> np.ndarray:
        return np.bincount(pert_index, weights=mask.astype(float), minlength=n_perts)

    cells = {
        "tp": (label == 1) & (predicted == 1),
        "fp": (label == 0) & (predicted == 1),
        "tn": (label == 0) & (predicted == 0),
        "fn": (label == 1) & (predicted == 0),
    }
    counts = {name: per_pert(mask) @ weights for name, mask in cells.items()}
    result = _confusion_metrics(**counts)
    for suffix, values in (("", score), *((f"_{k}", v) for k, v in (extra_scores or {}).items())):
        auroc, per_gene, genes = _weighted_aurocs(label, values, gene, pert_index, n_perts, weights)
        result[f"auroc{suffix}"], result[f"auroc_per_gene{suffix}"] = auroc, per_gene
        if not suffix:
            result["auroc_per_gene_genes"] = genes
    rows = per_pert(np.ones(len(label), dtype=bool)) @ weights
    for name, values in (rates or {}).items():
        result[name] = _safe_divide(
            per_pert(np.asarray(values, dtype=float)) @ weights, rows, np.nan
        )
    return result


def _weighted_aurocs(label, score, gene, pert_index, n_perts, weights):
    """AUROC, per-gene AUROC (mean over genes with both classes) and the genes it averages, for
    each resample."""
    one_group = np.zeros(len(label), dtype=int)
    auroc = _LevelDesign.build(label, score, one_group, pert_index, n_perts).auc(weights)[0]
    per_gene = _LevelDesign.build(label, score, gene, pert_index, n_perts).auc(weights)
    with np.errstate(all="ignore"):
        valid = ~np.isnan(per_gene)
        mean = _safe_divide(np.where(valid, per_gene, 0.0).sum(axis=0), valid.sum(axis=0), np.nan)
    return auroc, mean, valid.sum(axis=0).astype(float)


# --------------------------------------------------------------------------------------------
# Metrics tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval and how many of its resamples left the metric undefined."""

    low: float = float("nan")
    high: float = float("nan")
    resamples: int = 0
    undefined: int = 0


def _bootstrap_intervals(
    label, predicted, score, gene, pert, rates, n_resamples: int, seed: int, extra_scores=None
) -> dict[str, Interval]:
    n_perts = len(pd.unique(np.asarray(pert)))
    rng = np.random.default_rng(seed)
    # Keep the dense (levels x resamples) blocks near 200 MB at most.
    chunk = int(max(1, min(n_resamples, 2.5e7 // max(len(label), 1))))
    draws: dict[str, list[np.ndarray]] = {}
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        multiplicities = rng.multinomial(n_perts, np.full(n_perts, 1 / n_perts), size=size).T
        for name, values in weighted_metrics(
            label, predicted, score, gene, pert, multiplicities, rates, extra_scores
        ).items():
            draws.setdefault(name, []).append(np.atleast_1d(values))
        done += size
    intervals = {}
    for name, chunks in draws.items():
        values = np.concatenate(chunks)
        defined = values[~np.isnan(values)]
        bounds = (
            (float(np.percentile(defined, 2.5)), float(np.percentile(defined, 97.5)))
            if len(defined)
            else (float("nan"), float("nan"))
        )
        intervals[name] = Interval(*bounds, len(values), len(values) - len(defined))
    return intervals


def undefined_reason(metric: str, counts: Mapping[str, float]) -> str:
    """Why ``metric`` is undefined (NaN) on rows with confusion ``counts`` (tp, fp, tn, fn, and
    ``auroc_per_gene_genes`` when known): the text tables show after "n/a"."""
    get = {k: float(counts.get(k, np.nan)) for k in ("tp", "fp", "tn", "fn")}
    if any(np.isnan(v) for v in get.values()):
        return "not computed"
    positives, negatives = get["tp"] + get["fn"], get["tn"] + get["fp"]
    if positives + negatives == 0:
        return "no scored row"
    metric = metric.removesuffix("_likelihood")  # the same metric ranked by another score
    if metric == "auroc_per_gene" and not counts.get("auroc_per_gene_genes", 1):
        return "no gene with both classes"
    if positives == 0 and metric in ("tpr", "mcc", "balanced_accuracy", "auroc", "auroc_per_gene"):
        return "no DE row"
    if negatives == 0 and metric in ("tnr", "mcc", "balanced_accuracy", "auroc", "auroc_per_gene"):
        return "no non-DE row"
    return "undefined"


def _check_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise MetricsInputError(f"{what}: missing column(s) {missing}; has {list(frame.columns)}")


def stratum_mask(frame: pd.DataFrame, stratum: str) -> np.ndarray:
    """Boolean row mask of a stratum name from STRATA."""
    if stratum == "all":
        return np.ones(len(frame), dtype=bool)
    column, _, flag = stratum.partition("=")
    return frame[column].astype(bool).to_numpy() == (flag == "True")


def metrics_table(
    frame: pd.DataFrame,
    *,
    n_bootstrap: int,
    seed: int,
    rate_columns: tuple[str, ...] = (),
    what: str = "predictions",
    protocol: str = HEADLINE_PROTOCOL,
    kept_column: str | None = None,
) -> pd.DataFrame:
    """Long metrics table (METRIC_COLUMNS) for all rows and each stratum, under one protocol.

    ``frame`` needs ``label``, ``predicted`` (0/1), ``score`` (higher = more likely DE), ``gene``,
    ``pert`` and the stratum flags; ``rate_columns`` are per-row 0/1 indicators reported as their
    mean over the scored rows (e.g. ``unparseable``). When ``frame`` has :data:`LIKELIHOOD_SCORE`,
    :data:`LIKELIHOOD_METRICS` rank the rows by it. ``kept_column`` (a boolean column) names
    the rows the protocol scores, the others are dropped (their score may be NaN); ``n`` counts
    the scored rows and metric ``coverage`` their share of the stratum (1 without
    ``kept_column``). An empty stratum gets rows with n = 0 and NaN values, so every file lists
    the same strata.
    """
    if protocol not in PROTOCOLS:
        raise MetricsInputError(f"{what}: protocol '{protocol}' is not one of {PROTOCOLS}")
    needed = ["label", "predicted", "score", "gene", "pert", *STRATUM_COLUMNS, *rate_columns]
    _check_columns(frame, needed + ([kept_column] if kept_column else []), what)
    kept = frame[kept_column].astype(bool) if kept_column else pd.Series(True, index=frame.index)
    scored_nan = frame["score"].isna() & kept
    if scored_nan.any():
        first = int(np.flatnonzero(scored_nan.to_numpy())[0])
        raise MetricsInputError(f"{what}: NaN score at row {first} ({frame.iloc[first].to_dict()})")
    records = []
    for stratum in STRATA:
        in_stratum = stratum_mask(frame, stratum)
        rows = frame[in_stratum & kept.to_numpy()]
        coverage = _ratio(len(rows), int(in_stratum.sum()))
        values, intervals = _stratum_metrics(rows, rate_columns, n_bootstrap, seed)
        values[COVERAGE] = coverage
        for metric, value in values.items():
            ci = intervals.get(metric, Interval())
            records.append(
                (metric, value, ci.low, ci.high, stratum, len(rows), protocol)
                + (ci.resamples, ci.undefined)
            )
    table = pd.DataFrame.from_records(records, columns=list(METRIC_COLUMNS))
    return table.astype(
        {"value": float, "ci_low": float, "ci_high": float, "n": "int64"}
        | dict.fromkeys(BOOTSTRAP_COLUMNS, "int64")
    )


def _stratum_metrics(
    rows: pd.DataFrame, rate_columns: tuple[str, ...], n_bootstrap: int, seed: int
) -> tuple[dict[str, float], dict[str, Interval]]:
    """Point values and bootstrap intervals of every metric and rate on one stratum's rows."""
    arrays = (
        rows["label"].to_numpy(int),
        rows["predicted"].to_numpy(int),
        rows["score"].to_numpy(float),
        rows["gene"].to_numpy(),
    )
    values = point_metrics(*arrays)
    extra = {}
    if LIKELIHOOD_SCORE in rows.columns:
        extra["likelihood"] = rows[LIKELIHOOD_SCORE].to_numpy(float)
        label, _, _, gene = arrays
        values.update(
            zip(LIKELIHOOD_METRICS, aurocs(label, extra["likelihood"], gene)[:2], strict=True)
        )
    rates = {column: rows[column].to_numpy(float) for column in rate_columns}
    for column, indicator in rates.items():
        values[column] = float(indicator.mean()) if len(indicator) else float("nan")
    intervals = (
        _bootstrap_intervals(*arrays, rows["pert"].to_numpy(), rates, n_bootstrap, seed, extra)
        if n_bootstrap > 0 and len(rows)
        else {}
    )
    return values, intervals


def same_under_every_protocol(table: pd.DataFrame) -> pd.DataFrame:
    """A metrics table repeated for every protocol: for scores that read no answer (baselines),
    which every protocol keeps whole (coverage 1)."""
    return pd.concat([table.assign(protocol=protocol) for protocol in PROTOCOLS], ignore_index=True)


def read_metrics(path) -> pd.DataFrame:
    """Read a metrics.parquet and check its schema (every producer writes the same one)."""
    table = pd.read_parquet(path)
    _check_columns(table, list(CORE_METRIC_COLUMNS), str(path))
    for column in BOOTSTRAP_COLUMNS:  # written before the bootstrap counts: unknown
        if column not in table:
            table[column] = np.nan
    return table
