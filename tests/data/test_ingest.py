"""Ingest checks what it consumes: checksums, gene symbols and encodings, on small written files."""

import functools
import gzip
import http.server
import json
import logging
import threading

import pytest

from rbio.data import genes, perturbqa, stages
from rbio.data.ingest import ingest_perturbqa
from rbio.data.perturbqa import PerturbQAFormatError
from rbio.io import ChecksumError, EncodingError, record_sha256, sha256_file, sha256_record_path

ALIASES = (
    "symbol\tapproved_symbol\n"
    "GAPDH\tGAPDH\nACTB\tACTB\nTP53\tTP53\nSEPTIN7\tSEPTIN7\nSEPT7\tSEPTIN7\nC1orf131\tC1orf131\n"
)
DIRECTION = "pert,gene,label,split\nGAPDH,ACTB,1,train\n"


def de_table(symbol: str) -> bytes:
    """A DE table whose line 5 holds ``symbol`` in the gene column."""
    rows = f"GAPDH,ACTB,1,train\nGAPDH,TP53,0,train\nSEPT7,ACTB,0,test\nSEPT7,{symbol},1,test\n"
    return f"pert,gene,label,split\n{rows}".encode()


@pytest.fixture
def raw(tmp_path):
    """Write raw copies like the acquire rules do; return a function that writes a DE table and
    gives (tables, alias table, sha256 of the copies as written)."""
    folder = tmp_path / "raw" / "perturbqa"
    folder.mkdir(parents=True)
    aliases = tmp_path / "raw" / "hgnc_aliases.tsv.gz"
    aliases.write_bytes(gzip.compress(ALIASES.encode()))
    record_sha256(aliases, sha256_file(aliases))  # as acquire records an HGNC download
    (folder / "k562-dir.csv").write_text(DIRECTION)

    def make(de: bytes):
        (folder / "k562-de.csv").write_bytes(de)
        tables = {"k562": (folder / "k562-de.csv", folder / "k562-dir.csv")}
        known = {path.name: sha256_file(path) for path in tables["k562"]}
        return tables, aliases, known

    return make


def test_unknown_clean_symbol_is_kept_and_reported_with_file_line_and_nearest(raw):
    tables, aliases, known = raw(de_table("ACTBL9"))
    table, report = ingest_perturbqa(tables, aliases, sha256=known)
    assert len(table) == 4
    assert table["gene"].tolist()[-1] == table["gene_original"].tolist()[-1] == "ACTBL9"
    assert table["pert"].tolist()[-1] == "SEPTIN7"  # SEPT7 remapped as before
    symbols = report["gene_symbols"]
    assert symbols["unmapped"] == ["ACTBL9"]
    assert symbols["unmapped_occurrences"] == [
        {
            "symbol": "ACTBL9",
            "file": str(tables["k562"][0]),
            "column": "gene",
            "first_line": 5,
            "rows": 1,
            "nearest_hgnc": "ACTB",
        }
    ]


def test_ingest_reports_the_digests_it_verified(raw):
    tables, aliases, known = raw(de_table("GAPDH"))
    _, report = ingest_perturbqa(tables, aliases, sha256=known)
    assert report["inputs_sha256"] == {
        **{str(path): known[path.name] for path in tables["k562"]},
        str(aliases): sha256_file(aliases),
    }


def test_changed_copy_is_refused_before_parsing_with_file_digests_and_recovery(raw):
    tables, aliases, known = raw(de_table("GAPDH"))
    de = tables["k562"][0]
    de.write_bytes(de.read_bytes().replace(b"GAPDH,TP53,0", b"GAPDH,TP53,1"))
    with pytest.raises(ChecksumError) as error:
        ingest_perturbqa(tables, aliases, sha256=known)
    message = str(error.value)
    for part in (str(de), known["k562-de.csv"], sha256_file(de), "delete it"):
        assert part in message


def test_changed_alias_table_is_refused(raw):
    tables, aliases, known = raw(de_table("GAPDH"))
    aliases.write_bytes(gzip.compress(ALIASES.replace("TP53\tTP53", "TP53\tGAPDH").encode()))
    with pytest.raises(ChecksumError, match=f"{aliases}: sha256 .*HGNC download recorded beside"):
        ingest_perturbqa(tables, aliases, sha256=known)
    sha256_record_path(aliases).unlink()  # no record: only the pinned table is accepted
    with pytest.raises(ChecksumError, match=f"{genes.HGNC_ALIAS_SHA256} \\(the pinned HGNC"):
        ingest_perturbqa(tables, aliases, sha256=known)


