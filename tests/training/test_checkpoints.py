"""Which checkpoint a rerun resumes from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rbio.training.checkpoints import (
    COMPLETE_MARKER,
    CheckpointControl,
    CorruptCheckpointError,
    latest_checkpoint,
    remove_checkpoints,
    remove_incomplete_checkpoints,
)
from rbio.training.interrupt import StopRequest


def fake_checkpoint(root: Path, step: int, *, complete: bool = True) -> Path:
    import torch
    from safetensors.torch import save_file

    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(8)}, folder / "model.safetensors")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (folder / COMPLETE_MARKER).write_text(json.dumps({"global_step": step}))
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


def test_a_checkpoint_without_the_completion_marker_is_skipped_and_deleted(tmp_path: Path):
    fake_checkpoint(tmp_path, 4)
    # Every file is there but the job was killed before the save finished on all processes.
    (fake_checkpoint(tmp_path, 8) / COMPLETE_MARKER).unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    remove_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]


def test_checkpoints_are_removed_only_once_the_final_model_is_readable(tmp_path: Path):
    checkpoints, model = tmp_path / "checkpoints", tmp_path / "model"
    fake_checkpoint(checkpoints, 4)
    fake_checkpoint(checkpoints, 8)
    (checkpoints / "mlflow_run.json").write_text("{}")
    model.mkdir()
    with pytest.raises(
        RuntimeError, match=r"not usable \(config.json is missing\); checkpoints kept"
    ):
        remove_checkpoints(checkpoints, model)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(RuntimeError, match="model.safetensors cannot be read"):
        remove_checkpoints(checkpoints, model)
    assert latest_checkpoint(checkpoints) == checkpoints / "checkpoint-8"
    fake_checkpoint(tmp_path, 1)  # readable weights
    (tmp_path / "checkpoint-1" / "model.safetensors").replace(model / "model.safetensors")
    remove_checkpoints(checkpoints, model)
    assert [p.name for p in checkpoints.iterdir()] == ["mlflow_run.json"]


def test_time_based_cadence_and_stop_request_ask_for_a_save(tmp_path: Path, monkeypatch):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    clock = [1000.0]
    monkeypatch.setattr("rbio.training.checkpoints.time.monotonic", lambda: clock[0])
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    state, stop = TrainerState(max_steps=100), StopRequest()
    control = CheckpointControl(every_minutes=30, stop=stop)
    control.on_train_begin(args, state, TrainerControl())

    def step(minutes: float) -> TrainerControl:
        clock[0] += 60 * minutes
        state.global_step += 1
        flags = TrainerControl()
        control.on_step_end(args, state, flags)
        if flags.should_save:  # as the Trainer does after its save
            (tmp_path / f"checkpoint-{state.global_step}").mkdir()
            control.on_save(args, state, flags)
        return flags

    assert not step(29).should_save
    assert step(2).should_save  # 31 minutes since training began
    assert (tmp_path / "checkpoint-2" / COMPLETE_MARKER).is_file()
    assert not step(29).should_save  # 29 minutes since that save
    stop.signum = 10
    flags = step(0.1)
    assert flags.should_save and flags.should_training_stop and control.stopped
    assert (tmp_path / "checkpoint-4" / COMPLETE_MARKER).is_file()


def test_a_slurm_job_saves_and_stops_before_its_time_limit(tmp_path: Path, monkeypatch):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from rbio.training.checkpoints import STOP_BEFORE_TIME_LIMIT_S, slurm_job_end_time

    monkeypatch.setenv("SLURM_JOB_END_TIME", "2000000000")
    assert slurm_job_end_time() == 2_000_000_000
    monkeypatch.delenv("SLURM_JOB_END_TIME")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm_job_end_time() is None

    now = [0.0]
    monkeypatch.setattr("rbio.training.checkpoints.time.time", lambda: now[0])
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    control = CheckpointControl(every_minutes=None, stop=StopRequest(), end_time=10_000.0)
    state, flags = TrainerState(max_steps=100, global_step=1), TrainerControl()
    now[0] = 10_000.0 - STOP_BEFORE_TIME_LIMIT_S - 1
    control.on_step_end(args, state, flags)
    assert not flags.should_save and not control.stopped
    now[0] += 2
    control.on_step_end(args, state, flags)
    assert flags.should_save and flags.should_training_stop and control.stopped
