"""Gene-gene PMI for the TF verifier's co-expression questions, from one of two backends.

- ``transcriptformer`` (the paper's): PMI(A, B) = log p(next gene = B | [A]) - log p(first gene =
  B | []) from TranscriptFormer's gene-prediction head. The package pins torch 2.5.1, so it lives
  in its own conda env (envs/transcriptformer.yaml) and is imported lazily here.
- ``expression`` (offline default): PMI of gene co-detection across the cells of an h5ad,
  PMI(A, B) = log P(A and B detected) - log P(A detected) - log P(B detected).

Both give a ``PmiMatrix``; ``questions_from_pmi`` turns its pairs into yes/no questions with the
top fraction "yes", the bottom fraction (PMI <= 0 only) "no", and threshold-centred confidences.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbio.io import download_verified
from rbio.verifiers.confidence import threshold_centred

log = logging.getLogger(__name__)

QUESTION_COLUMNS: tuple[str, ...] = ("gene_a", "gene_b", "pmi", "label", "confidence")
TRANSCRIPTFORMER_WEIGHTS_URL = "https://czi-transcriptformer.s3.amazonaws.com/weights/{name}.tar.gz"


@dataclass(frozen=True)
class PmiMatrix:
    genes: tuple[str, ...]
    values: np.ndarray  # values[i, j] = PMI(genes[i], genes[j]); diagonal ignored
    symmetric: bool


# --------------------------------------------------------------------------------------------
# Expression backend
# --------------------------------------------------------------------------------------------


def load_expression(h5ad: str | None):
    """The h5ad to count co-detection in; None: scanpy's bundled pbmc68k_reduced (smoke only)."""
    import anndata
    import scanpy as sc

    if h5ad is None:
        log.warning(
            "no verifiers.tf_pmi.h5ad: using scanpy's pbmc68k_reduced (700 cells; smoke only)"
        )
        return sc.datasets.pbmc68k_reduced()
    path = Path(h5ad)
    if not path.is_file():
        raise FileNotFoundError(f"verifiers.tf_pmi.h5ad: {path} does not exist")
    return anndata.read_h5ad(path)


def detection_matrix(adata) -> tuple[list[str], np.ndarray | object]:
    """(gene symbols, cells x genes boolean sparse matrix of detection).

    Uses ``adata.raw`` when present (pbmc68k_reduced's ``X`` is scaled, so zeros are not zeros
    there) and the ``gene_symbols``/``feature_name`` column when var_names are Ensembl ids.
    """
    from scipy import sparse

    source = adata.raw if adata.raw is not None else adata
    names = source.var_names.astype(str)
    for column in ("feature_name", "gene_symbols", "gene_symbol"):
        if column in source.var.columns:
            names = source.var[column].astype(str)
            break
    matrix = source.X
    detected = (
        sparse.csr_matrix(matrix > 0)
        if sparse.issparse(matrix)
        else sparse.csr_matrix(np.asarray(matrix) > 0)
    )
    return list(names), detected.astype(np.float32)


def expression_pmi(
    adata,
    genes: Iterable[str] | None = None,
    min_cells: int = 10,
    max_detection: float = 0.95,
    pseudocount: float = 1.0,
) -> PmiMatrix:
    """Co-detection PMI over cells; genes detected in < min_cells or > max_detection of cells are
    dropped (no information either way), as are genes outside ``genes`` when given."""
    names, detected = detection_matrix(adata)
    n_cells = detected.shape[0]
    counts = np.asarray(detected.sum(axis=0)).ravel()
    keep = (counts >= min_cells) & (counts <= max_detection * n_cells)
    if genes is not None:
        wanted = set(genes)
        keep &= np.array([name in wanted for name in names])
    duplicated = pd.Index(names).duplicated()
    keep &= ~duplicated
    index = np.flatnonzero(keep)
    if len(index) < 2:
        raise ValueError(
            f"expression PMI: only {len(index)} gene(s) pass the filters "
            f"(min_cells={min_cells}, max_detection={max_detection}, requested genes)"
        )
    sub = detected[:, index]
    joint = np.asarray((sub.T @ sub).todense(), dtype=np.float64)
    marginal = counts[index].astype(np.float64)
    total = n_cells + pseudocount
    p_joint = (joint + pseudocount / len(index)) / total
    p_marginal = (marginal + pseudocount) / total
    with np.errstate(divide="ignore"):
        values = np.log(p_joint) - np.log(p_marginal)[:, None] - np.log(p_marginal)[None, :]
    # Without a pseudocount a never-co-detected pair has PMI -inf: put it just below the rest.
    np.fill_diagonal(values, 0.0)
    if not np.isfinite(values).all():
        values[~np.isfinite(values)] = values[np.isfinite(values)].min() - 1.0
    log.info("expression PMI over %d cells and %d genes", n_cells, len(index))
    return PmiMatrix(tuple(names[i] for i in index), values, symmetric=True)