@pytest.mark.parametrize(
    ("symbol", "defect", "nearest"),
    [
        ("G\x01PDH", "non-printable character", "GAPDH"),  # a flipped bit: A (0x41) -> 0x01
        ("GAPDΗ", "non-ASCII", "GAPDH"),  # Greek capital eta for H
        ("gapdh", "is in the wrong case", "GAPDH"),
        ("C1ORF131", "is in the wrong case", "C1orf131"),
        ("tp53x", "is in lower case", "TP53"),
        (" GAPDH", "leading or trailing whitespace", "GAPDH"),
        ("GAPDH ", "leading or trailing whitespace", "GAPDH"),
        ("GAP DH", "contains whitespace", "GAPDH"),
    ],
)
def test_corrupt_symbol_fails_naming_file_line_and_nearest_symbol(raw, symbol, defect, nearest):
    # The checksums are those of the corrupt file: the check behind them is what must fail.
    tables, aliases, known = raw(de_table(symbol))
    with pytest.raises(PerturbQAFormatError) as error:
        ingest_perturbqa(tables, aliases, sha256=known)
    message = str(error.value)
    assert message.startswith(f"{tables['k562'][0]}: 1 corrupt gene symbol(s)")
    assert f"line 5, column 'gene': {symbol!r} " in message
    assert defect in message
    assert f"nearest HGNC symbol: {nearest}" in message


def test_non_utf8_byte_fails_naming_file_and_line(raw):
    tables, aliases, known = raw(de_table("GAPDH").replace(b"SEPT7,GAPDH", b"SEPT7,G\xc1PDH"))
    with pytest.raises(EncodingError, match=f"{tables['k562'][0]}, line 5, column 8 "):
        ingest_perturbqa(tables, aliases, sha256=known)


def test_ingest_stage_logs_unknown_symbols(raw, tmp_path, monkeypatch, caplog):
    tables, aliases, known = raw(de_table("ACTBL9"))
    for name, digest in known.items():  # the stage checks against the release's own digests
        monkeypatch.setitem(perturbqa.SHA256, name, digest)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="rbio"):
        stages.ingest(
            ["k562"],
            [str(tables["k562"][0])],
            [str(tables["k562"][1])],
            str(aliases),
            str(out / "table.parquet"),
            str(out / "report.json"),
        )
    warning = next(record for record in caplog.records if record.levelno == logging.WARNING)
    assert warning.getMessage() == (
        f"{tables['k562'][0]}, line 5, column 'gene': 'ACTBL9' is not an HGNC symbol or alias"
        " (nearest: ACTB); kept as written in its 1 row(s)"
    )
    report = json.loads((out / "report.json").read_text())
    assert report["gene_symbols"]["unmapped_occurrences"][0]["first_line"] == 5


@pytest.fixture
def hgnc_server(tmp_path, monkeypatch):
    """Serve a small hgnc_complete_set.txt where acquire_alias_table downloads it from."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "hgnc_complete_set.txt").write_text(
        "hgnc_id\tsymbol\tstatus\talias_symbol\tprev_symbol\n"
        "HGNC:1\tSEPTIN7\tApproved\tCDC10\tSEPT7\n"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hgnc_complete_set.txt"
    monkeypatch.setattr(genes, "HGNC_COMPLETE_SET_URL", url)
    yield
    server.shutdown()


def test_remote_alias_table_is_checked_against_the_digest_recorded_at_acquisition(
    tmp_path, hgnc_server
):
    dest = tmp_path / "raw" / "hgnc_aliases.tsv.gz"
    stages.acquire_alias_table(dest, origin="remote", local_dir=tmp_path)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name, f"{dest.name}.sha256"]
    assert genes.verify_alias_table(dest) == sha256_file(dest)
    assert genes.SymbolMap.from_table(genes.read_alias_table(dest)).classify("SEPT7") == (
        "SEPTIN7",
        "remapped",
    )
    dest.write_bytes(gzip.compress(b"symbol\tapproved_symbol\nSEPT7\tTP53\n"))
    with pytest.raises(ChecksumError, match=str(dest)):
        genes.verify_alias_table(dest)


def test_local_alias_table_drops_a_stale_record(tmp_path, data_dir):
    dest = tmp_path / "raw" / "hgnc_aliases.tsv.gz"
    dest.parent.mkdir()
    record_sha256(dest, "0" * 64)  # left by an earlier remote acquisition
    stages.acquire_alias_table(dest, origin="local", local_dir=data_dir)
    assert not sha256_record_path(dest).exists()
    assert genes.verify_alias_table(dest) == genes.HGNC_ALIAS_SHA256
