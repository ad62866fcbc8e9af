import json

import numpy as np
import pytest

from rbio.io import atomic_path, write_json


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
