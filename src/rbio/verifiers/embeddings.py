"""Per-gene embeddings for the MLP verifier: GO SVD, one-hot, or ESM-2 from a file.

Stored as safetensors: tensor ``embedding`` (genes x dim, float32) and the gene symbols in the
file's metadata (``genes``, JSON list), plus ``kind``. One-hot embeddings are not materialised
(a 10k x 10k identity would be 400 MB): their file holds an empty (genes x 0) tensor with
``kind = onehot`` and the MLP builds the one-hot rows per batch.

Genes without an embedding get a zero vector, and the MLP gets a 0/1 "missing" feature for each
side of the pair, so a missing gene is a defined input rather than an error; how many PerturbQA
genes that concerns is in the coverage report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbio.io import download_verified, write_safetensors

log = logging.getLogger(__name__)

EMBEDDING_KINDS: tuple[str, ...] = ("esm2", "go_svd", "onehot")

# TranscriptFormer's released artefacts include the frozen ESM-2 gene embeddings it was trained
# with ("all_embeddings", from the package's download_artifacts CLI): a tarball of HDF5 files,
# each with a ``keys`` dataset (gene ids) and an ``arrays`` group (one vector per key).
TRANSCRIPTFORMER_EMBEDDINGS_URL = (
    "https://czi-transcriptformer.s3.amazonaws.com/weights/all_embeddings.tar.gz"
)
TRANSCRIPTFORMER_HUMAN_EMBEDDINGS = "homo_sapiens_gene.h5"


class EmbeddingFormatError(ValueError):
    """An embedding file that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class GeneEmbedding:
    kind: str
    genes: tuple[str, ...]
    matrix: np.ndarray  # genes x dim float32; genes x 0 for one-hot

    @property
    def dim(self) -> int:
        return len(self.genes) if self.kind == "onehot" else int(self.matrix.shape[1])

    def positions(self, genes: Sequence[str]) -> np.ndarray:
        """Row of each gene, -1 where the gene has no embedding."""
        return pd.Index(self.genes).get_indexer(list(genes))


def save_embedding(embedding: GeneEmbedding, path: str | Path) -> None:
    from safetensors.numpy import save

    metadata = {"kind": embedding.kind, "genes": json.dumps(list(embedding.genes))}
    matrix = np.ascontiguousarray(embedding.matrix, dtype=np.float32)
    write_safetensors(save({"embedding": matrix}, metadata=metadata), path)


def load_embedding(path: str | Path) -> GeneEmbedding:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata() or {}
        if "genes" not in metadata or "kind" not in metadata:
            raise EmbeddingFormatError(f"{path}: metadata lacks 'genes'/'kind' (not written here?)")
        matrix = handle.get_tensor("embedding")
    genes = tuple(json.loads(metadata["genes"]))
    if metadata["kind"] != "onehot" and matrix.shape[0] != len(genes):
        raise EmbeddingFormatError(f"{path}: {matrix.shape[0]} rows but {len(genes)} genes")
    return GeneEmbedding(metadata["kind"], genes, matrix)


# --------------------------------------------------------------------------------------------
# The three kinds
# --------------------------------------------------------------------------------------------


def go_svd_embedding(annotations: pd.DataFrame, dim: int, seed: int) -> GeneEmbedding:
    """Truncated SVD of the gene x GO-term binary matrix (TF-IDF weighted), rows L2-normalised.

    IDF down-weights the near-universal ancestors (``cytoplasm``, ``protein binding``) that
    propagation adds to almost every gene, so the components describe specific biology.
    """
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    pairs = annotations[["gene", "go_id"]].drop_duplicates()
    genes = pd.Index(sorted(pairs["gene"].unique()))
    terms = pd.Index(sorted(pairs["go_id"].unique()))
    if len(genes) < 2 or len(terms) < 2:
        raise ValueError(f"go_svd needs >= 2 genes and terms, got {len(genes)} x {len(terms)}")
    matrix = sparse.csr_matrix(
        (
            np.ones(len(pairs)),
            (genes.get_indexer(pairs["gene"]), terms.get_indexer(pairs["go_id"])),
        ),
        shape=(len(genes), len(terms)),
    )
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(matrix)
    components = min(dim, min(weighted.shape) - 1)
    if components < dim:
        log.warning("go_svd: dim %d > what the matrix allows; using %d", dim, components)
    svd = TruncatedSVD(n_components=components, random_state=seed, algorithm="randomized")
    vectors = svd.fit_transform(weighted)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    log.info(
        "go_svd: %d genes x %d terms -> %d dims, explained variance %.3f",
        len(genes),
        len(terms),
        components,
        float(svd.explained_variance_ratio_.sum()),
    )
    return GeneEmbedding("go_svd", tuple(genes), vectors.astype(np.float32))


