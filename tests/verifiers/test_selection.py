"""Nested selection of the MLP verifier's settings: the held-out line never reaches the choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rbio.verifiers import embeddings as emb
from rbio.verifiers import mlp, selection

LINES = ("a", "b", "c", "d")


def _rows(line: str, split: str, rng: np.random.Generator) -> pd.DataFrame:
    """Synthetic rows: a gene is DE under a perturbation when their hidden factors agree."""
    perts = [f"P{i}" for i in range(12)]
    genes = [f"G{i}" for i in range(15)]
    frame = pd.DataFrame(
        [(line, p, g, split) for p in perts for g in genes],
        columns=["cell_line", "pert", "gene", "split"],
    )
    factor = {name: int(name[1:]) % 3 for name in perts + genes}
    agree = frame["pert"].map(factor) == frame["gene"].map(factor)
    frame["label"] = (agree & (rng.random(len(frame)) < 0.8)).astype(int)
    return frame


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    train = pd.concat([_rows(line, "train", rng) for line in LINES[1:]], ignore_index=True)
    test = _rows("a", "test", rng).assign(pair_seen_elsewhere=True)
    return train, test


@pytest.fixture(scope="module")
def grid(split):
    train, _ = split
    genes = sorted(set(train["pert"]) | set(train["gene"]))
    vectors = np.random.default_rng(1).normal(size=(len(genes), 4)).astype("f4")
    embedding = emb.GeneEmbedding("go_svd", tuple(genes), vectors)
    return [
        selection.Candidate(f"{epochs}ep", embedding, mlp.MlpSettings(hidden=8, epochs=epochs))
        for epochs in (1, 2)
    ]


def test_inner_line_is_the_next_training_line():
    assert [selection.inner_validation_line(LINES, line) for line in LINES] == ["b", "c", "d", "a"]
    with pytest.raises(ValueError, match="outer line"):
        selection.inner_validation_line(LINES, "e")


def test_choose_takes_the_best_and_breaks_ties_by_order():
    scores = pd.DataFrame({"candidate": ["x", "y", "z"], "auroc_per_gene": [0.6, 0.7, 0.7]})
    assert selection.choose(scores) == "y"
    with_nan = pd.DataFrame({"candidate": ["x", "y"], "auroc_per_gene": [float("nan"), 0.5]})
    assert selection.choose(with_nan) == "y"
    with pytest.raises(ValueError, match="no candidate"):
        selection.choose(with_nan.assign(auroc_per_gene=float("nan")))


def test_selection_never_sees_the_held_out_rows(split, grid, monkeypatch):
    train, test = split
    calls = []
    real = mlp.train_verifier

    def spy(fit_rows, scored_rows, embedding, settings):
        calls.append((set(fit_rows["cell_line"]), set(scored_rows["cell_line"])))
        return real(fit_rows, scored_rows, embedding, settings)

    monkeypatch.setattr(mlp, "train_verifier", spy)
    result = selection.nested_selection(train, test, ["b"], grid)
    # One fit per candidate on the other training lines, scored on the inner line ...
    assert calls[:-1] == [({"c", "d"}, {"b"})] * len(grid)
    # ... and only the refit on all training lines scores the held-out line.
    assert calls[-1] == ({"b", "c", "d"}, {"a"})
    assert result.chosen in {candidate.name for candidate in grid}
    assert list(result.inner_scores["candidate"]) == [candidate.name for candidate in grid]
    assert 0.0 <= result.metrics["all"]["auroc_per_gene"] <= 1.0


def test_held_out_rows_among_training_rows_are_refused(split, grid):
    train, test = split
    with pytest.raises(ValueError, match="held-out line"):
        selection.nested_selection(pd.concat([train, test]), test, ["b"], grid)


def test_leave_one_line_out_inside_the_training_lines(split, grid, monkeypatch):
    train, test = split
    calls = []
    real = mlp.train_verifier

    def spy(fit_rows, scored_rows, embedding, settings):
        calls.append(set(scored_rows["cell_line"]))
        assert "a" not in set(fit_rows["cell_line"])
        return real(fit_rows, scored_rows, embedding, settings)

    monkeypatch.setattr(mlp, "train_verifier", spy)
    result = selection.nested_selection(train, test, ["b", "c", "d"], grid)
    assert calls == [{"b"}, {"b"}, {"c"}, {"c"}, {"d"}, {"d"}, {"a"}]
    assert len(result.inner_scores) == 3 * len(grid)
