"""MLP verifier: trained only on the split's training lines, deterministic, sane on real rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rbio.verifiers import embeddings as emb
from rbio.verifiers import mlp

LINES = ("k562", "rpe1", "hepg2", "jurkat")


@pytest.fixture(scope="module")
def small_loco(data_dir):
    """A loco_k562-shaped split from the real tables: 60 perts per line, same columns."""
    frames = []
    for line in LINES:
        table = pd.read_csv(data_dir / "perturbqa" / f"{line}-de.csv")
        perts = sorted(table["pert"].unique())[:: max(1, table["pert"].nunique() // 60)][:60]
        frames.append(table[table["pert"].isin(perts)].assign(cell_line=line))
    rows = pd.concat(frames, ignore_index=True)
    train = rows[(rows["cell_line"] != "k562") & (rows["split"] == "train")].reset_index(drop=True)
    test = rows[(rows["cell_line"] == "k562") & (rows["split"] == "test")].reset_index(drop=True)
    pairs = pd.MultiIndex.from_frame(train[["pert", "gene"]])
    test["pair_seen_elsewhere"] = pd.MultiIndex.from_frame(test[["pert", "gene"]]).isin(pairs)
    return train, test


@pytest.fixture(scope="module")
def small_embedding(small_loco):
    train, test = small_loco
    genes = sorted(set(train["pert"]) | set(train["gene"]) | set(test["pert"]) | set(test["gene"]))
    rng = np.random.default_rng(0)
    known = genes[: int(0.9 * len(genes))]  # the rest exercise the missing-embedding path
    return emb.GeneEmbedding("go_svd", tuple(known), rng.normal(size=(len(known), 8)).astype("f4"))


SETTINGS = mlp.MlpSettings(hidden=16, epochs=2, batch_size=32, seed=7)


def test_features_of_training_rows_never_use_their_own_line(small_loco):
    train, _ = small_loco
    features = mlp.out_of_fold_features(train, seed=0)
    for line in train["cell_line"].unique():
        held = (train["cell_line"] == line).to_numpy()
        np.testing.assert_array_equal(features[held], mlp.pair_features(train[~held], train[held]))


def test_pair_features_see_reference_labels_only(small_loco):
    train, test = small_loco
    base = mlp.pair_features(train, test)
    # Test labels are not an input: flipping them changes nothing.
    flipped = mlp.pair_features(train, test.assign(label=1 - test["label"]))
    np.testing.assert_array_equal(base, flipped)
    assert base.shape == (len(test), mlp.N_PAIR_FEATURES)
    assert np.isfinite(base).all()


def test_training_refuses_held_out_line(small_loco):
    train, test = small_loco
    with pytest.raises(ValueError, match=r"held-out line\(s\) \['k562'\]"):
        mlp.check_training_lines(pd.concat([train, test]), ["k562"], "loco_k562")
    mlp.check_training_lines(train, ["k562"], "loco_k562")
    assert "k562" not in set(train["cell_line"])


def test_same_seed_same_weights_and_scores(small_loco, small_embedding):
    train, test = small_loco
    first = mlp.train_verifier(train, test, small_embedding, SETTINGS)
    again = mlp.train_verifier(train, test, small_embedding, SETTINGS)
    for name, tensor in first.model.state_dict().items():
        assert np.array_equal(tensor.numpy(), again.model.state_dict()[name].numpy()), name
    np.testing.assert_array_equal(first.test_scores, again.test_scores)
    np.testing.assert_array_equal(first.train_scores, again.train_scores)
    other = mlp.train_verifier(
        train, test, small_embedding, mlp.MlpSettings(**{**SETTINGS.__dict__, "seed": 8})
    )
    assert not np.array_equal(first.test_scores, other.test_scores)


def test_outputs_and_metrics(small_loco, small_embedding, tmp_path):
    train, test = small_loco
    trained = mlp.train_verifier(train, test, small_embedding, SETTINGS)
    assert ((trained.test_scores >= 0) & (trained.test_scores <= 1)).all()
    paths = {k: tmp_path / f"{k}.{ext}" for k, ext in
             [("model", "safetensors"), ("config", "json"), ("scores", "parquet"), ("metrics", "json")]}  # fmt: skip
    out = mlp.VerifierFiles(**paths)
    metrics = mlp.save_verifier(
        trained, small_embedding, "e.safetensors", "loco_k562", (train, test), out
    )
    scores = mlp.load_scores(paths["scores"])
    assert len(scores) == len(train) + len(test)
    assert list(scores.columns[:4]) == list(mlp.SCORE_COLUMNS)
    assert json.loads(paths["metrics"].read_text())["all"]["n"] == len(test)
    assert json.loads(paths["config"].read_text())["training_lines"] == ["hepg2", "jurkat", "rpe1"]
    for stratum in mlp.STRATA:
        assert {"auroc", "auroc_per_gene", "tpr", "tnr", "precision", "f1", "mcc"} <= set(
            metrics[stratum]
        )
    # A frequency prior alone gives ~0.9 on the full data; even this small model must beat chance.
    assert metrics["all"]["auroc"] > 0.75


def test_onehot_embedding_trains(small_loco):
    train, test = small_loco
    genes = set(train["pert"]) | set(train["gene"]) | set(test["pert"]) | set(test["gene"])
    trained = mlp.train_verifier(train, test, emb.onehot_embedding(genes), SETTINGS)
    assert np.isfinite(trained.test_scores).all()


def test_bad_rows_are_named(small_loco, small_embedding):
    train, test = small_loco
    with pytest.raises(ValueError, match="training rows: missing column"):
        mlp.train_verifier(train.drop(columns=["label"]), test, small_embedding, SETTINGS)
    with pytest.raises(ValueError, match="label not 0/1 at row 0"):
        mlp.train_verifier(train.assign(label=2), test, small_embedding, SETTINGS)
