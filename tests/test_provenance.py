"""Provenance records: digests, stability, and the `rbio provenance` command."""

from __future__ import annotations

import json

import pytest

from rbio import provenance
from rbio.cli import main
from rbio.io import sha256_file


def _record(tmp_path, **params):
    (tmp_path / "inputs").mkdir(exist_ok=True)
    table = tmp_path / "inputs" / "table.csv"
    table.write_text("a,b\n1,2\n")
    folder = tmp_path / "inputs" / "dataset"
    folder.mkdir(exist_ok=True)
    (folder / "part-0.arrow").write_bytes(b"rows")
    return (
        provenance.of_inputs(
            "make_split", {"split": "loco_k562"}, {"seed": 42, **params}, [table, folder]
        ),
        table,
        folder,
    )


def test_record_holds_settings_code_lock_and_input_digests(tmp_path):
    record, table, folder = _record(tmp_path, max_test_rows=64)
    stored = record.record()
    assert stored["params"] == {"seed": 42, "max_test_rows": 64}
    assert stored["params_digest"] == provenance.canonical_digest(stored["params"])
    assert stored["inputs"][0] == {"path": str(table), "sha256": sha256_file(table)}
    assert stored["inputs"][1]["sha256"] == provenance.path_digest(folder)
    assert stored["lock_digest"] == sha256_file(provenance.REPO / "uv.lock")
    assert stored["code_version"] not in ("", None)
    assert set(record.tags()) == set(provenance.TAGS)


def test_digest_changes_with_params_and_input_bytes_and_nothing_else(tmp_path):
    first, table, folder = _record(tmp_path)
    again, _, _ = _record(tmp_path)
    assert first.digest == again.digest, "same settings and inputs: same digest"
    assert _record(tmp_path, max_test_rows=1)[0].digest != first.digest
    (folder / "part-0.arrow").write_bytes(b"other rows")
    changed = provenance.of_inputs(first.rule, first.wildcards, first.params, [table, folder])
    assert changed.digest != first.digest
    # A folder's own record is not part of its content.
    before = provenance.path_digest(folder)
    first.write(folder / provenance.FILE_NAME)
    assert provenance.path_digest(folder) == before


def test_written_record_is_byte_stable(tmp_path):
    record, _, _ = _record(tmp_path)
    record.write(tmp_path / "a" / "provenance.json")
    record.write(tmp_path / "b" / "provenance.json")
    a, b = (tmp_path / name / "provenance.json" for name in "ab")
    assert a.read_bytes() == b.read_bytes()
    assert provenance.read(tmp_path / "a") == json.loads(a.read_text())


def test_cli_prints_a_record_for_a_person(tmp_path, capsys):
    record, table, _ = _record(tmp_path, max_test_rows=64)
    record.write(tmp_path / "split" / "provenance.json")
    assert main(["provenance", str(tmp_path / "split")]) == 0
    out = capsys.readouterr().out
    assert "make_split (split=loco_k562)" in out
    assert "max_test_rows = 64" in out
    assert sha256_file(table)[:16] in out and str(table) in out
    assert main(["provenance", "--json", str(tmp_path / "split")]) == 0
    assert json.loads(capsys.readouterr().out)["digest"] == record.digest


@pytest.mark.parametrize("content", [None, "not json"])
def test_cli_names_what_is_missing_or_wrong(tmp_path, capsys, content):
    target = tmp_path / "model"
    target.mkdir()
    if content is not None:
        (target / "provenance.json").write_text(content)
    assert main(["provenance", str(target)]) == 2
    error = capsys.readouterr().err
    assert str(target) in error and "Traceback" not in error
