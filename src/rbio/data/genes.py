"""Gene-symbol normalisation with the HGNC alias table.

PerturbQA inherits symbols from the Perturb-seq screens (2022-2024 annotations); HGNC has renamed
some since (e.g. SEPT7 -> SEPTIN7). We map a symbol to its approved symbol only when the mapping is
unique and the symbol is not itself approved, so no two distinct source symbols collapse silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rbio.io import read_csv_utf8, recorded_sha256, verify_acquired

HGNC_COMPLETE_SET_URL = (
    "https://storage.googleapis.com/public-download-files/hgnc/tsv/tsv/hgnc_complete_set.txt"
)
# The pinned offline table, relative to the data folder, and its sha256 (see its PROVENANCE.md).
HGNC_ALIAS_TABLE = "hgnc_aliases/hgnc_alias_to_approved.tsv.gz"
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