def onehot_embedding(genes: Sequence[str]) -> GeneEmbedding:
    ordered = tuple(sorted(set(genes)))
    return GeneEmbedding("onehot", ordered, np.zeros((len(ordered), 0), dtype=np.float32))


def read_embedding_table(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(genes, matrix) from a user-provided per-gene embedding file.

    Formats, by suffix:
    - ``.safetensors``: a 2-d tensor (``embedding`` or the only tensor) with the genes in the
      metadata key ``genes`` (JSON list) or in a sidecar ``<stem>.genes.txt`` (one per line);
    - ``.parquet`` / ``.csv`` / ``.tsv``: a ``gene`` column (else the first column) and either one
      list-valued column or numeric columns, one per dimension;
    - ``.h5`` / ``.hdf5``: TranscriptFormer's layout (``keys`` dataset + ``arrays`` group), or
      two datasets ``genes`` and ``embeddings``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"embedding file {path} does not exist (verifiers.embeddings.esm2_path)"
        )
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix == ".safetensors":
        genes, matrix = _read_safetensors(path)
    elif suffix in (".parquet", ".csv", ".tsv", ".csv.gz", ".tsv.gz"):
        genes, matrix = _read_frame(path, suffix)
    elif suffix in (".h5", ".hdf5"):
        genes, matrix = _read_h5(path)
    else:
        raise EmbeddingFormatError(
            f"{path}: unknown embedding format '{suffix}'; use safetensors, parquet, csv/tsv or h5"
        )
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(genes):
        raise EmbeddingFormatError(
            f"{path}: matrix {matrix.shape} does not match {len(genes)} genes"
        )
    if not np.all(np.isfinite(matrix)):
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise EmbeddingFormatError(f"{path}: non-finite values for gene '{genes[row]}'")
    duplicated = pd.Index(genes).duplicated()
    if duplicated.any():
        log.warning("%s: %d duplicated gene(s); keeping the first", path, int(duplicated.sum()))
        genes = [g for g, dup in zip(genes, duplicated, strict=True) if not dup]
        matrix = matrix[~duplicated]
    return list(genes), matrix


def _read_safetensors(path: Path) -> tuple[list[str], np.ndarray]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        keys = list(handle.keys())
        key = "embedding" if "embedding" in keys else (keys[0] if len(keys) == 1 else None)
        if key is None:
            raise EmbeddingFormatError(f"{path}: several tensors {keys} and none named 'embedding'")
        matrix = handle.get_tensor(key)
        metadata = handle.metadata() or {}
    if "genes" in metadata:
        return json.loads(metadata["genes"]), matrix
    sidecar = path.with_name(path.name.removesuffix(".safetensors") + ".genes.txt")
    if sidecar.is_file():
        return [line for line in sidecar.read_text().splitlines() if line], matrix
    raise EmbeddingFormatError(f"{path}: no 'genes' metadata and no sidecar {sidecar.name}")


def _read_frame(path: Path, suffix: str) -> tuple[list[str], np.ndarray]:
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep="\t" if suffix.startswith(".tsv") else ",")
    gene_column = "gene" if "gene" in frame.columns else frame.columns[0]
    rest = frame.drop(columns=[gene_column])
    if rest.shape[1] == 1 and rest.iloc[:, 0].map(lambda v: hasattr(v, "__len__")).all():
        matrix = np.stack(rest.iloc[:, 0].map(np.asarray).to_list())
    else:
        non_numeric = [c for c in rest.columns if not pd.api.types.is_numeric_dtype(rest[c])]
        if non_numeric:
            raise EmbeddingFormatError(f"{path}: non-numeric column(s) {non_numeric[:5]}")
        matrix = rest.to_numpy()
    return frame[gene_column].astype(str).to_list(), matrix


