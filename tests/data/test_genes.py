import pandas as pd

from rbio.data.genes import SymbolMap, alias_table_from_hgnc_complete_set, normalise_symbols

TABLE = pd.DataFrame(
    {
        "symbol": ["SEPTIN7", "SEPT7", "TWNK", "C10orf2", "MPP6", "MPP6", "PALS2", "AARS1", "AARS"],
        "approved_symbol": [
            "SEPTIN7",
            "SEPTIN7",
            "TWNK",
            "TWNK",
            "PALS2",
            "MPP6X",
            "PALS2",
            "AARS1",
            "AARS1",
        ],
    }
)


def test_classify_statuses():
    symbols = SymbolMap.from_table(TABLE)
    assert symbols.classify("SEPTIN7") == ("SEPTIN7", "approved")
    assert symbols.classify("SEPT7") == ("SEPTIN7", "remapped")
    assert symbols.classify("MPP6") == ("MPP6", "ambiguous")
    assert symbols.classify("NOTAGENE") == ("NOTAGENE", "unmapped")


def test_normalise_keeps_originals_that_would_collide():
    mapping, report = normalise_symbols(
        ["SEPT7", "C10orf2", "TWNK", "AARS", "XYZ"], SymbolMap.from_table(TABLE)
    )
    assert mapping["SEPT7"] == "SEPTIN7"
    assert mapping["AARS"] == "AARS1"
    # TWNK is already measured under its approved name: C10orf2 must not merge into it.
    assert mapping["C10orf2"] == "C10orf2"
    assert report.as_dict()["status_counts"] == {
        "remapped": 2,
        "kept_to_avoid_collision": 1,
        "approved": 1,
        "unmapped": 1,
    }
    assert report.as_dict()["kept_to_avoid_collision"] == ["C10orf2"]


def test_two_aliases_of_one_gene_both_kept():
    mapping, report = normalise_symbols(
        ["SEPT7", "SEPTIN7X"],
        SymbolMap.from_table(
            pd.concat(
                [TABLE, pd.DataFrame({"symbol": ["SEPTIN7X"], "approved_symbol": ["SEPTIN7"]})]
            )
        ),
    )
    assert mapping == {"SEPT7": "SEPT7", "SEPTIN7X": "SEPTIN7X"}
    assert report.counts["remapped"] == 0


def test_alias_table_from_hgnc_complete_set(tmp_path):
    path = tmp_path / "hgnc_complete_set.txt"
    path.write_text(
        "hgnc_id\tsymbol\tstatus\talias_symbol\tprev_symbol\n"
        "HGNC:1\tSEPTIN7\tApproved\tCDC10|NBLA02942\tSEPT7\n"
        'HGNC:2\tTWNK\tApproved\t\t"C10orf2"\n'
    )
    table = alias_table_from_hgnc_complete_set(path)
    symbols = SymbolMap.from_table(table)
    assert symbols.classify("SEPT7") == ("SEPTIN7", "remapped")
    assert symbols.classify("CDC10") == ("SEPTIN7", "remapped")
    assert symbols.classify("C10orf2") == ("TWNK", "remapped")
