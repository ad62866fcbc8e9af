"""Honest baselines on the same test rows as the models.

Every baseline gives each test row a score (higher = more likely DE) and a yes/no prediction, and
is scored by the same metrics code as the models:

- ``majority``: always "no" (the majority class; ~87% accuracy, MCC 0);
- ``gene_prior``: how often the monitored gene is DE in the training rows, smoothed towards the
  overall DE rate with one pseudo-observation (``SMOOTHING``);
- ``pert_prior``: the same for the perturbation (an unseen perturbation gets the overall rate);
- ``pair_prior``: the same pair's training labels (other cell lines in LOCO), backing off to
  ``sigmoid(logit gene_prior + logit pert_prior - logit overall)``: the pair's rate if gene and
  perturbation acted independently on the odds;
- ``mlp_verifier``: the MLP verifier's P(DE) (``verifiers/mlp/{split}/scores.parquet``), cut at
  0.5, the verifier's own threshold (it was fit on the training rows, so a threshold tuned on them
  would be tuned in-sample);
- ``tf_pmi``: TranscriptFormer/expression PMI of the two genes (pairs without a PMI score 0, the
  clamp value);
- ``go_similarity``: Jaccard similarity of the two genes' direct GO term sets (all aspects).

Thresholds (all but ``majority`` and ``mlp_verifier``) maximise MCC on the training rows only.
For the label-derived priors the training rows are scored out-of-fold, with folds that hold out
what the test set holds out: whole cell lines when the test lines are not training lines (LOCO),
else (cell line, perturbation) groups. A prior scored on the very rows it was computed from would
pick a threshold for memorised labels, not for new lines or perturbations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbio.evaluation.metrics import metrics_table, same_under_every_protocol
from rbio.evaluation.names import BASELINES as BASELINES  # re-exported (declared numpy-free)
from rbio.io import write_json, write_parquet

log = logging.getLogger(__name__)

PRIOR_BASELINES: tuple[str, ...] = ("gene_prior", "pert_prior", "pair_prior")
SMOOTHING = 1.0  # pseudo-observations at the back-off rate
MLP_THRESHOLD = 0.5
N_PERT_FOLDS = 5
_EPS = 1e-6


class BaselineInputError(ValueError):
    """A verifier or split file that the baselines cannot use; names the file and column."""


# --------------------------------------------------------------------------------------------
# Label priors
# --------------------------------------------------------------------------------------------


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _smoothed(train: pd.DataFrame, keys: list[str], target: pd.DataFrame, backoff) -> np.ndarray:
    """(DE count + SMOOTHING * backoff) / (rows + SMOOTHING) of each target row's key."""
    stats = train.groupby(keys, observed=True)["label"].agg(["sum", "count"]).reset_index()
    joined = target[keys].merge(stats, on=keys, how="left")
    positives = joined["sum"].fillna(0).to_numpy(float)
    rows = joined["count"].fillna(0).to_numpy(float)
    return (positives + SMOOTHING * np.asarray(backoff)) / (rows + SMOOTHING)


def prior_scores(train: pd.DataFrame, target: pd.DataFrame) -> dict[str, np.ndarray]:
    """Gene, perturbation and pair priors from ``train`` labels for the rows of ``target``."""
    overall = float(train["label"].mean()) if len(train) else 0.0
    gene = _smoothed(train, ["gene"], target, overall)
    pert = _smoothed(train, ["pert"], target, overall)
    independent = 1 / (1 + np.exp(-(_logit(gene) + _logit(pert) - _logit(overall))))
    pair = _smoothed(train, ["pert", "gene"], target, independent)
    return {"gene_prior": gene, "pert_prior": pert, "pair_prior": pair}


def fold_groups(train: pd.DataFrame, test_lines_are_new: bool) -> np.ndarray:
    """Fold id per training row: by cell line (LOCO-like) or by (line, perturbation) groups."""
    lines = train["cell_line"].astype(str)
    if test_lines_are_new and lines.nunique() >= 2:
        return pd.factorize(lines)[0]
    groups = pd.factorize(lines + "\t" + train["pert"].astype(str))[0]
    # A seeded shuffle of the groups, then round-robin: balanced folds of whole groups.
    order = np.random.default_rng(0).permutation(groups.max() + 1)
    return order[groups] % N_PERT_FOLDS


