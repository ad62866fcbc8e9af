"""Entry points of the data and prompt rules (the workflow scripts call these)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from rbio.config import GoConfig, PromptsConfig
from rbio.data import genes, perturbqa
from rbio.data.folder import HGNC_ALIAS_TABLE
from rbio.data.ingest import ingest_perturbqa
from rbio.data.prompts import SETTINGS_KEY, save_prompt_dataset, summarise
from rbio.data.splits import make_split
from rbio.io import (
    atomic_path,
    copy_verified,
    download_verified,
    record_sha256,
    sha256_file,
    sha256_record_path,
    write_json,
    write_parquet,
)
from rbio.sources import SOURCES

log = logging.getLogger(__name__)


def acquire_perturbqa(name: str, dest: str | Path, origin: str, local_dir: str | Path) -> None:
    digest = perturbqa.acquire_table(name, dest, origin=origin, local_dir=local_dir)
    log.info("%s -> %s (sha256 %s, verified)", name, dest, digest)


def acquire_alias_table(dest: str | Path, origin: str, local_dir: str | Path) -> None:
    """HGNC symbol -> approved symbol table: the pinned offline copy, or today's HGNC release.

    HGNC republishes its complete set continuously, so a remote download cannot be pinned to a
    checksum; its sha256 is logged, and the digest of the table built from it is recorded beside
    the copy, which ingest checks (genes.verify_alias_table).
    """
    if origin == "local":
        digest = copy_verified(Path(local_dir) / HGNC_ALIAS_TABLE, dest, genes.HGNC_ALIAS_SHA256)
        # A record left by an earlier download must not vouch for this copy.
        sha256_record_path(dest).unlink(missing_ok=True)
    else:
        raw = Path(dest).with_suffix(".complete_set.txt")
        digest = download_verified(genes.HGNC_COMPLETE_SET_URL, raw, expected_sha256=None)
        table = genes.alias_table_from_hgnc_complete_set(raw)
        with atomic_path(dest) as tmp:
            table.to_csv(tmp, sep="\t", index=False, compression="gzip")
            record_sha256(dest, sha256_file(tmp))  # before the move: no copy without its record
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
    symbols = report["gene_symbols"]
    for unmapped in symbols["unmapped_occurrences"]:
        log.warning(
            "%(file)s, line %(first_line)d, column '%(column)s': %(symbol)r is not an HGNC symbol"
            " or alias (nearest: %(nearest_hgnc)s); kept as written in its %(rows)d row(s)",
            unmapped,
        )
    log.info(
        "ingested %d rows from %d cell lines (inputs sha256-verified); gene symbols: %s",
        len(table),
        len(lines),
        symbols["status_counts"],
    )


def split(
    table_path: str,
    split_name: str,
    *,
    cell_lines: Sequence[str],
    max_test_rows: int | None,
    seed: int,
    gene_panel: int | None = None,
    validation_rows: int | None = None,
    out_train: str,
    out_test: str,
    out_validation: str,
    out_report: str,
) -> None:
    train, test, validation, report = make_split(
        pd.read_parquet(table_path),
        split_name,
        tuple(cell_lines),
        max_test_rows=max_test_rows,
        seed=seed,
        gene_panel=gene_panel,
        validation_rows=validation_rows,
    )
    write_parquet(train, out_train)
    write_parquet(test, out_test)
    write_parquet(validation, out_validation)
    write_json(out_report, report)
    log.info(
        "%s: %d train rows, %d test rows, %d validation rows",
        split_name, len(train), len(test), len(validation),
    )  # fmt: skip


def prompts(
    source: str,
    split_name: str,
    settings: PromptsConfig,
    seed: int,
    *,
    go: GoConfig | None,
    mlp_confidence: str | None = None,
    train_path: str,
    verifier_outputs: Mapping[str, str],
    out_dir: str,
) -> None:
    """One source's prompt dataset for one split (``verifier_outputs``: the parquet files the
    source declares in ``rbio.sources``, by name; ``mlp_confidence``: config
    verifiers.mlp.confidence for a source that uses it, else None)."""
    frame = SOURCES[source].prompts(
        pd.read_parquet(train_path),
        settings,
        seed=seed,
        go=go,
        mlp_confidence=mlp_confidence,
        verifier_outputs={name: pd.read_parquet(path) for name, path in verifier_outputs.items()},
    )
    summary = {"source": source, "split": split_name, **summarise(frame)}
    if mlp_confidence:  # a setting beyond config prompts that shaped the rows: training logs it
        summary[SETTINGS_KEY] = {"mlp_confidence": mlp_confidence}
    save_prompt_dataset(frame, out_dir, summary)
    log.info("%s/%s: %s", source, split_name, summary)
