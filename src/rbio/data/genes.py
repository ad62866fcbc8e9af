"""Gene-symbol normalisation with the HGNC alias table.

PerturbQA inherits symbols from the Perturb-seq screens (2022-2024 annotations); HGNC has renamed
some since (e.g. SEPT7 -> SEPTIN7). We map a symbol to its approved symbol only when the mapping is
unique and the symbol is not itself approved, so no two distinct source symbols collapse silently.

A symbol that the alias table does not know is one of two things (SymbolMap.defect decides):
- clean (printable ASCII, no whitespace, upper case as HGNC writes it): a defined result, kept as
  written with status "unmapped" and reported with its file, line and nearest HGNC symbol. The
  upstream tables hold two: AC118549.1 (an Ensembl clone name, which HGNC does not name) and
  GATD3B (absent from the pinned table).
- corrupt (whitespace, a non-ASCII or non-printable character, lower case where HGNC writes upper
  case): an error. The upstream tables hold none, so such a symbol means a damaged or edited file,
  and normalising it silently would hide the damage.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from rbio.io import read_csv_utf8, recorded_sha256, verify_acquired

HGNC_COMPLETE_SET_URL = (
    "https://storage.googleapis.com/public-download-files/hgnc/tsv/tsv/hgnc_complete_set.txt"
)
# The pinned offline table, relative to the data folder, and its sha256 (see its PROVENANCE.md).
HGNC_ALIAS_SHA256 = "800654a4806074d2c3f7696f60a27ac1c1da3fac6122bf2c061a381609753189"


@dataclass(frozen=True)
class SymbolMap:
    """symbol -> approved symbol, built from (symbol, approved_symbol) rows."""

    approved: frozenset[str]
    unique_alias: dict[str, str]
    ambiguous: frozenset[str]

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> SymbolMap:
        missing = {"symbol", "approved_symbol"} - set(table.columns)
        if missing:
            raise ValueError(
                f"HGNC alias table lacks column(s) {sorted(missing)}; has {list(table.columns)}"
            )
        table = table.dropna(subset=["symbol", "approved_symbol"]).drop_duplicates(
            ["symbol", "approved_symbol"]
        )
        approved = frozenset(table["approved_symbol"])
        aliases = table[~table["symbol"].isin(approved)]
        targets = aliases.groupby("symbol")["approved_symbol"].nunique()
        unique = aliases[aliases["symbol"].isin(targets[targets == 1].index)]
        return cls(
            approved=approved,
            unique_alias=dict(zip(unique["symbol"], unique["approved_symbol"], strict=True)),
            ambiguous=frozenset(targets[targets > 1].index),
        )

    def classify(self, symbol: str) -> tuple[str, str]:
        """(normalised symbol, status) with status approved | remapped | ambiguous | unmapped."""
        if symbol in self.approved:
            return symbol, "approved"
        if symbol in self.unique_alias:
            return self.unique_alias[symbol], "remapped"
        if symbol in self.ambiguous:
            return symbol, "ambiguous"
        return symbol, "unmapped"

    @cached_property
    def _known_by_upper(self) -> dict[str, str]:
        # HGNC has no two symbols that differ in case only (none in the pinned table), so the
        # upper-case form identifies a symbol.
        known = self.approved | self.unique_alias.keys() | self.ambiguous
        return {symbol.upper(): symbol for symbol in sorted(known)}

    @cached_property
    def _nearest_found(self) -> dict[str, str | None]:
        return {}  # a symbol recurs in several files, and one search takes a fraction of a second

    def nearest(self, symbol: str) -> str | None:
        """The closest symbol the table knows, ignoring case and surrounding whitespace."""
        key = symbol.strip().upper()
        if key not in self._nearest_found:
            close = [key] if key in self._known_by_upper else []
            close = close or difflib.get_close_matches(key, self._known_by_upper.keys(), n=1)
            self._nearest_found[key] = self._known_by_upper[close[0]] if close else None
        return self._nearest_found[key]

    def defect(self, symbol: str) -> str | None:
        """Why ``symbol`` is corrupt rather than a gene symbol; None when it is known or clean."""
        if symbol in self.approved or symbol in self.unique_alias or symbol in self.ambiguous:
            return None
        if symbol != symbol.strip():
            return "has leading or trailing whitespace"
        if not (symbol.isascii() and symbol.isprintable()):
            return "contains a non-ASCII or non-printable character"
        if any(char.isspace() for char in symbol):
            return "contains whitespace"
        if symbol.upper() in self._known_by_upper:
            return "is in the wrong case"
        # Every symbol of the pinned table is upper case but for the "orf" of open reading frames
        # (C1orf131): other lower-case letters are a corrupted or hand-typed symbol.
        if any(char.islower() for char in symbol.replace("orf", "")):
            return "is in lower case (HGNC writes upper case, but for the 'orf' of C1orf131)"
        return None


def read_alias_table(path: str | Path) -> pd.DataFrame:
    """The offline table (``symbol, approved_symbol, chromosome``, see ../shared/data/hgnc_aliases)."""
    return read_csv_utf8(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])


def verify_alias_table(path: str | Path) -> str:
    """Check the alias table copy before it is read; return its sha256.

    The pinned offline table is accepted by its digest. HGNC republishes its complete set
    continuously, so a table built from a download has no digest to pin; what is known is that the
    copy is the one the acquire step wrote, so that step records its digest beside the copy
    (rbio.io.record_sha256) and the copy must still match it.
    """
    recorded = recorded_sha256(path)
    if recorded is None:
        return verify_acquired(path, HGNC_ALIAS_SHA256, "the pinned HGNC alias table")
    return verify_acquired(
        path,
        [HGNC_ALIAS_SHA256, recorded],
        "the pinned HGNC alias table, or the HGNC download recorded beside the copy",
    )


def alias_table_from_hgnc_complete_set(path: str | Path) -> pd.DataFrame:
    """Build the alias table from HGNC's ``hgnc_complete_set.txt`` (approved, alias and previous symbols)."""
    hgnc = read_csv_utf8(path, sep="\t", dtype=str, keep_default_na=False)
    hgnc = hgnc[hgnc["status"] == "Approved"] if "status" in hgnc.columns else hgnc
    rows = [pd.DataFrame({"symbol": hgnc["symbol"], "approved_symbol": hgnc["symbol"]})]
    for column in ("alias_symbol", "prev_symbol"):
        exploded = hgnc[["symbol", column]].assign(
            **{column: hgnc[column].str.strip('"').str.split("|")}
        )
        exploded = exploded.explode(column)
        exploded = exploded[exploded[column].fillna("") != ""]
        rows.append(
            pd.DataFrame({"symbol": exploded[column], "approved_symbol": exploded["symbol"]})
        )
    return pd.concat(rows, ignore_index=True).drop_duplicates()