def out_of_fold_priors(train: pd.DataFrame, folds: np.ndarray) -> dict[str, np.ndarray]:
    """Each training row's priors computed without its own fold."""
    scores = {name: np.zeros(len(train)) for name in PRIOR_BASELINES}
    for fold in np.unique(folds):
        held = folds == fold
        for name, values in prior_scores(train[~held], train[held]).items():
            scores[name][held] = values
    return scores


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def best_mcc_threshold(label: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """(threshold, MCC) maximising MCC of ``score >= threshold``; ties keep the higher cut.

    The threshold is ``inf`` (predict "no" everywhere) when no cut beats MCC 0.
    """
    label = np.asarray(label, dtype=int)
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    sorted_scores, sorted_labels = score[order], label[order]
    # Cut after the last row of each distinct score: everything at or above it predicted "yes".
    last_of_level = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp = np.cumsum(sorted_labels)[last_of_level].astype(float)
    fp = np.cumsum(1 - sorted_labels)[last_of_level].astype(float)
    positives, negatives = label.sum(), len(label) - label.sum()
    fn, tn = positives - tp, negatives - fp
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.divide(tp * tn - fp * fn, denominator, out=np.zeros_like(tp), where=denominator > 0)
    # Candidate 0 predicts nothing "yes" (MCC 0): a score with no informative cut answers "no".
    thresholds = np.r_[np.inf, sorted_scores[last_of_level]]
    mcc = np.r_[0.0, mcc]
    best = int(np.argmax(mcc))
    return float(thresholds[best]), float(mcc[best])


# --------------------------------------------------------------------------------------------
# Verifier-based scores
# --------------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: list[str], path) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise BaselineInputError(f"{path}: missing column(s) {missing}; has {list(frame.columns)}")


def mlp_scores(scores_path: str | Path, rows: pd.DataFrame) -> np.ndarray:
    scores = pd.read_parquet(scores_path)
    keys = ["cell_line", "pert", "gene"]
    _require(scores, [*keys, "score"], scores_path)
    joined = rows[keys].merge(scores.drop_duplicates(keys), on=keys, how="left")
    if joined["score"].isna().any():
        first = joined[joined["score"].isna()].iloc[0]
        raise BaselineInputError(
            f"{scores_path}: no MLP score for test row {dict(first[keys])} "
            f"({int(joined['score'].isna().sum())} rows missing)"
        )
    return joined["score"].to_numpy(float)


def pair_lookup(table: pd.DataFrame, rows: pd.DataFrame, value: str, fill: float) -> np.ndarray:
    """Symmetric (gene_a, gene_b) -> value lookup for (pert, gene) rows."""
    forward = table.rename(columns={"gene_a": "pert", "gene_b": "gene"})
    backward = table.rename(columns={"gene_a": "gene", "gene_b": "pert"})
    both = pd.concat([forward, backward]).groupby(["pert", "gene"], observed=True)[value].max()
    joined = rows[["pert", "gene"]].merge(both.reset_index(), on=["pert", "gene"], how="left")
    return joined[value].fillna(fill).to_numpy(float)


def tf_pmi_scores(pmi_path: str | Path, rows: pd.DataFrame) -> np.ndarray:
    import pyarrow.parquet as pq

    names = pq.read_schema(pmi_path).names
    missing = [column for column in ("gene_a", "gene_b", "pmi") if column not in names]
    if missing:
        raise BaselineInputError(f"{pmi_path}: missing column(s) {missing}; has {names}")
    # A TranscriptFormer matrix has ~10^8 pairs: read only those between genes of these rows.
    genes = sorted(set(rows["pert"].astype(str)) | set(rows["gene"].astype(str)))
    table = pd.read_parquet(
        pmi_path, columns=["gene_a", "gene_b", "pmi"], filters=[("gene_a", "in", genes)]
    )
    table = table[table["gene_b"].isin(genes)]
    return pair_lookup(table, rows, "pmi", fill=0.0)


class GoSimilarity:
    """Jaccard similarity of two genes' direct GO term sets."""

    def __init__(self, index_path: str | Path):
        index = pd.read_parquet(index_path)
        _require(index, ["gene", "go_id"], index_path)
        self.terms: dict[str, frozenset[str]] = {
            gene: frozenset(group) for gene, group in index.groupby("gene")["go_id"]
        }

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        pairs = rows[["pert", "gene"]].drop_duplicates()
        values = {}
        empty: frozenset[str] = frozenset()
        for pert, gene in pairs.itertuples(index=False):
            a, b = self.terms.get(pert, empty), self.terms.get(gene, empty)
            union = len(a | b)
            values[(pert, gene)] = len(a & b) / union if union else 0.0
        return np.array([values[key] for key in zip(rows["pert"], rows["gene"], strict=True)])


# --------------------------------------------------------------------------------------------
# All baselines of one split
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineInputs:
    train_parquet: str
    test_parquet: str
    mlp_scores: str | None = None
    tf_pmi: str | None = None
    go_index: str | None = None


def baseline_scores(
    inputs: BaselineInputs, test_lines_are_new: bool
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Test rows with ``<baseline>_score`` / ``<baseline>_predicted`` columns, and thresholds."""
    train = pd.read_parquet(inputs.train_parquet)
    test = pd.read_parquet(inputs.test_parquet).reset_index(drop=True)
    for frame, path in ((train, inputs.train_parquet), (test, inputs.test_parquet)):
        _require(frame, ["cell_line", "pert", "gene", "label"], path)
    train_label = train["label"].to_numpy(int)
    thresholds: dict[str, dict] = {}
    out = test.copy()

    def add(name: str, test_score: np.ndarray, threshold: float, how: str, train_mcc=None):
        out[f"{name}_score"] = test_score
        out[f"{name}_predicted"] = (test_score >= threshold).astype(int)
        thresholds[name] = {
            "threshold": threshold if np.isfinite(threshold) else None,  # None: never "yes"
            "chosen_by": how,
            "train_mcc": train_mcc,
        }

    add("majority", np.zeros(len(test)), np.inf, "always no")
    folds = fold_groups(train, test_lines_are_new)
    oof = out_of_fold_priors(train, folds)
    test_priors = prior_scores(train, test)
    fold_kind = "cell-line" if test_lines_are_new and train.cell_line.nunique() >= 2 else "group"
    for name in PRIOR_BASELINES:
        threshold, mcc = best_mcc_threshold(train_label, oof[name])
        add(name, test_priors[name], threshold, f"max MCC, out-of-fold ({fold_kind} folds)", mcc)

    verifier_scores: dict[str, tuple[Callable[[pd.DataFrame], np.ndarray], bool]] = {}
    if inputs.mlp_scores:
        verifier_scores["mlp_verifier"] = (lambda rows: mlp_scores(inputs.mlp_scores, rows), False)
    if inputs.tf_pmi:
        verifier_scores["tf_pmi"] = (lambda rows: tf_pmi_scores(inputs.tf_pmi, rows), True)
    if inputs.go_index:
        similarity = GoSimilarity(inputs.go_index)
        verifier_scores["go_similarity"] = (similarity, True)
    for name, (score_rows, tune) in verifier_scores.items():
        if tune:
            threshold, mcc = best_mcc_threshold(train_label, score_rows(train))
            add(name, score_rows(test), threshold, "max MCC on training rows", mcc)
        else:
            add(name, score_rows(test), MLP_THRESHOLD, "verifier's own threshold (0.5)")
    return out, thresholds


def evaluate_baselines(
    inputs: BaselineInputs,
    *,
    test_lines_are_new: bool,
    out_dir: str | Path,
    n_bootstrap: int,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """Write ``<out_dir>/<baseline>/metrics.parquet``, ``scores.parquet``, ``thresholds.json``."""
    out_dir = Path(out_dir)
    scores, thresholds = baseline_scores(inputs, test_lines_are_new)
    tables = {}
    for name in thresholds:
        rows = scores.assign(score=scores[f"{name}_score"], predicted=scores[f"{name}_predicted"])
        table = metrics_table(rows, n_bootstrap=n_bootstrap, seed=seed, what=name)
        tables[name] = same_under_every_protocol(table)
        write_parquet(tables[name], out_dir / name / "metrics.parquet")
        summary = table.query("stratum == 'all'").set_index("metric")["value"]
        log.info(
            "%s: F1 %.3f MCC %.3f BA %.3f AUROC/gene %.3f (threshold %s)",
            name, summary["f1"], summary["mcc"], summary["balanced_accuracy"],
            summary["auroc_per_gene"], thresholds[name]["threshold"],
        )  # fmt: skip
    write_parquet(scores, out_dir / "scores.parquet")
    write_json(out_dir / "thresholds.json", thresholds)
    return tables
