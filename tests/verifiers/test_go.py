"""GAF 2.2 / OBO parsers on files the tests write, and the offline GO index on the real data."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from rbio.verifiers import go

GAF = """!gaf-version: 2.2
!generated-by: test
UniProtKB\tP00001\tGENEA\tenables\tGO:0000002\tPMID:1\tIDA\t\tF\tgene a\t\tprotein\ttaxon:9606\t20240101\tUniProt\t\t
UniProtKB\tP00001\tGENEA\tNOT|located_in\tGO:0000005\tPMID:1\tIDA\t\tC\tgene a\t\tprotein\ttaxon:9606\t20240101\tUniProt\t\t
UniProtKB\tP00002\tGENEB\tlocated_in\tGO:0000006\tPMID:2\tIEA\t\tC\tgene b\t\tprotein\ttaxon:9606\t20240101\tUniProt\t\t
UniProtKB\tP00002\tGENEB\tinvolved_in\tGO:0000009\tPMID:2\tIEA\t\tP\tgene b\t\tprotein\ttaxon:9606\t20240101\tUniProt\t\t
UniProtKB\tP00003\tGENEC\tenables\tGO:0000004\tPMID:3\tIDA\t\tF\tgene c\t\tprotein\ttaxon:9606\t20240101\tUniProt\t\t
"""

OBO = """format-version: 1.2
data-version: releases/2024-01-17

[Term]
id: GO:0000001
name: molecular_function
namespace: molecular_function

[Term]
id: GO:0000002
name: binding
namespace: molecular_function
alt_id: GO:0000004
is_a: GO:0000001 ! molecular_function

[Term]
id: GO:0000003
name: cellular_component
namespace: cellular_component

[Term]
id: GO:0000005
name: nucleus
namespace: cellular_component
is_a: GO:0000003 ! cellular_component

[Term]
id: GO:0000006
name: nucleolus
namespace: cellular_component
relationship: part_of GO:0000005 ! nucleus

[Term]
id: GO:0000009
name: old process
namespace: biological_process
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


@pytest.fixture
def go_files(tmp_path):
    gaf = tmp_path / "goa_test.gaf.gz"
    with gzip.open(gaf, "wt") as handle:
        handle.write(GAF)
    obo = tmp_path / "go-basic.obo"
    obo.write_text(OBO)
    return gaf, obo


def test_parse_gaf_drops_not_and_reads_columns(go_files):
    gaf = go.parse_gaf(go_files[0])
    assert len(gaf) == 4
    assert set(gaf["symbol"]) == {"GENEA", "GENEB", "GENEC"}
    assert not gaf["negated"].any()
    kept = go.parse_gaf(go_files[0], keep_negated=True)
    assert kept["negated"].sum() == 1


def test_parse_obo_terms_alt_ids_and_relations(go_files):
    ontology = go.parse_obo(go_files[1])
    assert len(ontology.terms) == 6  # the Typedef stanza is not a term
    assert ontology.primary("GO:0000004") == "GO:0000002"
    assert ontology.ancestors("GO:0000006") == {"GO:0000006", "GO:0000005", "GO:0000003"}
    without_part_of = go.parse_obo(go_files[1], relations=())
    assert without_part_of.ancestors("GO:0000006") == {"GO:0000006"}
    obsolete = ontology.terms.set_index("go_id")["is_obsolete"]
    assert obsolete["GO:0000009"] and not obsolete["GO:0000002"]


