"""The ingest step: every cell line's DE + direction tables -> one tidy, symbol-normalised table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from rbio.data.genes import SymbolMap, normalise_symbols, read_alias_table, verify_alias_table
from rbio.data.perturbqa import (
    SHA256,
    UnmappedSymbol,
    check_symbols,
    merge_direction,
    read_table,
    verify_table,
)

TIDY_COLUMNS = [
    "cell_line",
    "pert",
    "gene",
    "pert_original",
    "gene_original",
    "label",
    "direction",
    "split",
]


def verify_inputs(
    tables: Mapping[str, tuple[str | Path, str | Path]],
    alias_table: str | Path,
    sha256: Mapping[str, str],
) -> dict[str, str]:
    """Check every file ingest consumes before any is parsed; return {path: sha256}."""
    digests = {str(path): verify_table(path, sha256) for pair in tables.values() for path in pair}
    digests[str(alias_table)] = verify_alias_table(alias_table)
    return digests


def read_line_tables(
    de_path: str | Path, dir_path: str | Path, symbols: SymbolMap
) -> tuple[pd.DataFrame, dict, list[UnmappedSymbol]]:
    """One cell line's DE table with directions: (table, its counts, its unknown symbols)."""
    de = read_table(de_path)
    unmapped = check_symbols(de, de_path, symbols)
    direction = read_table(dir_path)
    unmapped += check_symbols(direction, dir_path, symbols)
    merged = merge_direction(de, direction)
    if merged.direction_without_de:
        raise ValueError(
            f"{dir_path}: {merged.direction_without_de} direction row(s) have no matching pair in {de_path}"
        )
    stats = {
        "de_rows": len(de),
        "positives": int(de["label"].sum()),
        "positive_rate": round(float(de["label"].mean()), 4),
        "train_rows": int((de["split"] == "train").sum()),
        "test_rows": int((de["split"] == "test").sum()),
        "perturbations": int(de["pert"].nunique()),
        "genes": int(de["gene"].nunique()),
        "with_direction": int(merged.table["direction"].notna().sum()),
    }
    return merged.table, stats, unmapped


def ingest_perturbqa(
    tables: Mapping[str, tuple[str | Path, str | Path]],
    alias_table: str | Path,
    *,
    sha256: Mapping[str, str] = SHA256,
) -> tuple[pd.DataFrame, dict]:
    """Read ``{line: (de_csv, dir_csv)}``, normalise symbols, return (tidy table, report).

    Each file is checked before it is parsed: a PerturbQA table against the sha256 of its file
    name in ``sha256`` (the upstream release by default), the alias table by verify_alias_table.
    Corrupt gene symbols fail; clean unknown ones are kept and reported with file, line and the
    nearest HGNC symbol (check_symbols). The tidy table has exactly one row per source DE row
    (checked), in source order per line.
    """
    inputs = verify_inputs(tables, alias_table, sha256)
    symbol_map = SymbolMap.from_table(read_alias_table(alias_table))
    frames = []
    per_line: dict[str, dict] = {}
    unmapped: list[UnmappedSymbol] = []
    for line, (de_path, dir_path) in tables.items():
        frame, per_line[line], found = read_line_tables(de_path, dir_path, symbol_map)
        frames.append(frame.assign(cell_line=line))
        unmapped += found
    table = pd.concat(frames, ignore_index=True)

    mapping, symbol_report = normalise_symbols(
        pd.concat([table["pert"], table["gene"]]), symbol_map
    )
    table = table.rename(columns={"pert": "pert_original", "gene": "gene_original"})
    table["pert"] = table["pert_original"].map(mapping)
    table["gene"] = table["gene_original"].map(mapping)
    for column in ("cell_line", "pert", "gene", "pert_original", "gene_original", "split"):
        table[column] = table[column].astype("string")

    duplicated = table.duplicated(["cell_line", "pert", "gene"])
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise ValueError(
            f"symbol normalisation merged two pairs of {first['cell_line']}: "
            f"({first['pert_original']}, {first['gene_original']}) -> ({first['pert']}, {first['gene']})"
        )
    expected = sum(stats["de_rows"] for stats in per_line.values())
    if len(table) != expected:  # a merge that duplicated or dropped rows is a bug, not bad input
        raise AssertionError(f"ingest produced {len(table)} rows from {expected} source rows")

    report = {
        "rows": len(table),
        "inputs_sha256": inputs,
        "cell_lines": per_line,
        "gene_symbols": {
            **symbol_report.as_dict(),
            "unmapped_occurrences": [asdict(occurrence) for occurrence in unmapped],
        },
    }
    return table[TIDY_COLUMNS], report
