import hashlib
import http.server
import threading
from pathlib import Path

import pandas as pd
import pytest

from rbio.data.perturbqa import (
    PerturbQAFormatError,
    acquire_table,
    merge_direction,
    read_table,
    verify_table,
)
from rbio.io import ChecksumError, EncodingError, download_verified

GOOD = "pert,gene,label,split\nA,B,1,train\nA,C,0,train\nD,B,0,test\n"


def write(tmp_path: Path, text: str, name: str = "k562-de.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_table_parses_labels_as_int(tmp_path):
    frame = read_table(write(tmp_path, GOOD))
    assert frame["label"].tolist() == [1, 0, 0]
    assert frame["split"].tolist() == ["train", "train", "test"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pert,gene,split\nA,B,train\n", "missing column(s) ['label']"),
        (GOOD + "E,F,2,train\n", "line 5: label is not 0 or 1"),
        (GOOD + "E,F,1,valid\n", "line 5: split is not one of"),
        (GOOD + ",F,1,train\n", "line 5: empty or missing 'pert'"),
        (GOOD + "E,F\n", "line 5: empty or missing 'label'"),
        (GOOD + "A,B,0,train\n", "line 5: duplicate (pert, gene) pair"),
        (GOOD + "E,F,1,train,extra\n", "Expected 4 fields in line 5"),
        (GOOD + "\nE,F,1,train\n", "line 5: empty or missing 'pert'"),  # blank lines keep lines
        ("", "the file is empty"),
    ],
)
def test_read_table_names_file_and_line_of_bad_rows(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PerturbQAFormatError) as error:
        read_table(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_non_utf8_byte_names_file_and_line(tmp_path):
    path = tmp_path / "k562-de.csv"
    path.write_bytes(GOOD.encode() + b"G\xc1PDH,B,1,train\n")
    with pytest.raises(EncodingError, match=f"{path}, line 5, column 2 .*byte 0xc1 is not UTF-8"):
        read_table(path)


def test_verify_table_refuses_a_changed_copy_and_unknown_names(tmp_path):
    path = write(tmp_path, GOOD)
    known = {"k562-de.csv": hashlib.sha256(GOOD.encode()).hexdigest()}
    assert verify_table(path, known) == known["k562-de.csv"]
    path.write_text(GOOD.replace("A,B,1", "A,B,0"))
    with pytest.raises(ChecksumError, match=f"{path}: sha256 .* delete it"):
        verify_table(path, known)
    with pytest.raises(ChecksumError, match="no known sha256 for a file named k562-de.csv"):
        verify_table(path, {})


def test_merge_direction_attaches_up_down(tmp_path):
    de = read_table(write(tmp_path, GOOD))
    direction = read_table(write(tmp_path, "pert,gene,label,split\nA,B,0,train\n", "k562-dir.csv"))
    merged = merge_direction(de, direction)
    assert merged.table["direction"].tolist()[0] == "down"
    assert merged.table["direction"].isna().tolist() == [False, True, True]
    assert merged.direction_without_de == 0


def test_acquire_local_verifies_checksum_and_leaves_nothing_on_mismatch(tmp_path, data_dir):
    dest = tmp_path / "out" / "k562-dir.csv"
    acquire_table("k562-dir.csv", dest, origin="local", local_dir=data_dir)
    assert dest.read_bytes() == (data_dir / "perturbqa" / "k562-dir.csv").read_bytes()

    fake = tmp_path / "fake" / "perturbqa"
    fake.mkdir(parents=True)
    (fake / "k562-de.csv").write_text(GOOD)
    with pytest.raises(ChecksumError, match="k562-de.csv"):
        acquire_table(
            "k562-de.csv", tmp_path / "out" / "k562-de.csv", origin="local", local_dir=fake.parent
        )
    assert not (tmp_path / "out" / "k562-de.csv").exists()


def test_acquire_local_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="rpe1-de.csv"):
        acquire_table("rpe1-de.csv", tmp_path / "x.csv", origin="local", local_dir=tmp_path)


class _Handler(http.server.BaseHTTPRequestHandler):
    body = GOOD.encode()
    truncate = False

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body) * (2 if self.truncate else 1)))
        self.end_headers()
        self.wfile.write(self.body)  # a truncated transfer: fewer bytes than announced

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/k562-de.csv"
    server.shutdown()
    _Handler.truncate = False


def test_download_verified_accepts_the_right_checksum(tmp_path, http_server):
    expected = hashlib.sha256(GOOD.encode()).hexdigest()
    dest = tmp_path / "k562-de.csv"
    assert download_verified(http_server, dest, expected) == expected
    assert dest.read_text() == GOOD


def test_download_with_wrong_checksum_leaves_no_file(tmp_path, http_server):
    dest = tmp_path / "k562-de.csv"
    with pytest.raises(ChecksumError, match="k562-de.csv"):
        download_verified(http_server, dest, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_partial_download_never_survives(tmp_path, http_server):
    _Handler.truncate = True
    dest = tmp_path / "k562-de.csv"
    with pytest.raises(Exception):  # noqa: B017 - requests raises its own ChunkedEncoding/ContentDecoding errors
        download_verified(http_server, dest, hashlib.sha256(GOOD.encode()).hexdigest())
    assert list(tmp_path.iterdir()) == []


def test_real_tables_parse(data_dir):
    frame = read_table(data_dir / "perturbqa" / "hepg2-de.csv")
    assert len(frame) == 126_889
    assert isinstance(frame, pd.DataFrame)
