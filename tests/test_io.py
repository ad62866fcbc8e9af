import json

import numpy as np
import pytest

from rbio.io import atomic_path, write_json, write_safetensors


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
