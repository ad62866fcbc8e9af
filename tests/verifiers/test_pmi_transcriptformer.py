"""The TF PMI backend against the real ``transcriptformer`` package (its own environment:
``make test-transcriptformer``). A tiny random model built from the package's config dataclasses
is saved as the released checkpoints are laid out; PMI from ``transcriptformer_pmi`` (the code path
of the precompute_tf_pmi rule, on the CPU) must equal PMI from the package's own forward pass and
gene-id loss."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("transcriptformer", reason="transcriptformer's environment: .venv-tf")

import h5py  # noqa: E402
import torch  # noqa: E402
from transcriptformer.data.dataclasses import (  # noqa: E402
    BatchData,
    DataConfig,
    LossConfig,
    ModelConfig,
)
from transcriptformer.model.model import Transcriptformer  # noqa: E402
from transcriptformer.tokenizer.vocab import SPECIAL_TOKENS, construct_gene_embeddings  # noqa: E402

from rbio.config import TfPmiConfig  # noqa: E402
from rbio.verifiers import pmi, stages  # noqa: E402

pytestmark = pytest.mark.transcriptformer

GENES = [f"ENSG{i:011d}" for i in range(1, 11)]
SYMBOLS = {f"G{i}": gene for i, gene in enumerate(GENES, start=1)}
ESM2_FILE = "homo_sapiens_gene.h5"
# seq_len + aux_len fills two blocks: the reference below pads a cell to seq_len as the package's
# data loader does, while the code under test pads its 2-gene prompts to one block.
SEQ_LEN, AUX_LEN, BLOCK_LEN = 31, 1, 16


def _configs(gene_id_loss_weight: float) -> tuple[DataConfig, ModelConfig, LossConfig]:
    data = DataConfig(
        aux_vocab_path="vocabs",
        pin_memory=False,
        aux_cols="assay",
        gene_col_name="ensembl_id",
        clip_counts=30,
        filter_to_vocabs=True,
        filter_outliers=0.0,
        pad_zeros=True,
        normalize_to_scale=0,
        n_data_workers=0,
        sort_genes=False,
        randomize_genes=False,
        min_expressed_genes=0,
        gene_pad_token="[PAD]",
        aux_pad_token="unknown",
        esm2_mappings=[ESM2_FILE],
        special_tokens=list(SPECIAL_TOKENS),
        esm2_mappings_path="vocabs",
    )
    model = ModelConfig(
        log_counts_eps=1e-6,
        num_heads=2,
        num_layers=2,
        model_dim=16,
        embed_dim=8,
        dropout=0.0,
        activation="gelu",
        attn_bias=False,
        fw_bias=False,
        mu_link_fn="softmax",
        softcap=10,
        seq_len=SEQ_LEN,
        aux_len=AUX_LEN,
        block_len=BLOCK_LEN,
        gene_head_hidden_dim=16,
        use_aux=True,
        compile_block_mask=False,
    )
    return data, model, LossConfig(gene_id_loss_weight=gene_id_loss_weight)


def write_checkpoint(folder, gene_id_loss_weight: float = 1.0, seed: int = 0) -> Transcriptformer:
    """A random tiny model saved as config.json, model_weights.pt and vocabs/ (ESM-2 mapping h5
    and assay_vocab.json), the layout of the released tarballs; returns the model."""
    vocabs = folder / "vocabs"
    vocabs.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    with h5py.File(vocabs / ESM2_FILE, "w") as handle:
        handle.create_dataset("keys", data=np.array([g.encode() for g in GENES]))
        arrays = handle.create_group("arrays")
        for gene in GENES:
            arrays.create_dataset(gene, data=rng.normal(size=12).astype(np.float32))
    assay_vocab = {"unknown": 0, "10x 3' v3": 1, "Smart-seq2": 2}
    (vocabs / "assay_vocab.json").write_text(json.dumps(assay_vocab))
    data, model_cfg, loss = _configs(gene_id_loss_weight)
    gene_vocab, emb = construct_gene_embeddings(
        [str(vocabs / ESM2_FILE)], list(data.special_tokens)
    )
    torch.manual_seed(seed)
    model = Transcriptformer(
        data_config=data,
        model_config=model_cfg,
        loss_config=loss,
        inference_config=None,
        gene_vocab_dict=gene_vocab,
        aux_vocab_dict={"assay": assay_vocab},
        emb_matrix=torch.tensor(emb),
    )
    if gene_id_loss_weight > 0:
        # Large logits, as a trained head gives, so that the loss's soft cap (10) matters.
        with torch.no_grad():
            model.gene_id_head.layers[-1].weight.mul_(40.0)
    model.eval()
    config = {
        "model": {
            "model_type": "transcriptformer",
            "data_config": dataclasses.asdict(data),
            "model_config": dataclasses.asdict(model_cfg),
            "loss_config": dataclasses.asdict(loss),
        }
    }
    (folder / "config.json").write_text(json.dumps(config))
    torch.save(model.state_dict(), folder / "model_weights.pt")
    return model


def reference_pmi(model: Transcriptformer, genes: list[str]) -> np.ndarray:
    """PMI from the package's forward pass and gene-id loss, one cell per term:
    -log p(first = B | []) is the loss at position 0 of the cell [B], -log p(next = B | [A]) the
    loss at position 1 of the cell [A, B]; cells padded with [PAD] to seq_len."""
    vocab = model.gene_vocab.vocab_dict
    pad = model.gene_vocab.pad_idx
    criterion = model.gene_id_criterion
    criterion.reduction = None  # per position, as the package's inference() sets it

    def nll(cells: list[list[int]], position: int) -> torch.Tensor:
        tokens = torch.full((len(cells), SEQ_LEN), pad, dtype=torch.long)
        counts = torch.zeros((len(cells), SEQ_LEN))
        for row, cell in enumerate(cells):
            tokens[row, : len(cell)] = torch.tensor(cell)
            counts[row, : len(cell)] = 1.0
        aux = torch.full((len(cells), 1), model.aux_vocab.pad_ids[0], dtype=torch.long)
        batch = BatchData(gene_counts=counts, gene_token_indices=tokens, aux_token_indices=aux)
        with torch.no_grad():
            out = model(batch)
            loss = criterion(logits=out["gene_logit"], input_ids=tokens, mask=None)
        return loss[:, position].double()

    ids = [vocab[g] for g in genes]
    first = nll([[b] for b in ids], 0)
    values = np.zeros((len(ids), len(ids)))
    for i, a in enumerate(ids):
        nxt = nll([[a, b] for b in ids], 1)
        values[i] = (first - nxt).numpy()
    np.fill_diagonal(values, 0.0)
    return values


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tf_tiny")
    model = write_checkpoint(folder)
    return folder, model


def test_pmi_matches_package_forward_and_loss(checkpoint, tmp_path):
    folder, model = checkpoint
    matrix = pmi.transcriptformer_pmi(
        str(folder), genes=None, download_dir=tmp_path, batch_size=4, device="cpu"
    )
    # Every gene of the vocabulary and no special token ([PAD], [START], unknown, ...).
    assert matrix.genes == tuple(sorted(GENES))
    assert not matrix.symmetric
    expected = reference_pmi(model, list(matrix.genes))
    np.testing.assert_allclose(matrix.values, expected, atol=1e-4)
    # A random head still gives non-trivial PMI of both signs (the test would pass on zeros).
    assert matrix.values.max() > 0.1 and matrix.values.min() < -0.1


def test_pmi_needs_the_soft_cap(checkpoint):
    """Without the loss's soft cap the same logits give different probabilities: the check above
    would catch a backend that forgot it."""
    folder, model = checkpoint
    loaded, vocab, special = pmi.load_transcriptformer(folder, "cpu")
    ids = [token for _, token in pmi.vocab_genes(vocab, special, None)]
    capped = pmi.pmi_from_gene_logits(pmi._transcriptformer_logit_fn(loaded), ids)
    loaded.model_config.softcap = 0
    uncapped = pmi.pmi_from_gene_logits(pmi._transcriptformer_logit_fn(loaded), ids)
    assert np.abs(capped - uncapped).max() > 1.0


def test_symbols_map_to_ensembl_and_unknown_genes_drop(checkpoint, tmp_path):
    folder, model = checkpoint
    wanted = ["G3", "G1", "G7", "NOT_A_GENE", "[PAD]", "unknown"]
    matrix = pmi.transcriptformer_pmi(
        str(folder), wanted, tmp_path, symbol_to_vocab=SYMBOLS, device="cpu"
    )
    assert matrix.genes == ("G1", "G3", "G7")
    full = reference_pmi(model, [SYMBOLS[g] for g in matrix.genes])
    np.testing.assert_allclose(matrix.values, full, atol=1e-4)


def test_checkpoint_without_gene_head_is_refused(tmp_path):
    write_checkpoint(tmp_path / "no_head", gene_id_loss_weight=0.0)
    with pytest.raises(ValueError, match="gene-prediction head"):
        pmi.load_transcriptformer(tmp_path / "no_head", "cpu")


def test_config_merged_over_inference_defaults(checkpoint):
    """config.json (training config, no inference_config) loads: the package's inference defaults
    fill what it lacks, the checkpoint's model and loss configs are kept."""
    folder, _ = checkpoint
    model, _, _ = pmi.load_transcriptformer(folder, "cpu")
    assert model.model_config.block_len == BLOCK_LEN
    assert model.inference_config.batch_size > 0
    assert model.model_config.softcap == 10 and model.loss_config.gene_id_loss_weight == 1.0


