"""PerturbQA tables: acquisition with checksums, strict parsing, and the tidy ingest table.

Source: Wu et al., "Contextualizing biological perturbation experiments through language",
ICLR 2025 (genentech/PerturbQA, data CC BY 4.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rbio.data.folder import local_table
from rbio.data.genes import SymbolMap
from rbio.io import ChecksumError, copy_verified, download_verified, read_csv_utf8, verify_acquired

UPSTREAM_URL = (
    "https://raw.githubusercontent.com/genentech/PerturbQA/main/perturbqa/datasets/{name}"
)

# sha256 of the upstream files (../shared/data/perturbqa/PROVENANCE.md).
SHA256: dict[str, str] = {
    "k562-de.csv": "e6ab095f3f970bb29f48427414904136785e8cd4945496f8d9a8fa6eab35ee67",
    "k562-dir.csv": "84a0bc9631b33b8720663ed69506a316dad0f686a51f702f277914cc722000f4",
    "rpe1-de.csv": "a66a86aac5db458e0703bccf7f2d638769400a7ccb9f2615cd9421c106b748ca",
    "rpe1-dir.csv": "25fa0b37c7e86cd73e8135b83513ea9d96c55e5a6c3f222ffbb531b91ab0fb0c",
    "hepg2-de.csv": "f94045fb44dcca4af9c69bee5c87de624590061a1123d55d9ee42a9c1ca97932",
    "hepg2-dir.csv": "8c642ab6e6996887dce6c774d5fc58546970ba9216a636c7547b5039062a2cc3",
    "jurkat-de.csv": "cf993f77015bd7df9d71ce9cf1170f6c8e64a571dc6f9ba0aef411ffb103eec5",
    "jurkat-dir.csv": "8e17055a5bbf8c2751317db5284a9e793a2dc5aaccef0afbcdaf87daabc45709",
}

COLUMNS = ("pert", "gene", "label", "split")
SYMBOL_COLUMNS = ("pert", "gene")
SPLIT_VALUES = ("train", "test")
# Row i of a parsed table (0-based) is line i + 2 of the file: line 1 is the header. This holds
# because read_table keeps blank lines as (failing) rows, and because the tables quote nothing (a
# quoted field spanning two lines would shift the line numbers of the rows after it).
FIRST_ROW_LINE = 2


class PerturbQAFormatError(ValueError):
    """A malformed PerturbQA file; the message names the file and line."""


def acquire_table(name: str, dest: str | Path, *, origin: str, local_dir: str | Path | None) -> str:
    """Put one PerturbQA file at ``dest`` (local copy or upstream download), sha256-verified."""
    expected = SHA256.get(name)
    if origin == "local":
        return copy_verified(Path(local_dir) / local_table(name), dest, expected)
    if origin == "remote":
        return download_verified(UPSTREAM_URL.format(name=name), dest, expected)
    raise ValueError(f"unknown data origin '{origin}'; valid: local, remote")


def verify_table(path: str | Path, known: Mapping[str, str] = SHA256) -> str:
    """Check a copy against the sha256 known for its file name, before it is parsed."""
    name = Path(path).name
    if name not in known:
        raise ChecksumError(
            f"{path}: no known sha256 for a file named {name}; known: {sorted(known)}"
        )
    return verify_acquired(path, known[name], f"the PerturbQA release's {name}")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a ``{line}-{de,dir}.csv`` file; stop at the first malformed row with its line number.

    Parsing only: the caller checks the file first (verify_table), as ingest does.
    """
    path = Path(path)
    try:
        # Blank lines are kept (they fail as empty rows) so that row numbers stay line numbers.
        frame = read_csv_utf8(
            path, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False
        )
    except pd.errors.ParserError as error:
        raise PerturbQAFormatError(f"{path}: {error}") from None
    except pd.errors.EmptyDataError:
        raise PerturbQAFormatError(f"{path}: the file is empty") from None
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise PerturbQAFormatError(
            f"{path}: missing column(s) {missing}; header is {list(frame.columns)}"
        )
    frame = frame[list(COLUMNS)]

    def fail(mask: np.ndarray, what: str) -> None:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise PerturbQAFormatError(
                f"{path}, line {row + FIRST_ROW_LINE}: {what} (row: {frame.iloc[row].to_dict()}); "
                f"{int(mask.sum())} such row(s) in the file"
            )

    # Short rows are padded with NaN by the parser even with na_filter off.
    for column in COLUMNS:
        values = frame[column]
        fail(
            (values.isna() | (values.str.strip() == "")).to_numpy(), f"empty or missing '{column}'"
        )
    fail(~frame["label"].isin(["0", "1"]).to_numpy(), "label is not 0 or 1")
    fail(~frame["split"].isin(SPLIT_VALUES).to_numpy(), f"split is not one of {list(SPLIT_VALUES)}")
    fail(frame.duplicated(["pert", "gene"]).to_numpy(), "duplicate (pert, gene) pair")
    frame["label"] = frame["label"].astype(np.int8)
    return frame


