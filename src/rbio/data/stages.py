"""Entry points of the data and prompt rules (the workflow scripts call these)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rbio.config import GoConfig, PromptsConfig
from rbio.data import genes, perturbqa
from rbio.data.ingest import ingest_perturbqa
from rbio.data.prompts import build_source_prompts, save_prompt_dataset, summarise
from rbio.data.splits import make_split
from rbio.io import copy_verified, download_verified, write_json, write_parquet

log = logging.getLogger(__name__)

# sha256 of ../shared/data/hgnc_aliases/hgnc_alias_to_approved.tsv.gz (see its PROVENANCE.md).
HGNC_ALIAS_TABLE = "hgnc_aliases/hgnc_alias_to_approved.tsv.gz"
HGNC_ALIAS_SHA256 = "800654a4806074d2c3f7696f60a27ac1c1da3fac6122bf2c061a381609753189"


def acquire_perturbqa(name: str, dest: str | Path, source: str, local_dir: str | Path) -> None:
    digest = perturbqa.acquire_table(name, dest, source=source, local_dir=local_dir)
    log.info("%s -> %s (sha256 %s, verified)", name, dest, digest)


def acquire_alias_table(dest: str | Path, source: str, local_dir: str | Path) -> None:
    """HGNC symbol -> approved symbol table: the pinned offline copy, or today's HGNC release.

    HGNC republishes its complete set continuously, so a remote download cannot be pinned to a
    checksum; its sha256 is logged instead.
    """
    if source == "local":
        digest = copy_verified(Path(local_dir) / HGNC_ALIAS_TABLE, dest, HGNC_ALIAS_SHA256)
    else:
        raw = Path(dest).with_suffix(".complete_set.txt")
        digest = download_verified(genes.HGNC_COMPLETE_SET_URL, raw, expected_sha256=None)
        table = genes.alias_table_from_hgnc_complete_set(raw)
        table.to_csv(dest, sep="\t", index=False, compression="gzip")
        raw.unlink()
    log.info("HGNC alias table -> %s (sha256 of the source %s)", dest, digest)


def ingest(
    lines: Sequence[str],
    de_paths: Sequence[str],
    dir_paths: Sequence[str],
    aliases: str,
    out_table: str,
    out_report: str,
) -> None:
    table, report = ingest_perturbqa(
        dict(zip(lines, zip(de_paths, dir_paths, strict=True), strict=True)), aliases
    )
    write_parquet(table, out_table)
    write_json(out_report, report)
    status = report["gene_symbols"]["status_counts"]
    log.info(
        "ingested %d rows from %d cell lines; gene symbols: %s", len(table), len(lines), status
    )


def split(
    table_path: str,
    split_name: str,
    *,
    cell_lines: Sequence[str],
    max_test_rows: int | None,
    seed: int,
    out_train: str,
    out_test: str,
    out_report: str,
) -> None:
    train, test, report = make_split(
        pd.read_parquet(table_path),
        split_name,
        tuple(cell_lines),
        max_test_rows=max_test_rows,
        seed=seed,
    )
    write_parquet(train, out_train)
    write_parquet(test, out_test)
    write_json(out_report, report)
    log.info("%s: %d train rows, %d test rows", split_name, len(train), len(test))


def prompts(
    source: str,
    split_name: str,
    settings: PromptsConfig,
    seed: int,
    train_path: str,
    out_dir: str,
    go: GoConfig | None = None,
    mlp_scores: str | None = None,
    tf_questions: str | None = None,
    go_index: str | None = None,
) -> None:
    def read(path: str | None) -> pd.DataFrame | None:
        return pd.read_parquet(path) if path else None

    frame = build_source_prompts(
        source,
        settings,
        pd.read_parquet(train_path),
        seed=seed,
        go=go,
        mlp_scores=read(mlp_scores),
        tf_questions=read(tf_questions),
        go_index=read(go_index),
    )
    summary = {"source": source, "split": split_name, **summarise(frame)}
    save_prompt_dataset(frame, out_dir, summary)
    log.info("%s/%s: %s", source, split_name, summary)