def test_precompute_tf_pmi_rule_entry_point(checkpoint, tmp_path, monkeypatch):
    """The rule's job: PerturbQA symbols -> Ensembl through the data folder's NCBI gene table,
    PMI, pairs and questions."""
    import pandas as pd

    folder, model = checkpoint
    table = tmp_path / "data" / "ncbi_human_genes" / "protein_coding_gene.csv"
    table.parent.mkdir(parents=True)
    rows = [{"Symbol": symbol, "Ensembl": gene} for symbol, gene in SYMBOLS.items()]
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setenv("RBIO_DATA_DIR", str(tmp_path / "data"))
    genes = tmp_path / "perturbqa.parquet"
    pd.DataFrame({"pert": ["G1", "G2", "G4"], "gene": ["G2", "G5", "OTHER"]}).to_parquet(genes)
    out = {name: str(tmp_path / f"{name}.parquet") for name in ("pmi", "questions")}
    report = stages.precompute_tf_pmi(
        TfPmiConfig(
            backend="transcriptformer", h5ad=None, checkpoint=str(folder), top_fraction=0.1
        ),
        str(genes),
        out["pmi"],
        out["questions"],
        str(tmp_path / "report.json"),
    )
    assert report["genes"] == 4 and report["pairs"] == 12
    pairs = pd.read_parquet(out["pmi"]).set_index(["gene_a", "gene_b"])["pmi"]
    expected = reference_pmi(model, [SYMBOLS[g] for g in ("G1", "G2", "G4", "G5")])
    assert pairs[("G2", "G5")] == pytest.approx(expected[1, 3], abs=1e-4)
    assert len(pd.read_parquet(out["questions"])) == report["yes"] + report["no"] > 0
