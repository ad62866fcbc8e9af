"""PMI: expression backend on scanpy's bundled data, the gene-logit arithmetic, the questions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rbio.verifiers import pmi


def test_expression_pmi_on_pbmc68k_reduced():
    adata = pmi.load_expression(None)
    matrix = pmi.expression_pmi(adata)
    n = len(matrix.genes)
    assert n > 100 and matrix.values.shape == (n, n)
    np.testing.assert_allclose(matrix.values, matrix.values.T)
    pairs = pmi.pmi_pairs(matrix)
    assert len(pairs) == n * (n - 1) // 2
    # Marker genes of one cell type co-occur: CD79A/CD79B (B cells) beat CD79A with a T cell gene.
    value = dict(zip(zip(pairs["gene_a"], pairs["gene_b"], strict=True), pairs["pmi"], strict=True))

    def lookup(a, b):
        return value.get((a, b), value.get((b, a)))

    assert lookup("CD79A", "CD79B") > lookup("CD79A", "CD3D")


def test_expression_pmi_counts_by_hand():
    import anndata

    detected = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=np.float32)
    adata = anndata.AnnData(detected)
    adata.var_names = ["A", "B", "C"]
    matrix = pmi.expression_pmi(adata, min_cells=1, max_detection=1.0, pseudocount=0.0)
    # P(A,B) = 2/4, P(A) = 3/4, P(B) = 2/4 -> log(0.5 / 0.375)
    index = {g: i for i, g in enumerate(matrix.genes)}
    assert matrix.values[index["A"], index["B"]] == pytest.approx(np.log(0.5 / 0.375))
    restricted = pmi.expression_pmi(adata, genes=["A", "C"], min_cells=1, max_detection=1.0)
    assert restricted.genes == ("A", "C")


class StandInGeneHead:
    """A stand-in with TranscriptFormer's gene-head interface: (tokens, counts) -> logits.

    Position 0 (empty context) always predicts the fixed ``marginal`` logits; position 1 adds
    ``affinity[token at position 0]``, so PMI(A, B) = log_softmax(m + W[A])[B] - log_softmax(m)[B].
    """

    def __init__(self, vocab: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.marginal = torch.randn(vocab, generator=generator)
        self.affinity = torch.randn(vocab, vocab, generator=generator)

    def __call__(self, tokens, counts):
        first = self.marginal.expand(len(tokens), -1)
        second = self.marginal + self.affinity[tokens[:, 0]]
        return torch.stack([first, second], dim=1)


def test_pmi_from_gene_logits_matches_definition():
    head = StandInGeneHead(vocab=12)
    ids = [3, 5, 7, 11]
    values = pmi.pmi_from_gene_logits(head, ids, batch_size=3)
    marginal = torch.log_softmax(head.marginal, dim=0)
    for i, a in enumerate(ids):
        conditional = torch.log_softmax(head.marginal + head.affinity[a], dim=0)
        for j, b in enumerate(ids):
            expected = 0.0 if i == j else float(conditional[b] - marginal[b])
            assert values[i, j] == pytest.approx(expected, abs=1e-5)
    asymmetric = pmi.PmiMatrix(("a", "b", "c", "d"), values, symmetric=False)
    assert len(pmi.pmi_pairs(asymmetric)) == 12


def test_vocab_genes_maps_symbols_and_skips_special_tokens():
    vocab = {"[PAD]": 0, "[START]": 1, "unknown": 2, "ENSG1": 3, "ENSG2": 4, "ENSG3": 5}
    special = ("[PAD]", "[START]", "unknown")
    assert pmi.vocab_genes(vocab, special, None) == [("ENSG1", 3), ("ENSG2", 4), ("ENSG3", 5)]
    mapping = {"B": "ENSG2", "A": "ENSG1", "X": "ENSG9"}
    chosen = pmi.vocab_genes(vocab, special, ["B", "A", "X", "[PAD]", "unknown", "ENSG3"], mapping)
    assert chosen == [("A", 3), ("B", 4), ("ENSG3", 5)]


def test_symbol_to_ensembl_on_the_ncbi_table(data_dir):
    from rbio.verifiers.go import LOCAL_GENES

    mapping = pmi.symbol_to_ensembl(data_dir / LOCAL_GENES[0])
    assert mapping["A1BG"] == "ENSG00000121410"
    # 19,447 symbols with an Ensembl id, less the 26 whose id another symbol shares.
    assert len(mapping) == 19421
    assert len(set(mapping.values())) == len(mapping)


def test_questions_top_bottom_and_confidence():
    rng = np.random.default_rng(0)
    pairs = pd.DataFrame(
        {
            "gene_a": [f"g{i}" for i in range(1000)],
            "gene_b": [f"h{i}" for i in range(1000)],
            "pmi": rng.normal(0.5, 1.0, 1000),
        }
    )
    questions, report = pmi.questions_from_pmi(pairs, top_fraction=0.05)
    assert list(questions.columns) == list(pmi.QUESTION_COLUMNS)
    yes = questions[questions["label"] == 1]
    no = questions[questions["label"] == 0]
    assert len(yes) == 50 and len(no) == 50
    assert yes["pmi"].min() >= pairs["pmi"].quantile(0.95) - 1e-9
    assert (no["pmi"] <= 0).all() and no["pmi"].max() <= pairs["pmi"].quantile(0.05) + 1e-9
    assert (yes["confidence"] >= 0.5).all() and (no["confidence"] < 0.5).all()
    cutoff_row = yes.loc[yes["pmi"].idxmin()]
    assert cutoff_row["confidence"] == pytest.approx(0.5)
    assert questions["confidence"].max() == pytest.approx(1.0)
    assert report["yes_pmi_cutoff"] == pytest.approx(yes["pmi"].min())
    with pytest.raises(ValueError, match="top_fraction"):
        pmi.questions_from_pmi(pairs, top_fraction=0.7)
