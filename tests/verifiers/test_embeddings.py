"""Gene embeddings: GO SVD on real annotations, one-hot, and the ESM-2 file readers."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from rbio.verifiers import embeddings as emb

GENES = ["TP53", "MYC", "GATA1"]
MATRIX = np.arange(12, dtype=np.float32).reshape(3, 4) / 10


def _check(genes, matrix):
    assert list(genes) == GENES
    np.testing.assert_allclose(matrix, MATRIX)


def test_read_safetensors_metadata_and_sidecar(tmp_path):
    with_metadata = tmp_path / "a.safetensors"
    save_file({"embedding": MATRIX}, str(with_metadata), metadata={"genes": json.dumps(GENES)})
    _check(*emb.read_embedding_table(with_metadata))
    sidecar = tmp_path / "b.safetensors"
    save_file({"vectors": MATRIX}, str(sidecar))
    (tmp_path / "b.genes.txt").write_text("\n".join(GENES) + "\n")
    _check(*emb.read_embedding_table(sidecar))


def test_read_parquet_csv_wide_and_list(tmp_path):
    wide = pd.DataFrame(MATRIX, columns=[f"d{i}" for i in range(4)]).assign(gene=GENES)
    wide.to_parquet(tmp_path / "wide.parquet")
    _check(*emb.read_embedding_table(tmp_path / "wide.parquet"))
    wide[["gene", "d0", "d1", "d2", "d3"]].to_csv(tmp_path / "wide.csv", index=False)
    _check(*emb.read_embedding_table(tmp_path / "wide.csv"))
    listed = pd.DataFrame({"gene": GENES, "embedding": list(MATRIX)})
    listed.to_parquet(tmp_path / "list.parquet")
    _check(*emb.read_embedding_table(tmp_path / "list.parquet"))


def test_read_h5_transcriptformer_layout(tmp_path):
    path = tmp_path / "homo_sapiens_gene.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("keys", data=[g.encode() for g in GENES])
        group = handle.create_group("arrays")
        for gene, row in zip(GENES, MATRIX, strict=True):
            group.create_dataset(gene, data=row)
    _check(*emb.read_embedding_table(path))


def test_bad_embedding_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="esm2_path"):
        emb.read_embedding_table(tmp_path / "absent.parquet")
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(emb.EmbeddingFormatError, match="unknown embedding format"):
        emb.read_embedding_table(tmp_path / "x.npy")
    bad = pd.DataFrame({"gene": GENES, "d0": [1.0, np.nan, 2.0]})
    bad.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(emb.EmbeddingFormatError, match="non-finite values for gene 'MYC'"):
        emb.read_embedding_table(tmp_path / "nan.parquet")


def test_esm2_renames_ensembl_ids(tmp_path):
    path = tmp_path / "esm.parquet"
    pd.DataFrame({"gene": ["ENSG1", "ENSG2"], "d0": [1.0, 2.0]}).to_parquet(path)
    embedding = emb.esm2_embedding(path, tmp_path, {"ENSG1": "TP53"})
    assert embedding.genes == ("TP53", "ENSG2")
    assert embedding.kind == "esm2"


def test_save_load_roundtrip_and_missing_positions(tmp_path):
    embedding = emb.GeneEmbedding("go_svd", tuple(GENES), MATRIX)
    emb.save_embedding(embedding, tmp_path / "e.safetensors")
    loaded = emb.load_embedding(tmp_path / "e.safetensors")
    assert loaded.genes == embedding.genes and loaded.kind == "go_svd"
    np.testing.assert_array_equal(loaded.matrix, MATRIX)
    assert loaded.positions(["MYC", "NOPE"]).tolist() == [1, -1]
    onehot = emb.onehot_embedding(["B", "A", "B"])
    assert onehot.genes == ("A", "B") and onehot.dim == 2


def test_go_svd_on_real_annotations(data_dir, tmp_path):
    from rbio.verifiers import go

    _, propagated, _ = go.load_go("local", data_dir, tmp_path)
    subset = propagated[propagated["aspect"] == "C"]
    first = emb.go_svd_embedding(subset, dim=16, seed=1)
    again = emb.go_svd_embedding(subset, dim=16, seed=1)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    assert first.matrix.shape == (subset["gene"].nunique(), 16)
    np.testing.assert_allclose(np.linalg.norm(first.matrix, axis=1), 1.0, atol=1e-5)
    # Subunits of one complex sit closer to each other than to an unrelated gene.
    vectors = dict(zip(first.genes, first.matrix, strict=True))
    assert vectors["PSMA1"] @ vectors["PSMA2"] > vectors["PSMA1"] @ vectors["KRT1"]
    table = pd.DataFrame({"cell_line": "k562", "pert": ["PSMA1", "NOTAGENE"], "gene": ["KRT1"] * 2})
    report = emb.coverage(first, table)
    assert report["perts_embedded"] == 1 and report["missing_examples"] == ["NOTAGENE"]