def _read_h5(path: Path) -> tuple[list[str], np.ndarray]:
    import h5py

    def text(values) -> list[str]:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]

    with h5py.File(path, "r") as handle:
        if "keys" in handle and "arrays" in handle:
            genes = text(handle["keys"][:])
            group = handle["arrays"]
            missing = [g for g in genes if g not in group]
            if missing:
                raise EmbeddingFormatError(f"{path}: keys without an array, e.g. {missing[:3]}")
            return genes, np.stack([group[g][:] for g in genes])
        if "genes" in handle and "embeddings" in handle:
            return text(handle["genes"][:]), handle["embeddings"][:]
    raise EmbeddingFormatError(
        f"{path}: expected datasets keys+arrays (TranscriptFormer) or genes+embeddings"
    )


def download_transcriptformer_embeddings(dest_dir: str | Path) -> Path:
    """Download TranscriptFormer's ESM-2 embedding tarball and return the human h5 file.

    The bucket publishes no checksums; the sha256 of the tarball is logged.
    """
    import tarfile

    dest_dir = Path(dest_dir)
    tarball = dest_dir / "all_embeddings.tar.gz"
    digest = download_verified(TRANSCRIPTFORMER_EMBEDDINGS_URL, tarball, expected_sha256=None)
    log.info("%s -> %s (sha256 %s)", TRANSCRIPTFORMER_EMBEDDINGS_URL, tarball, digest)
    with tarfile.open(tarball) as archive:
        members = [
            m for m in archive.getmembers() if m.name.endswith(TRANSCRIPTFORMER_HUMAN_EMBEDDINGS)
        ]
        if not members:
            raise EmbeddingFormatError(f"{tarball}: no {TRANSCRIPTFORMER_HUMAN_EMBEDDINGS} inside")
        archive.extractall(dest_dir, members=members, filter="data")
    return dest_dir / members[0].name


def esm2_embedding(
    path: str | Path | None, download_dir: str | Path, symbol_of: dict[str, str] | None = None
) -> GeneEmbedding:
    """ESM-2 embeddings from ``path`` (or TranscriptFormer's release when ``path`` is None).

    TranscriptFormer keys its vectors by Ensembl gene id; ``symbol_of`` (Ensembl -> symbol, from
    the NCBI gene table) renames them so they join PerturbQA's symbols.
    """
    source = Path(path) if path else download_transcriptformer_embeddings(download_dir)
    genes, matrix = read_embedding_table(source)
    if symbol_of:
        renamed = [symbol_of.get(gene, gene) for gene in genes]
        keep = ~pd.Index(renamed).duplicated()
        genes = [g for g, k in zip(renamed, keep, strict=True) if k]
        matrix = matrix[keep]
    return GeneEmbedding("esm2", tuple(genes), matrix)


def ensembl_to_symbol(genes_csv: str | Path) -> dict[str, str]:
    table = pd.read_csv(genes_csv, usecols=["Symbol", "Ensembl"], dtype=str).dropna()
    return dict(zip(table["Ensembl"], table["Symbol"], strict=True))


def coverage(embedding: GeneEmbedding, perturbqa: pd.DataFrame) -> dict:
    """How many PerturbQA perturbations, monitored genes and rows have an embedding."""
    known = set(embedding.genes)
    perts = set(perturbqa["pert"])
    monitored = set(perturbqa["gene"])
    both = perturbqa["pert"].isin(known) & perturbqa["gene"].isin(known)
    missing = sorted((perts | monitored) - known)
    return {
        "kind": embedding.kind,
        "genes_embedded": len(embedding.genes),
        "dim": embedding.dim,
        "perts": len(perts),
        "perts_embedded": len(perts & known),
        "monitored_genes": len(monitored),
        "monitored_genes_embedded": len(monitored & known),
        "rows": len(perturbqa),
        "rows_with_both_embedded": int(both.sum()),
        "missing_genes_get": "zero vector + missing flag feature in the MLP",
        "missing_genes": len(missing),
        "missing_examples": missing[:50],
    }
