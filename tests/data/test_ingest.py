"""Ingest checks what it consumes: checksums and encodings, on small written files."""

import functools
import gzip
import http.server
import threading

import pytest

from rbio.data import genes, stages
from rbio.data.ingest import ingest_perturbqa
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


def test_non_utf8_byte_fails_naming_file_and_line(raw):
    tables, aliases, known = raw(de_table("GAPDH").replace(b"SEPT7,GAPDH", b"SEPT7,G\xc1PDH"))
    with pytest.raises(EncodingError, match=f"{tables['k562'][0]}, line 5, column 8 "):
        ingest_perturbqa(tables, aliases, sha256=known)


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
    stages.acquire_alias_table(dest, source="remote", local_dir=tmp_path)
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
    stages.acquire_alias_table(dest, source="local", local_dir=data_dir)
    assert not sha256_record_path(dest).exists()
    assert genes.verify_alias_table(dest) == genes.HGNC_ALIAS_SHA256
