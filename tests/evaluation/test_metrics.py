"""Metric maths: hand-computed cases, degenerate inputs, and the bootstrap's weighted form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rbio.evaluation.metrics import (
    METRIC_COLUMNS,
    METRICS,
    STRATA,
    MetricsInputError,
    auroc_per_gene,
    metrics_table,
    point_metrics,
    undefined_reason,
    weighted_metrics,
)


def test_hand_computed_confusion_metrics():
    # 3 TP, 1 FN, 2 FP, 4 TN
    label = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    predicted = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])
    values = point_metrics(label, predicted, predicted.astype(float), np.array(["g"] * 10))
    assert (values["tp"], values["fn"], values["fp"], values["tn"]) == (3, 1, 2, 4)
    assert values["accuracy"] == pytest.approx(0.7)
    assert values["precision"] == pytest.approx(3 / 5)
    assert values["tpr"] == pytest.approx(3 / 4)
    assert values["tnr"] == pytest.approx(4 / 6)
    assert values["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    expected_mcc = (3 * 4 - 2 * 1) / np.sqrt(5 * 4 * 6 * 5)
    assert values["mcc"] == pytest.approx(expected_mcc)
    assert values["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)


def test_hand_computed_auroc_with_ties():
    label = np.array([1, 1, 0, 0])
    score = np.array([0.9, 0.5, 0.5, 0.1])
    # pairs (pos, neg): (0.9 > 0.5), (0.9 > 0.1), (0.5 = 0.5: half), (0.5 > 0.1) -> 3.5 / 4
    values = point_metrics(label, score > 0.6, score, np.array(["g"] * 4))
    assert values["auroc"] == pytest.approx(3.5 / 4)


def test_per_gene_auroc_skips_single_class_genes():
    gene = np.array(["A", "A", "A", "B", "B", "C", "C"])
    label = np.array([1, 0, 0, 1, 0, 0, 0])
    score = np.array([0.9, 0.1, 0.2, 0.1, 0.8, 0.5, 0.6])
    # A: perfect (1.0); B: inverted (0.0); C: one class -> skipped; two genes averaged
    assert auroc_per_gene(label, score, gene) == (pytest.approx(0.5), 2)
    values = point_metrics(label, score > 0.5, score, gene)
    assert values["auroc_per_gene_genes"] == 2


def test_all_no_predictions_give_mcc_zero_not_nan():
    label = np.array([1, 0, 0, 0, 1, 0])
    predicted = np.zeros(6, dtype=int)
    values = point_metrics(label, predicted, np.zeros(6), np.array(["g"] * 6))
    assert values["mcc"] == 0.0
    assert values["precision"] == 0.0
    assert values["f1"] == 0.0
    assert values["tpr"] == 0.0 and values["tnr"] == 1.0
    assert values["balanced_accuracy"] == 0.5
    assert values["auroc"] == 0.5


def test_one_class_only_is_undefined_where_it_must_be():
    label = np.zeros(5, dtype=int)
    predicted = np.array([0, 1, 0, 0, 0])
    values = point_metrics(label, predicted, predicted.astype(float), np.array(["g"] * 5))
    assert np.isnan(values["tpr"]) and np.isnan(values["auroc"])
    assert np.isnan(values["auroc_per_gene"]) and np.isnan(values["balanced_accuracy"])
    # MCC is 0/0 without DE rows: undefined, not the 0 scikit-learn returns
    assert np.isnan(values["mcc"]) and values["tnr"] == pytest.approx(0.8)
    assert undefined_reason("mcc", values) == "no DE row"
    assert undefined_reason("auroc_per_gene", values) == "no gene with both classes"
    assert undefined_reason("tnr", {"tp": 2, "fn": 1, "tn": 0, "fp": 0}) == "no non-DE row"
    assert undefined_reason("mcc", dict.fromkeys(("tp", "fn", "tn", "fp"), 0)) == "no scored row"


def test_empty_rows_give_nan_without_crash():
    values = point_metrics(np.array([]), np.array([]), np.array([]), np.array([]))
    assert all(np.isnan(value) for value in values.values())


def _random_rows(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.2).astype(int)
    score = np.round(rng.random(n) * 0.5 + 0.4 * label, 1)  # rounded: many ties
    return pd.DataFrame(
        {
            "label": label,
            "predicted": (score > 0.5).astype(int),
            "score": score,
            "gene": rng.choice([f"g{i}" for i in range(12)], n),
            "pert": rng.choice([f"p{i}" for i in range(30)], n),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_form_with_unit_weights_equals_sklearn(seed):
    rows = _random_rows(seed)
    expected = point_metrics(rows.label, rows.predicted, rows.score, rows.gene)
    n_perts = rows.pert.nunique()
    got = weighted_metrics(
        rows.label, rows.predicted, rows.score, rows.gene, rows.pert, np.ones(n_perts)
    )
    for metric in METRICS:
        assert got[metric][0] == pytest.approx(expected[metric], nan_ok=True), metric


def test_weighted_form_equals_sklearn_on_an_explicit_resample():
    rows = _random_rows(7)
    perts = pd.unique(rows.pert)
    multiplicity = np.random.default_rng(3).integers(0, 3, len(perts))
    repeated = pd.concat(
        [rows[rows.pert == p] for p, m in zip(perts, multiplicity, strict=True) for _ in range(m)]
    )
    expected = point_metrics(repeated.label, repeated.predicted, repeated.score, repeated.gene)
    got = weighted_metrics(
        rows.label, rows.predicted, rows.score, rows.gene, rows.pert, multiplicity
    )
    for metric in METRICS:
        assert got[metric][0] == pytest.approx(expected[metric], nan_ok=True), metric
    assert expected["auroc"] == pytest.approx(roc_auc_score(repeated.label, repeated.score))


def _table_input():
    rows = _random_rows(11)
    rows["pair_seen_elsewhere"] = rows.index % 3 == 0
    rows["pert_seen_elsewhere"] = True
    rows["unparseable"] = rows.index % 5 == 0
    return rows


def test_metrics_table_schema_strata_and_seeded_cis():
    rows = _table_input()
    table = metrics_table(rows, n_bootstrap=100, seed=1, rate_columns=("unparseable",))
    assert list(table.columns) == list(METRIC_COLUMNS)
    assert set(table.stratum) == set(STRATA)
    assert set(table.metric) == set(METRICS) | {"unparseable", "coverage"}
    assert set(table.protocol) == {"conservative"}
    assert (table.query("metric == 'coverage' and n > 0").value == 1.0).all()
    empty = table[table.stratum == "pert_seen_elsewhere=False"]
    assert (empty.n == 0).all() and empty.value.isna().all()
    f1 = table[(table.metric == "f1") & (table.stratum == "all")].iloc[0]
    assert f1.ci_low <= f1.value <= f1.ci_high and f1.ci_low < f1.ci_high
    unparseable = table[(table.metric == "unparseable") & (table.stratum == "all")].iloc[0]
    assert unparseable.value == pytest.approx(rows.unparseable.mean())
    again = metrics_table(rows, n_bootstrap=100, seed=1, rate_columns=("unparseable",))
    pd.testing.assert_frame_equal(table, again)
    other = metrics_table(rows, n_bootstrap=100, seed=2, rate_columns=("unparseable",))
    assert not np.allclose(table.ci_low.fillna(-1), other.ci_low.fillna(-1))


def test_metrics_table_without_bootstrap_has_nan_cis():
    table = metrics_table(_table_input(), n_bootstrap=0, seed=0)
    assert table.ci_low.isna().all() and table.value.notna().any()


def test_metrics_table_names_missing_columns():
    with pytest.raises(MetricsInputError, match="pair_seen_elsewhere"):
        metrics_table(_random_rows(0), n_bootstrap=0, seed=0, what="my.parquet")


def test_bootstrap_counts_the_resamples_where_a_metric_is_undefined():
    """A stratum whose DE rows sit in one perturbation of ten: a resample that misses it has no
    DE row, so MCC and TPR are undefined there; those draws are counted, not silently dropped."""
    n = 200
    pert = np.repeat([f"p{i}" for i in range(10)], n // 10)
    label = (pert == "p0").astype(int) * (np.arange(n) % 2)
    rows = pd.DataFrame(
        {
            "label": label,
            "predicted": label,
            "score": label.astype(float),
            "gene": np.array(["A", "B"])[np.arange(n) % 2],
            "pert": pert,
            "pair_seen_elsewhere": True,
            "pert_seen_elsewhere": True,
        }
    )
    table = metrics_table(rows, n_bootstrap=200, seed=0).query("stratum == 'all'")
    table = table.set_index("metric")
    # P(p0 not drawn in 10 draws of 10) = 0.9**10 ~ 0.35: about 70 of 200
    assert 40 < table.at["mcc", "undefined_resamples"] < 100
    assert table.at["tpr", "undefined_resamples"] == table.at["mcc", "undefined_resamples"]
    assert table.at["tnr", "undefined_resamples"] == 0  # every perturbation has non-DE rows
    assert (table.drop(index="coverage")["resamples"] == 200).all()  # coverage: no bootstrap
    assert table.at["mcc", "value"] == 1.0 and table.at["mcc", "ci_low"] == 1.0
