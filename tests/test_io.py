import gzip
import hashlib
import json

import numpy as np
import pytest

from rbio.io import (
    ChecksumError,
    EncodingError,
    atomic_path,
    read_csv_utf8,
    record_sha256,
    recorded_sha256,
    sha256_file,
    sha256_record_path,
    verify_acquired,
    write_json,
    write_safetensors,
)


def test_write_json_is_strict_json(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(
        path, {"auroc": float("nan"), "values": [np.float32(0.5), np.int64(3), float("inf")]}
    )
    assert json.loads(
        path.read_text(), parse_constant=lambda name: pytest.fail(f"non-JSON {name}")
    ) == {
        "auroc": None,
        "values": [0.5, 3, None],
    }


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list((tmp_path / "out").iterdir()) == []


def test_atomic_path_replaces_a_directory_whole(tmp_path):
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old.arrow").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.arrow").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.arrow"]


def test_safetensors_bytes_do_not_depend_on_metadata_order(tmp_path):
    from safetensors.numpy import load_file, save

    tensors = {"b": np.ones(3, dtype=np.float32), "a": np.arange(4, dtype=np.float32)}
    written = []
    for index, metadata in enumerate(
        (
            {"split": "loco_k562", "embedding": "go_svd"},
            {"embedding": "go_svd", "split": "loco_k562"},
        )
    ):
        path = tmp_path / f"{index}.safetensors"
        write_safetensors(save(tensors, metadata=metadata), path)
        written.append(path.read_bytes())
        loaded = load_file(path)
        assert all((loaded[name] == tensors[name]).all() for name in tensors)
    assert written[0] == written[1]
    size = int.from_bytes(written[0][:8], "little")
    assert size % 8 == 0 and json.loads(written[0][8 : 8 + size])["__metadata__"] == metadata


def test_verify_acquired_names_file_digests_and_how_to_recover(tmp_path):
    path = tmp_path / "k562-de.csv"
    path.write_text("pert,gene,label,split\n")
    expected = hashlib.sha256(b"the acquired bytes").hexdigest()
    with pytest.raises(ChecksumError) as error:
        verify_acquired(path, expected, "the upstream release")
    message = str(error.value)
    for part in (str(path), expected, sha256_file(path), "the upstream release", "delete it"):
        assert part in message
    assert verify_acquired(path, [expected, sha256_file(path)]) == sha256_file(path)


def test_sha256_record_sits_beside_the_file_in_sha256sum_format(tmp_path):
    path = tmp_path / "hgnc_aliases.tsv.gz"
    assert recorded_sha256(path) is None
    record_sha256(path, "ab" * 32)
    assert sha256_record_path(path).read_text() == f"{'ab' * 32}  hgnc_aliases.tsv.gz\n"
    assert recorded_sha256(path) == "ab" * 32
    sha256_record_path(path).write_text("not a digest\n")
    with pytest.raises(ChecksumError, match="hgnc_aliases.tsv.gz.sha256: not a sha256 record"):
        recorded_sha256(path)


@pytest.mark.parametrize("compressed", [False, True])
def test_non_utf8_byte_names_file_line_and_offset(tmp_path, compressed):
    data = b"symbol\tapproved_symbol\nGAPDH\tGAPDH\nG\xc1PDH\tGAPDH\n"
    path = tmp_path / ("aliases.tsv.gz" if compressed else "aliases.tsv")
    path.write_bytes(gzip.compress(data) if compressed else data)
    with pytest.raises(EncodingError) as error:
        read_csv_utf8(path, sep="\t", dtype=str)
    message = str(error.value)
    assert message.startswith(f"{path}, line 3, column 2 (byte offset 36")
    assert "byte 0xc1 is not UTF-8" in message
    assert repr(b"G\xc1PDH\tGAPDH") in message
    assert ("decompressed" in message) == compressed


def test_read_csv_utf8_reads_utf8(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("symbol\nSEPTIN7\nCAFÉ\n", encoding="utf-8")
    assert read_csv_utf8(path)["symbol"].tolist() == ["SEPTIN7", "CAFÉ"]
