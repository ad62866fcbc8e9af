"""Which checkpoint a rerun resumes from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rbio.training.checkpoints import CorruptCheckpointError, latest_checkpoint


def fake_checkpoint(root: Path, step: int, *, complete: bool = True) -> Path:
    import torch
    from safetensors.torch import save_file

    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(8)}, folder / "model.safetensors")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_no_checkpoints(tmp_path: Path):
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(tmp_path) is None


def test_newest_complete_checkpoint_wins_and_numbers_sort_numerically(tmp_path: Path):
    fake_checkpoint(tmp_path, 9)
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 20, complete=False)  # killed while saving
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_truncated_weights_are_named(tmp_path: Path):
    folder = fake_checkpoint(tmp_path, 4)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match="checkpoint-4 is corrupt: model.safetensors"):
        latest_checkpoint(tmp_path)


def test_broken_state_is_named(tmp_path: Path):
    folder = fake_checkpoint(tmp_path, 4)
    (folder / "trainer_state.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="checkpoint-4 is corrupt: trainer_state.json"):
        latest_checkpoint(tmp_path)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    with pytest.raises(CorruptCheckpointError, match="global_step=3"):
        latest_checkpoint(tmp_path)