@dataclass(frozen=True)
class UnmappedSymbol:
    """A clean symbol the HGNC table does not know, where it occurs in one file."""

    symbol: str
    file: str
    column: str
    first_line: int
    rows: int
    nearest_hgnc: str | None


def check_symbols(
    frame: pd.DataFrame, path: str | Path, symbols: SymbolMap, shown: int = 10
) -> list[UnmappedSymbol]:
    """Fail on corrupt gene symbols of a parsed table; return its clean but unknown ones.

    What is corrupt and what is a defined result is set out in rbio.data.genes. The error lists
    the first ``shown`` corrupt symbols, each with its first line and nearest HGNC symbol.
    """
    corrupt: list[tuple[int, str, str, str, int]] = []
    unmapped: list[UnmappedSymbol] = []
    for column in SYMBOL_COLUMNS:
        for symbol, positions in frame.groupby(column, sort=False).indices.items():
            if symbols.classify(symbol)[1] != "unmapped":
                continue
            line = int(positions[0]) + FIRST_ROW_LINE
            defect = symbols.defect(symbol)
            if defect is not None:
                corrupt.append((line, column, symbol, defect, len(positions)))
                continue
            nearest = symbols.nearest(symbol)
            unmapped.append(
                UnmappedSymbol(symbol, str(path), column, line, len(positions), nearest)
            )
    if corrupt:
        described = [
            f"line {line}, column '{column}': {symbol!r} {defect} ({rows} row(s)); "
            f"nearest HGNC symbol: {symbols.nearest(symbol)}"
            for line, column, symbol, defect, rows in sorted(corrupt)[:shown]
        ]
        raise PerturbQAFormatError(
            f"{path}: {len(corrupt)} corrupt gene symbol(s); the upstream release has none, so the"
            " file was damaged or edited:\n  " + "\n  ".join(described)
        )
    return sorted(unmapped, key=lambda item: (item.first_line, item.column))


@dataclass(frozen=True)
class LineTables:
    """One cell line's DE table with directions attached, and what did not line up."""

    table: pd.DataFrame
    direction_without_de: int


def merge_direction(de: pd.DataFrame, direction: pd.DataFrame) -> LineTables:
    """Attach the direction task (1 = up, 0 = down) to the DE pairs it describes."""
    dir_frame = direction[["pert", "gene", "label"]].rename(columns={"label": "dir_label"})
    merged = de.merge(dir_frame, on=["pert", "gene"], how="left", validate="one_to_one")
    merged["direction"] = pd.Series(
        np.where(
            merged["dir_label"].isna(), None, np.where(merged["dir_label"] == 1, "up", "down")
        ),
        dtype="string",
    )
    matched = merged["dir_label"].notna().sum()
    return LineTables(
        table=merged.drop(columns="dir_label"), direction_without_de=int(len(dir_frame) - matched)
    )