def test_index_from_gaf_direct_and_propagated(go_files):
    direct, propagated = go.index_from_gaf(go.parse_gaf(go_files[0]), go.parse_obo(go_files[1]))
    assert list(direct.columns) == list(go.INDEX_COLUMNS)
    rows = set(direct.itertuples(index=False, name=None))
    # alt_id GO:0000004 -> GO:0000002; the obsolete term and the NOT row are gone.
    assert rows == {
        ("GENEA", "F", "GO:0000002", "binding"),
        ("GENEB", "C", "GO:0000006", "nucleolus"),
        ("GENEC", "F", "GO:0000002", "binding"),
    }
    geneb = set(propagated.loc[propagated["gene"] == "GENEB", "go_id"])
    assert geneb == {"GO:0000006", "GO:0000005", "GO:0000003"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("UniProtKB\tP1\tG\tenables\tGO:1\tPMID\tIDA\n", "columns"),
        ("UniProtKB\tP1\tG\tenables\tXX:1" + "\tx" * 3 + "\tF" + "\tx" * 8 + "\n", "GO id"),
        ("UniProtKB\tP1\tG\tenables\tGO:1" + "\tx" * 3 + "\tZ" + "\tx" * 8 + "\n", "aspect"),
    ],
)
def test_parse_gaf_bad_rows_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.gaf"
    path.write_text("!gaf-version: 2.2\n" + line)
    with pytest.raises(go.GoFormatError, match=rf"bad.gaf, line 2: .*{message}"):
        go.parse_gaf(path)


def test_edge_files_keep_direct_rows_only(tmp_path):
    edges = tmp_path / "edges.csv"
    pd.DataFrame(
        {
            "source_id": [1, 1, 2, 99],
            "target_id": ["GO:0000005", "GO:0000003", "GO:0000005", "GO:0000005"],
            "type": ["direct", "inferred", "direct", "direct"],
            "experimental": [True, False, False, True],
        }
    ).to_csv(edges, index=False)
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("identifier,name\nGO:0000005,nucleus\nGO:0000003,cellular_component\n")
    genes = tmp_path / "genes.csv"
    genes.write_text('"GeneID","Symbol"\n"1","GENEA"\n"2","GENEB"\n')
    direct, propagated = go.index_from_edge_files({"C": edges}, {"C": nodes}, genes)
    assert direct.to_dict("records") == [
        {"gene": "GENEA", "aspect": "C", "go_id": "GO:0000005", "go_name": "nucleus"},
        {"gene": "GENEB", "aspect": "C", "go_id": "GO:0000005", "go_name": "nucleus"},
    ]
    assert len(propagated) == 3  # GeneID 99 is not in the gene table


def test_edge_file_bad_type(tmp_path):
    edges = tmp_path / "edges.csv"
    edges.write_text("source_id,target_id,type\n1,GO:0000005,maybe\n")
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("identifier,name\nGO:0000005,nucleus\n")
    genes = tmp_path / "genes.csv"
    genes.write_text("GeneID,Symbol\n1,GENEA\n")
    with pytest.raises(go.GoFormatError, match="edges.csv, line 2: type 'maybe'"):
        go.index_from_edge_files({"C": edges}, {"C": nodes}, genes)


def test_real_offline_index_and_perturbqa_coverage(data_dir, tmp_path):
    direct, propagated, provenance = go.load_go("local", data_dir, tmp_path)
    assert set(direct["aspect"]) == {"C", "F", "P"}
    assert direct["go_id"].str.match(r"^GO:\d{7}$").all()
    assert direct["go_name"].str.len().gt(0).all()
    # Direct annotations are a strict subset of the propagated ones.
    assert len(direct.merge(propagated, on=["gene", "aspect", "go_id"])) == len(direct)
    assert len(propagated) > 3 * len(direct)
    tp53 = direct[direct["gene"] == "TP53"]
    assert {"C", "F", "P"} <= set(tp53["aspect"])
    perturbqa = pd.concat(
        pd.read_csv(data_dir / "perturbqa" / f"{line}-de.csv", usecols=["pert", "gene"])
        for line in ("k562", "rpe1", "hepg2", "jurkat")
    )
    report = go.coverage_report(direct, propagated, set(perturbqa["pert"]) | set(perturbqa["gene"]))
    assert 0.95 <= report["perturbqa_coverage"] <= 1.0
    assert provenance["source"] == "local"
