"""Entry points of the verifier rules (the workflow scripts call these, one each)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from rbio.config import MlpConfig, TfPmiConfig, data_dir, split_lines
from rbio.io import write_json, write_parquet
from rbio.verifiers import embeddings as emb
from rbio.verifiers import go, pmi
from rbio.verifiers import mlp as mlp_verifier

log = logging.getLogger(__name__)


def perturbqa_genes(table: pd.DataFrame) -> set[str]:
    return set(table["pert"]) | set(table["gene"])


def build_go_index(
    origin: str,
    perturbqa_path: str,
    out_index: str,
    out_propagated: str,
    out_coverage: str,
) -> dict:
    """GO annotations of every gene (``origin`` local: the data folder; remote: upstream)."""
    direct, propagated, provenance = go.load_go(
        origin, data_dir() if origin == "local" else None, Path(out_index).parent / "download"
    )
    table = pd.read_parquet(perturbqa_path, columns=["pert", "gene"])
    report = go.coverage_report(direct, propagated, perturbqa_genes(table))
    report["provenance"] = provenance
    write_parquet(direct, out_index)
    write_parquet(propagated, out_propagated)
    write_json(out_coverage, report)
    log.info(
        "GO index: %d direct annotations, %d genes; PerturbQA coverage %s",
        len(direct),
        report["genes_with_direct_annotation"],
        report["perturbqa_coverage"],
    )
    return report


def gene_embeddings(
    kind: str,
    perturbqa_path: str,
    out_embedding: str,
    out_coverage: str,
    *,
    dim: int | None = None,
    seed: int | None = None,
    propagated_path: str | None = None,
    esm2_path: str | None = None,
) -> dict:
    """One gene embedding: go_svd (``dim``, ``seed``, the propagated GO annotations), onehot, or
    esm2 (``esm2_path``, else the download; symbols from the data folder's NCBI gene table)."""
    table = pd.read_parquet(perturbqa_path, columns=["cell_line", "pert", "gene"])
    if kind == "go_svd":
        if propagated_path is None or dim is None or seed is None:
            raise ValueError("go_svd needs the propagated GO annotations, a dim and a seed")
        embedding = emb.go_svd_embedding(pd.read_parquet(propagated_path), dim, seed)
    elif kind == "onehot":
        embedding = emb.onehot_embedding(sorted(perturbqa_genes(table)))
    elif kind == "esm2":
        genes_csv = data_dir() / go.LOCAL_GENES[0]
        symbol_of = emb.ensembl_to_symbol(genes_csv) if genes_csv.is_file() else None
        embedding = emb.esm2_embedding(
            esm2_path, Path(out_embedding).parent / "download", symbol_of
        )
    else:
        raise ValueError(f"unknown embedding '{kind}'; valid: {list(emb.EMBEDDING_KINDS)}")
    emb.save_embedding(embedding, out_embedding)
    report = emb.coverage(embedding, table)
    write_json(out_coverage, report)
    log.info("%s embedding: %s", kind, report)
    return report


def train_mlp_verifier(
    settings: MlpConfig,
    seed: int,
    cell_lines: tuple[str, ...],
    split: str,
    *,
    train_path: str,
    test_path: str,
    embedding_path: str,
    out: mlp_verifier.VerifierFiles,
) -> dict:
    """The MLP verifier of one split, fitted on its training rows, scoring train and test rows."""
    train = pd.read_parquet(train_path)
    test = pd.read_parquet(test_path)
    train_lines, test_lines = split_lines(split, cell_lines)
    held_out = sorted(set(test_lines) - set(train_lines))
    mlp_verifier.check_training_lines(train, held_out, split)
    embedding = emb.load_embedding(embedding_path)
    trained = mlp_verifier.train_verifier(
        train,
        test,
        embedding,
        mlp_verifier.MlpSettings(
            hidden=settings.hidden,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            seed=seed,
        ),
    )
    metrics = mlp_verifier.save_verifier(
        trained, embedding, embedding_path, split, (train, test), out
    )
    log.info("MLP verifier %s: %s", split, mlp_verifier.summary_line(metrics))
    return metrics


def precompute_tf_pmi(
    settings: TfPmiConfig,
    genes_path: str | None,
    out_pmi: str,
    out_questions: str,
    out_report: str,
) -> dict:
    wanted = None
    if genes_path:
        table = pd.read_parquet(genes_path, columns=["pert", "gene"])
        wanted = perturbqa_genes(table)
    if settings.backend == "expression":
        adata = pmi.load_expression(settings.h5ad)
        matrix = pmi.expression_pmi(adata, genes=wanted)
    elif settings.backend == "transcriptformer":
        # The model's vocabulary is Ensembl ids; PerturbQA names genes by symbol.
        genes_csv = data_dir() / go.LOCAL_GENES[0]
        if not genes_csv.is_file():
            raise FileNotFoundError(
                f"{genes_csv}: the NCBI gene table maps symbols to TranscriptFormer's Ensembl ids"
            )
        matrix = pmi.transcriptformer_pmi(
            settings.checkpoint,
            genes=wanted,
            download_dir=Path(out_pmi).parent / "download",
            symbol_to_vocab=pmi.symbol_to_ensembl(genes_csv),
        )
    else:
        raise ValueError(
            f"verifiers.tf_pmi.backend '{settings.backend}'; valid: expression, transcriptformer"
        )
    pairs = pmi.pmi_pairs(matrix)
    questions, report = pmi.questions_from_pmi(pairs, settings.top_fraction)
    report["backend"] = settings.backend
    report["genes"] = len(matrix.genes)
    write_parquet(pairs, out_pmi)
    write_parquet(questions, out_questions)
    write_json(out_report, report)
    log.info("TF PMI (%s): %s", settings.backend, report)
    return report
