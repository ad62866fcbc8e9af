import pandas as pd
import pytest

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


@pytest.mark.parametrize(
    ("symbol", "defect", "nearest"),
    [
        ("SEPT7", None, "SEPT7"),
        ("MPP6", None, "MPP6"),
        ("C10orf2", None, "C10orf2"),
        ("SEPTIN7B", None, "SEPTIN7"),  # unknown but clean: a defined result
        ("AC118549.1", None, None),  # an Ensembl clone name: nothing close enough
        (" SEPTIN7", "has leading or trailing whitespace", "SEPTIN7"),
        ("SEPTIN7\t", "has leading or trailing whitespace", "SEPTIN7"),
        ("SEP TIN7", "contains whitespace", "SEPTIN7"),
        ("S\x05PTIN7", "contains a non-ASCII or non-printable character", "SEPTIN7"),  # E ^ 0x40
        ("SEPTİN7", "contains a non-ASCII or non-printable character", "SEPTIN7"),
        ("septin7", "is in the wrong case", "SEPTIN7"),
        ("C10ORF2", "is in the wrong case", "C10orf2"),
        ("twnkl", "is in lower case", "TWNK"),
        ("TWNKl", "is in lower case", "TWNK"),
    ],
)
def test_defect_tells_corrupt_from_unknown_symbols(symbol, defect, nearest):
    symbols = SymbolMap.from_table(TABLE)
    found = symbols.defect(symbol)
    assert found == defect if defect is None else found.startswith(defect)
    assert symbols.nearest(symbol) == nearest


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