@dataclass
class NormalisationReport:
    counts: Counter = field(default_factory=Counter)
    remapped: dict[str, str] = field(default_factory=dict)
    unmapped: set[str] = field(default_factory=set)
    ambiguous: set[str] = field(default_factory=set)
    kept_to_avoid_collision: set[str] = field(default_factory=set)

    def as_dict(self) -> dict:
        return {
            "distinct_symbols": sum(self.counts.values()),
            "status_counts": dict(self.counts),
            "remapped": dict(sorted(self.remapped.items())),
            "ambiguous": sorted(self.ambiguous),
            "unmapped": sorted(self.unmapped),
            "kept_to_avoid_collision": sorted(self.kept_to_avoid_collision),
        }


def normalise_symbols(
    symbols: pd.Series | list[str], symbol_map: SymbolMap
) -> tuple[dict[str, str], NormalisationReport]:
    """Map each distinct symbol to its normalised form.

    A symbol is remapped only if its approved name is not already used by another symbol of the
    same set: otherwise two different measurements would merge into one gene.
    """
    distinct = sorted(set(symbols))
    present = set(distinct)
    report = NormalisationReport()
    mapping: dict[str, str] = {}
    for symbol in distinct:
        normalised, status = symbol_map.classify(symbol)
        if status == "remapped" and normalised in present:
            normalised, status = symbol, "kept_to_avoid_collision"
            report.kept_to_avoid_collision.add(symbol)
        report.counts[status] += 1
        if status == "remapped":
            report.remapped[symbol] = normalised
        elif status == "unmapped":
            report.unmapped.add(symbol)
        elif status == "ambiguous":
            report.ambiguous.add(symbol)
        mapping[symbol] = normalised
    # Two aliases may still share an approved target: keep both original names then.
    targets = Counter(mapping.values())
    for symbol, normalised in list(mapping.items()):
        if normalised != symbol and targets[normalised] > 1:
            mapping[symbol] = symbol
            report.remapped.pop(symbol, None)
            report.counts["remapped"] -= 1
            report.counts["kept_to_avoid_collision"] += 1
            report.kept_to_avoid_collision.add(symbol)
    return mapping, report