# --------------------------------------------------------------------------------------------
# TranscriptFormer backend
# --------------------------------------------------------------------------------------------

# (token ids of shape (batch, 2), counts of shape (batch, 2)) -> gene logits (batch, 2, vocab),
# already transformed the way the model's gene-id loss transforms them before its softmax.
GeneLogitFn = Callable[["object", "object"], "object"]


def pmi_from_gene_logits(
    logit_fn: GeneLogitFn, token_ids: list[int], batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """PMI matrix over ``token_ids`` from an autoregressive gene-prediction head.

    Each sequence is ``[A, A]``: position 0 is predicted from the empty context (after the start
    token) and gives log p(first gene = B | []); position 1 is predicted after A and gives
    log p(next gene = B | [A]). The second token only feeds the count head, never these logits.
    The softmax runs over the whole vocabulary (special tokens included), as the model's loss does.
    """
    import torch

    # Inputs on the model's device; the gathered log-probabilities come back to the CPU per
    # batch, so the index tensor lives on the device too (no host/device mix when indexing).
    ids = torch.tensor(token_ids, dtype=torch.long, device=device)
    rows = []
    marginal = None
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            tokens = torch.stack([chunk, chunk], dim=1)
            counts = torch.ones_like(tokens, dtype=torch.float32)
            log_probs = torch.log_softmax(logit_fn(tokens, counts).float(), dim=-1)
            conditional = log_probs[:, 1, :][:, ids]
            if marginal is None:
                marginal = log_probs[0, 0, :][ids]
            rows.append((conditional - marginal[None, :]).cpu())
    values = torch.cat(rows).numpy().astype(np.float64)
    np.fill_diagonal(values, 0.0)
    return values


def _transcriptformer_logit_fn(model) -> GeneLogitFn:
    import torch
    from transcriptformer.data.dataclasses import BatchData
    from transcriptformer.model.losses import logit_softcap

    aux_vocab = getattr(model, "aux_vocab", None)
    pad = model.gene_vocab.pad_idx
    softcap = model.model_config.softcap
    # create_block_mask needs the sequence (auxiliary tokens included) to fill whole blocks; the
    # pad positions are masked as keys, so the two real positions see exactly what they would see
    # in a longer cell. The package's data loader pads with the same token.
    block = model.model_config.block_len
    n_aux = aux_vocab.aux_seq_len if aux_vocab is not None else 0

    def logits(tokens, counts):
        length = tokens.shape[1]
        fill = -(length + n_aux) % block
        if fill:
            tokens = torch.nn.functional.pad(tokens, (0, fill), value=pad)
            counts = torch.nn.functional.pad(counts, (0, fill), value=0.0)
        aux = None
        if aux_vocab is not None:
            # "unknown" for every auxiliary column (assay, ...): an unconditioned cell.
            aux = torch.tensor(aux_vocab.pad_ids, device=tokens.device).repeat(len(tokens), 1)
        batch = BatchData(gene_counts=counts, gene_token_indices=tokens, aux_token_indices=aux)
        raw = model(batch)["gene_logit"][:, :length]
        # The gene-id loss soft-caps the head's logits before its softmax
        # (CrossEntropyLoss(softcap=model_config.softcap)): the probabilities the model was
        # trained to give are those of the capped logits.
        return logit_softcap(raw, softcap)

    return logits


def load_transcriptformer(checkpoint_dir: str | Path, device: str = "cuda"):
    """The released model from an extracted checkpoint folder (config.json, model_weights.pt,
    vocabs/), loaded the way the package's own inference entry point does.

    Returns (model in eval mode on ``device``, gene vocabulary token -> index, special tokens).
    """
    import importlib.resources
    import json

    import torch
    from omegaconf import OmegaConf
    from transcriptformer.model.model import Transcriptformer
    from transcriptformer.tokenizer.vocab import SPECIAL_TOKENS, load_vocabs_and_embeddings

    folder = Path(checkpoint_dir)
    # config.json is the training run's config: it lacks inference_config and some data_config
    # fields the package fills from its inference defaults. Same merge as `transcriptformer
    # inference` (cli/__init__.py): the defaults merged onto the checkpoint's config.
    defaults = importlib.resources.files("transcriptformer.cli") / "conf" / "inference_config.yaml"
    checkpoint_cfg = OmegaConf.create(json.loads((folder / "config.json").read_text()))
    cfg = OmegaConf.merge(checkpoint_cfg, OmegaConf.load(str(defaults)))
    if not cfg.model.loss_config.get("gene_id_loss_weight", 0) > 0:
        raise ValueError(
            f"{folder}: loss_config.gene_id_loss_weight is not > 0, so this checkpoint has no "
            "gene-prediction head and gives no p(next gene); TF PMI needs one (tf_sapiens, ...)"
        )
    cfg.model.checkpoint_path = str(folder)
    cfg.model.inference_config.load_checkpoint = str(folder / "model_weights.pt")
    cfg.model.data_config.aux_vocab_path = str(folder / "vocabs")
    cfg.model.data_config.esm2_mappings_path = str(folder / "vocabs")
    if not str(device).startswith("cuda"):
        # torch 2.5 compiles flex attention for CUDA only; eager flex attention runs anywhere.
        cfg.model.model_config.compile_block_mask = False
    (gene_vocab, aux_vocab), emb_matrix = load_vocabs_and_embeddings(cfg)
    model = Transcriptformer(
        data_config=cfg.model.data_config,
        model_config=cfg.model.model_config,
        loss_config=cfg.model.loss_config,
        inference_config=cfg.model.inference_config,
        gene_vocab_dict=gene_vocab,
        aux_vocab_dict=aux_vocab,
        emb_matrix=emb_matrix,
    )
    state = torch.load(folder / "model_weights.pt", weights_only=True, map_location=device)
    model.load_state_dict(state)
    # The package builds the vocabulary with its own list when the config names none.
    special = tuple(cfg.model.data_config.get("special_tokens") or SPECIAL_TOKENS)
    return model.to(device).eval(), gene_vocab, special


def symbol_to_ensembl(genes_csv: str | Path) -> dict[str, str]:
    """Gene symbol -> Ensembl gene id from the NCBI gene table (TranscriptFormer's vocabulary is
    keyed by Ensembl id, PerturbQA by symbol). An Ensembl id shared by several symbols is left
    out: its symbols would become one token, and their pair a self-pair."""
    table = pd.read_csv(genes_csv, usecols=["Symbol", "Ensembl"], dtype=str).dropna()
    table = table.drop_duplicates()
    table = table[
        ~table["Ensembl"].duplicated(keep=False) & ~table["Symbol"].duplicated(keep=False)
    ]
    return dict(zip(table["Symbol"], table["Ensembl"], strict=True))


def vocab_genes(
    vocab: dict[str, int],
    special: Iterable[str],
    genes: Iterable[str] | None,
    symbol_to_vocab: dict[str, str] | None = None,
) -> list[tuple[str, int]]:
    """(name, token) of the requested genes found in the vocabulary, sorted by name; all genes
    when ``genes`` is None. Special tokens ([PAD], [START], unknown, ...) are never genes."""
    special = set(special)
    mapping = symbol_to_vocab or {}
    wanted = sorted(set(genes)) if genes is not None else sorted(vocab)
    chosen = []
    for name in wanted:
        key = mapping.get(name, name)
        if key in vocab and key not in special and name not in special:
            chosen.append((name, vocab[key]))
    return chosen


def transcriptformer_pmi(
    checkpoint: str,
    genes: Iterable[str] | None,
    download_dir: str | Path,
    symbol_to_vocab: dict[str, str] | None = None,
    batch_size: int = 64,
    device: str | None = None,
) -> PmiMatrix:
    """PMI over the genes of ``genes`` present in the model's vocabulary (GPU recommended).

    ``checkpoint`` is a released model name (tf_sapiens, ...; downloaded and extracted into
    ``download_dir``) or an extracted checkpoint folder. The vocabulary is keyed by Ensembl id;
    ``symbol_to_vocab`` maps symbols to it (``symbol_to_ensembl``). ``device``: default CUDA when
    available.
    """
    import tarfile

    import torch

    folder = Path(checkpoint)
    if not folder.is_dir():
        tarball = Path(download_dir) / f"{checkpoint}.tar.gz"
        url = TRANSCRIPTFORMER_WEIGHTS_URL.format(name=checkpoint)
        digest = download_verified(url, tarball, expected_sha256=None)
        log.info("%s -> %s (sha256 %s)", url, tarball, digest)
        with tarfile.open(tarball) as archive:
            archive.extractall(download_dir, filter="data")
        folder = Path(download_dir) / checkpoint
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    genes = list(genes) if genes is not None else None
    model, vocab, special = load_transcriptformer(folder, device)
    chosen = vocab_genes(vocab, special, genes, symbol_to_vocab)
    if genes is not None:
        log.info(
            "transcriptformer PMI: %d of %d requested genes in the vocabulary",
            len(chosen),
            len(set(genes)),
        )
    if len(chosen) < 2:
        raise ValueError(
            f"transcriptformer PMI: only {len(chosen)} requested gene(s) in the vocabulary"
        )
    values = pmi_from_gene_logits(
        _transcriptformer_logit_fn(model), [token for _, token in chosen], batch_size, device
    )
    return PmiMatrix(tuple(g for g, _ in chosen), values, symmetric=False)


# --------------------------------------------------------------------------------------------
# Pairs and questions
# --------------------------------------------------------------------------------------------


def pmi_pairs(matrix: PmiMatrix) -> pd.DataFrame:
    """Long table gene_a, gene_b, pmi (each unordered pair once when the matrix is symmetric)."""
    n = len(matrix.genes)
    if matrix.symmetric:
        rows, cols = np.triu_indices(n, k=1)
    else:
        rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    genes = np.asarray(matrix.genes, dtype=object)
    return pd.DataFrame(
        {"gene_a": genes[rows], "gene_b": genes[cols], "pmi": matrix.values[rows, cols]}
    )


def questions_from_pmi(
    pairs: pd.DataFrame, top_fraction: float, seed: int = 0
) -> tuple[pd.DataFrame, dict]:
    """Yes/no co-expression questions: the top ``top_fraction`` of pairs by PMI are "yes", the
    same number of the lowest-PMI pairs with PMI <= 0 are "no".

    ``confidence`` is P(yes), threshold-centred: the "yes" cut-off maps to 0.5, the largest PMI
    to 1, the smallest to 0 (PMI below the cut-off, including clamped negatives, stays under 0.5).
    """
    if not 0 < top_fraction < 0.5:
        raise ValueError(f"verifiers.tf_pmi.top_fraction must be in (0, 0.5), got {top_fraction}")
    if pairs["pmi"].isna().any():
        raise ValueError("PMI table has NaN values")
    ordered = pairs.sort_values(["pmi", "gene_a", "gene_b"], ascending=[False, True, True])
    n_yes = max(1, math.ceil(top_fraction * len(pairs)))
    yes = ordered.head(n_yes)
    yes = yes[yes["pmi"] > 0]
    cutoff = float(yes["pmi"].min()) if len(yes) else 0.0
    candidates = ordered[ordered["pmi"] <= 0]
    no = candidates.tail(len(yes)) if len(candidates) else candidates
    questions = pd.concat([yes.assign(label=1), no.assign(label=0)], ignore_index=True)
    questions["confidence"] = (
        threshold_centred(questions["pmi"].to_numpy(), threshold=cutoff) if len(questions) else []
    )
    # A "no" pair sits at PMI <= 0 < cut-off, so its confidence is < 0.5 by construction.
    questions = questions.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    questions["label"] = questions["label"].astype("int8")
    report = {
        "pairs": len(pairs),
        "yes": int((questions["label"] == 1).sum()),
        "no": int((questions["label"] == 0).sum()),
        "yes_pmi_cutoff": cutoff,
        "pairs_pmi_le_0": int((pairs["pmi"] <= 0).sum()),
        "top_fraction": top_fraction,
    }
    if report["no"] < report["yes"]:
        log.warning(
            "only %d pairs with PMI <= 0 for %d 'yes' questions", report["no"], report["yes"]
        )
    return questions[list(QUESTION_COLUMNS)], report
