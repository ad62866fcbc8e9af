"""Baselines: priors by hand, out-of-fold thresholds, verifier lookups, one split end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rbio.evaluation.baselines import (
    BASELINES,
    SMOOTHING,
    BaselineInputError,
    BaselineInputs,
    GoSimilarity,
    best_mcc_threshold,
    evaluate_baselines,
    fold_groups,
    prior_scores,
    tf_pmi_scores,
)
from rbio.evaluation.metrics import METRIC_COLUMNS, PROTOCOLS


def _rows(records):
    return pd.DataFrame(records, columns=["cell_line", "pert", "gene", "label"])


def test_priors_by_hand():
    train = _rows(
        [
            ("a", "P1", "G1", 1),
            ("a", "P2", "G1", 1),
            ("a", "P1", "G2", 0),
            ("b", "P1", "G1", 0),
        ]
    )
    target = _rows([("c", "P1", "G1", 0), ("c", "P9", "G9", 0)])
    scores = prior_scores(train, target)
    overall = 2 / 4
    assert scores["gene_prior"][0] == pytest.approx((2 + SMOOTHING * overall) / (3 + SMOOTHING))
    assert scores["pert_prior"][0] == pytest.approx((1 + SMOOTHING * overall) / (3 + SMOOTHING))
    # unseen gene and perturbation: the overall rate
    assert scores["gene_prior"][1] == pytest.approx(overall)
    assert scores["pair_prior"][1] == pytest.approx(overall)
    # pair P1-G1 seen twice (1 of 2 DE), backing off to the independent-odds combination
    gene, pert = scores["gene_prior"][0], scores["pert_prior"][0]
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    backoff = 1 / (1 + np.exp(-(logit(gene) + logit(pert) - logit(overall))))
    assert scores["pair_prior"][0] == pytest.approx((1 + SMOOTHING * backoff) / (2 + SMOOTHING))


def test_best_mcc_threshold_separates_perfectly_separable_scores():
    label = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    threshold, mcc = best_mcc_threshold(label, score)
    assert threshold == pytest.approx(0.7) and mcc == pytest.approx(1.0)


def test_best_mcc_threshold_of_a_constant_score_is_harmless():
    threshold, mcc = best_mcc_threshold(np.array([0, 1, 0]), np.zeros(3))
    assert mcc == 0.0 and threshold == np.inf  # no informative cut: answer "no"


def test_folds_hold_out_lines_for_loco_and_groups_otherwise():
    train = _rows([(line, f"P{i}", "G", 0) for line in "abc" for i in range(20)])
    by_line = fold_groups(train, test_lines_are_new=True)
    assert len(set(by_line)) == 3
    assert all(len(set(by_line[train.cell_line == line])) == 1 for line in "abc")
    by_group = fold_groups(train, test_lines_are_new=False)
    assert len(set(by_group)) == 5
    one_line = train[train.cell_line == "a"]
    assert len(set(fold_groups(one_line, test_lines_are_new=True))) == 5  # one line: groups


def test_tf_pmi_lookup_is_symmetric_and_fills_zero(tmp_path):
    path = tmp_path / "pmi.parquet"
    pd.DataFrame({"gene_a": ["G1"], "gene_b": ["P1"], "pmi": [2.5]}).to_parquet(path)
    rows = _rows([("a", "P1", "G1", 1), ("a", "P2", "G1", 0)])
    assert tf_pmi_scores(path, rows).tolist() == [2.5, 0.0]
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(BaselineInputError, match="pmi.parquet: missing column"):
        tf_pmi_scores(path, rows)


def test_go_similarity_is_jaccard(tmp_path):
    path = tmp_path / "index.parquet"
    pd.DataFrame(
        {
            "gene": ["P1", "P1", "G1", "G1", "G1"],
            "aspect": ["C", "F", "C", "F", "P"],
            "go_id": ["GO:1", "GO:2", "GO:1", "GO:2", "GO:3"],
            "go_name": ["a", "b", "a", "b", "c"],
        }
    ).to_parquet(path)
    rows = _rows([("a", "P1", "G1", 1), ("a", "P1", "NOGO", 0)])
    assert GoSimilarity(path)(rows).tolist() == [pytest.approx(2 / 3), 0.0]


def _split(tmp_path, n_genes=30, n_perts=40):
    """Three training lines and a new test line; gene DE propensity shared across lines."""
    rng = np.random.default_rng(0)
    propensity = rng.beta(0.5, 3, n_genes)
    records = []
    for line in ["a", "b", "c", "test"]:
        for p in range(n_perts):
            for g in rng.choice(n_genes, 10, replace=False):
                label = int(rng.random() < propensity[g])
                records.append((line, f"P{p}", f"G{g}", label))
    table = _rows(records)
    train = table[table.cell_line != "test"].assign(split="train")
    test = table[table.cell_line == "test"].assign(split="test")
    test["pair_seen_elsewhere"] = pd.MultiIndex.from_frame(test[["pert", "gene"]]).isin(
        pd.MultiIndex.from_frame(train[["pert", "gene"]])
    )
    test["pert_seen_elsewhere"] = True
    paths = {name: tmp_path / f"{name}.parquet" for name in ("train", "test", "mlp", "pmi", "go")}
    train.to_parquet(paths["train"])
    test.to_parquet(paths["test"])
    mlp = pd.concat([train, test])[["cell_line", "pert", "gene"]].assign(score=0.4)
    mlp.to_parquet(paths["mlp"])
    pd.DataFrame({"gene_a": ["P1"], "gene_b": ["G1"], "pmi": [1.0]}).to_parquet(paths["pmi"])
    pd.DataFrame({"gene": ["P1", "G1"], "aspect": "C", "go_id": "GO:1", "go_name": "x"}).to_parquet(
        paths["go"]
    )
    return paths


def test_evaluate_baselines_writes_every_baseline(tmp_path):
    paths = _split(tmp_path)
    inputs = BaselineInputs(
        str(paths["train"]), str(paths["test"]), str(paths["mlp"]), str(paths["pmi"]),
        str(paths["go"]),
    )  # fmt: skip
    out = tmp_path / "eval" / "baselines" / "loco_test"
    tables = evaluate_baselines(
        inputs, test_lines_are_new=True, out_dir=out, n_bootstrap=10, seed=0
    )
    assert set(tables) == set(BASELINES)
    for name in BASELINES:
        table = pd.read_parquet(out / name / "metrics.parquet")
        assert list(table.columns) == list(METRIC_COLUMNS)
        # A baseline reads no answer: both protocols keep every row and agree.
        conservative, strict = (
            table[table.protocol == p].drop(columns="protocol") for p in PROTOCOLS
        )
        pd.testing.assert_frame_equal(
            conservative.reset_index(drop=True), strict.reset_index(drop=True)
        )
        assert (table.query("metric == 'coverage' and n > 0").value == 1.0).all()
    value = {
        name: table.query("stratum == 'all' and protocol == 'strict'").set_index("metric")["value"]
        for name, table in tables.items()
    }
    assert value["majority"]["mcc"] == 0.0 and value["majority"]["tnr"] == 1.0
    assert value["gene_prior"]["mcc"] > 0.3  # the shared propensity is learnable
    assert value["gene_prior"]["auroc_per_gene"] == pytest.approx(0.5)
    assert value["mlp_verifier"]["tpr"] == 0.0  # 0.4 < the verifier's 0.5
    thresholds = json.loads((out / "thresholds.json").read_text())  # strict JSON: no Infinity
    assert thresholds["majority"]["threshold"] is None
    assert (out / "scores.parquet").is_file()


def test_missing_mlp_score_names_the_row(tmp_path):
    paths = _split(tmp_path)
    pd.read_parquet(paths["mlp"]).iloc[:-1].to_parquet(paths["mlp"])
    inputs = BaselineInputs(str(paths["train"]), str(paths["test"]), mlp_scores=str(paths["mlp"]))
    with pytest.raises(BaselineInputError, match="no MLP score for test row"):
        evaluate_baselines(inputs, test_lines_are_new=True, out_dir=tmp_path, n_bootstrap=0, seed=0)
