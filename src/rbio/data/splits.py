"""Train/test splits: leave-one-cell-line-out, single line, all lines, with leak annotations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd

from rbio.config import split_lines


class Split(NamedTuple):
    """One split's rows: training, test, held-out validation (training lines), and its report."""

    train: pd.DataFrame
    test: pd.DataFrame
    validation: pd.DataFrame
    report: dict


def make_split(
    table: pd.DataFrame,
    split: str,
    cell_lines: list[str] | tuple[str, ...],
    max_test_rows: int | None = None,
    seed: int = 0,
    gene_panel: int | None = None,
    validation_rows: int | None = None,
) -> Split:
    """Train, test and validation rows and the leak report of one split of the tidy table.

    Training rows are the training lines' PerturbQA ``train`` rows; test rows are the test lines'
    ``test`` rows, annotated with whether their (pert, gene) pair and their perturbation occur among
    the training rows, so evaluation can tell transfer from memorisation. ``max_test_rows`` keeps
    a seeded subsample stratified by cell line and label (small presets).

    ``gene_panel`` (small presets) restricts train and test rows to a seeded panel of that many
    monitored genes (``panel_genes``), so a small model sees each of them many times and every
    test gene has a per-gene AUROC; the test subsample then also keeps each gene's two classes.
    """
    train_lines, test_lines = split_lines(split, cell_lines)
    missing = sorted(set(train_lines + test_lines) - set(table["cell_line"].unique()))
    if missing:
        raise ValueError(
            f"split '{split}' needs cell line(s) {missing}, absent from the ingest table"
        )
    train = table[table["cell_line"].isin(train_lines) & (table["split"] == "train")].reset_index(
        drop=True
    )
    test = table[table["cell_line"].isin(test_lines) & (table["split"] == "test")].reset_index(
        drop=True
    )
    all_test_rows = len(test)
    strata = ["cell_line", "label"]
    panel: list[str] | None = None
    if gene_panel is not None:
        panel = panel_genes(test, gene_panel, seed)
        train = train[train["gene"].isin(panel)].reset_index(drop=True)
        test = test[test["gene"].isin(panel)].reset_index(drop=True)
        strata = ["cell_line", "gene", "label"]
    train, validation = hold_out(train, validation_rows, seed)

    # "Seen" against the training rows the split keeps (with a panel: the panel's rows).
    train_pairs = pd.MultiIndex.from_frame(train[["pert", "gene"]].astype(str))
    test_pairs = pd.MultiIndex.from_frame(test[["pert", "gene"]].astype(str))
    test["pair_seen_elsewhere"] = test_pairs.isin(train_pairs)
    test["pert_seen_elsewhere"] = test["pert"].isin(set(train["pert"]))
    if max_test_rows is not None and len(test) > max_test_rows:
        test = subsample_stratified(test, strata, max_test_rows, seed)

    report = {
        "split": split,
        "train_lines": train_lines,
        "test_lines": test_lines,
        "test_rows_before_subsampling": all_test_rows,
        "gene_panel": panel,
        "validation_rows": len(validation),
        **leak_counts(train, test, test_lines),
    }
    return Split(train, test, validation, report)


def leak_counts(train: pd.DataFrame, test: pd.DataFrame, test_lines: Sequence[str]) -> dict:
    """Row counts, class shares and how many test rows' pairs and perturbations training saw
    (also per test line)."""
    report = {
        "train_rows": len(train),
        "test_rows": len(test),
        "train_positive_rate": round(float(train["label"].mean()), 4) if len(train) else None,
        "test_positive_rate": round(float(test["label"].mean()), 4) if len(test) else None,
        "test_rows_pair_seen_elsewhere": int(test["pair_seen_elsewhere"].sum()),
        "test_rows_pert_seen_elsewhere": int(test["pert_seen_elsewhere"].sum()),
        "test_perts": int(test["pert"].nunique()),
        "test_perts_seen_elsewhere": int(test.loc[test["pert_seen_elsewhere"], "pert"].nunique()),
        # Same-line leakage would make the test set meaningless: PerturbQA splits by perturbation.
        "same_line_pert_overlap": _same_line_pert_overlap(train, test),
    }
    for line in test_lines:
        rows = test[test["cell_line"] == line]
        report.setdefault("per_test_line", {})[line] = {
            "test_rows": len(rows),
            "pair_seen_elsewhere": int(rows["pair_seen_elsewhere"].sum()),
            "pert_seen_elsewhere": int(rows["pert_seen_elsewhere"].sum()),
        }
    return report


def hold_out(train: pd.DataFrame, rows: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows left, about ``rows`` validation rows drawn stratified by line and label)."""
    if not rows:
        return train, train.iloc[:0]
    held_out = train.index.isin(stratified_draw(train, ["cell_line", "label"], rows, seed))
    return train[~held_out].reset_index(drop=True), train[held_out].reset_index(drop=True)


# A panel gene has at least this many test rows: per-gene AUROC needs several perturbations.
MIN_PANEL_TEST_ROWS = 4


def panel_genes(test: pd.DataFrame, size: int, seed: int) -> list[str]:
    """A seeded draw of ``size`` monitored genes whose test rows number at least
    MIN_PANEL_TEST_ROWS and hold both classes (per-gene AUROC is defined for each); sorted.

    The draw reads the test labels only to know which genes *can* be scored per gene; which of
    them are drawn is chance, and training never sees a test label.
    """
    counts = test.groupby("gene", observed=True)["label"].agg(["size", "sum"])
    scorable = counts[
        (counts["size"] >= MIN_PANEL_TEST_ROWS)
        & (counts["sum"] > 0)
        & (counts["sum"] < counts["size"])
    ].index
    candidates = sorted(map(str, scorable))
    if len(candidates) < size:
        raise ValueError(
            f"splits.gene_panel: {size} genes asked, but only {len(candidates)} monitored genes "
            f"have >= {MIN_PANEL_TEST_ROWS} test rows with both classes"
        )
    chosen = pd.Series(candidates).sample(n=size, random_state=seed)
    return sorted(chosen)


def _same_line_pert_overlap(train: pd.DataFrame, test: pd.DataFrame) -> int:
    train_keys = set(zip(train["cell_line"], train["pert"], strict=True))
    return sum(
        (line, pert) in train_keys
        for line, pert in set(zip(test["cell_line"], test["pert"], strict=True))
    )


def stratified_draw(frame: pd.DataFrame, by: list[str], limit: int, seed: int) -> pd.Index:
    """The index of about ``limit`` rows keeping each group's share (every non-empty group keeps
    >= 1 row), sorted."""
    fraction = min(1.0, limit / len(frame)) if len(frame) else 0.0
    parts = [
        group.sample(n=max(1, round(len(group) * fraction)), random_state=seed).index
        for _, group in frame.groupby(by, sort=True, observed=True)
    ]
    return parts[0].append(parts[1:]).sort_values() if parts else frame.index[:0]


def subsample_stratified(frame: pd.DataFrame, by: list[str], limit: int, seed: int) -> pd.DataFrame:
    """About ``limit`` rows keeping each group's share (every non-empty group keeps >= 1 row)."""
    return frame.loc[stratified_draw(frame, by, limit, seed)].reset_index(drop=True)
