"""Writing, finding and cleaning up the checkpoints a killed training job resumes from.

Checkpoints live in ``results/checkpoints/{variant}/{split}/checkpoint-<step>/`` (the Trainer's
layout), beside but outside the rule's declared outputs, so Snakemake does not delete them when a
job fails. A rerun resumes from the newest *complete* one:

- a checkpoint is complete once it holds ``COMPLETE_MARKER``, written by ``CheckpointControl``
  after the Trainer's save returned on every process (ZeRO-3 ranks write their own shards), so a
  job killed while saving -- whatever the Trainer had or had not written yet -- leaves a folder
  without it. Such folders are skipped with a warning (expected after a kill; the previous
  checkpoint is still good) and deleted before training goes on, so that the Trainer's rotation
  (``save_total_limit``) cannot count them and delete the last good checkpoint instead;
- a checkpoint whose files are all there but unreadable (truncated weights, broken JSON, a step
  that disagrees with its name) is not silently skipped: ``CorruptCheckpointError`` names it, so
  a disk problem is seen and the checkpoint deleted on purpose.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

from transformers import TrainerCallback
from transformers.integrations import MLflowCallback

from rbio.io import write_json
from rbio.training.interrupt import StopRequest

log = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
# Written into a checkpoint folder once all of it is on disk: resume trusts only marked folders.
COMPLETE_MARKER = "checkpoint-complete.json"
# A SLURM job stops this long before its time limit: time for the step under way and a save of
# the 3B model with its optimizer state (minutes on a shared file system), before SIGKILL.
STOP_BEFORE_TIME_LIMIT_S = 900


class CorruptCheckpointError(RuntimeError):
    """A complete-looking checkpoint that cannot be read; the message names its folder."""


def checkpoint_steps(checkpoint_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-<step>`` folder, newest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT_NAME.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found, reverse=True)


def is_complete(folder: Path) -> bool:
    """The save finished (marker) and the files a resumable checkpoint needs are present."""
    has_weights = any((folder / name).is_file() for name in WEIGHT_FILES) or any(
        folder.glob("global_step*")  # DeepSpeed ZeRO keeps sharded weights + optimizer there
    )
    return (
        has_weights
        and (folder / "trainer_state.json").is_file()
        and (folder / COMPLETE_MARKER).is_file()
    )


def mark_complete(folder: Path, step: int) -> None:
    """Record that ``folder`` is whole (atomic write: the marker itself is never half there)."""
    write_json(folder / COMPLETE_MARKER, {"global_step": step})


def validate_checkpoint(folder: Path, step: int) -> None:
    """Raise ``CorruptCheckpointError`` when a complete checkpoint cannot be read back."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CorruptCheckpointError(
            f"checkpoint {folder} is corrupt: trainer_state.json is unreadable ({error}); "
            "delete this folder to resume from the previous checkpoint"
        ) from error
    if state.get("global_step") != step:
        raise CorruptCheckpointError(
            f"checkpoint {folder} is corrupt: trainer_state.json says global_step="
            f"{state.get('global_step')}, the folder name says {step}; delete this folder"
        )
    problem = unreadable_weights(folder)
    if problem:
        raise CorruptCheckpointError(
            f"checkpoint {folder} is corrupt: {problem}; "
            "delete this folder to resume from the previous checkpoint"
        )


def unreadable_weights(folder: Path) -> str | None:
    """Why the folder's safetensors weights cannot be read, or None when they can (or are sharded
    by DeepSpeed, which safetensors cannot check)."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        # Opening checks the header against the file length: a truncated file fails here.
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError) as error:
        return f"{weights.name} cannot be read ({error})"
    return None


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (validated), or None when there is none to resume from."""
    for step, folder in checkpoint_steps(checkpoint_dir):
        if not is_complete(folder):
            log.warning("skipping incomplete checkpoint %s (killed while saving?)", folder)
            continue
        validate_checkpoint(folder, step)
        return folder
    return None


def remove_incomplete_checkpoints(checkpoint_dir: str | Path) -> None:
    """Delete the folders a kill left half-written (nothing can resume from them; main process)."""
    for _, folder in checkpoint_steps(checkpoint_dir):
        if not is_complete(folder):
            log.warning("deleting incomplete checkpoint %s", folder)
            shutil.rmtree(folder)


def remove_checkpoints(checkpoint_dir: str | Path, final_model: str | Path) -> None:
    """Delete every checkpoint once the final model is written and readable (a 3B model's two
    checkpoints with optimizer state are ~100 GB); the run and fingerprint files stay."""
    model = Path(final_model)
    problem = (
        "config.json is missing" if not (model / "config.json").is_file() else None
    ) or unreadable_weights(model)
    if problem:
        raise RuntimeError(f"final model {model} is not usable ({problem}); checkpoints kept")
    for _, folder in checkpoint_steps(checkpoint_dir):
        shutil.rmtree(folder)
    log.info("removed the checkpoints in %s: the final model is in %s", checkpoint_dir, model)


def slurm_job_end_time() -> float | None:
    """When SLURM will end this job (Unix time), or None outside SLURM or without a time limit:
    ``SLURM_JOB_END_TIME`` (set by recent Slurm versions), else ``squeue``'s end time."""
    value = os.environ.get("SLURM_JOB_END_TIME", "")
    if value.isdigit() and int(value) > 0:
        return float(value)
    job = os.environ.get("SLURM_JOB_ID")
    if not job or shutil.which("squeue") is None:
        return None
    try:
        result = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True, text=True, timeout=60
        )
        # Local time, as squeue prints it; "UNLIMITED" / "N/A" have no end.
        return datetime.fromisoformat(result.stdout.strip()).timestamp()
    except (OSError, subprocess.SubprocessError, ValueError):
        log.warning("could not read the SLURM job's end time: no stop before its time limit")
        return None


class TrainingAlreadyDone(Exception):
    """The checkpoint resumed from is the last step: nothing is left to train."""


def _any_process(device, *flags: bool) -> list[bool]:
    """Each flag, true when it is true on any process: every rank must save (and stop) at the same
    step, since a ZeRO-3 save is collective. One small all-reduce per step."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(flags)
    values = torch.tensor([int(flag) for flag in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(value) for value in values.tolist()]


def _wait_for_everyone() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class CheckpointControl(TrainerCallback):
    """When the Trainer saves beyond ``save_steps``, and what a saved checkpoint records.

    - every ``every_minutes`` of wall time (None: off), so a multi-day job loses at most that much
      when killed, whatever a step costs;
    - at the end of the step during which ``stop`` received a signal (SIGTERM / SIGUSR1), or once
      ``end_time`` (the SLURM job's time limit) is less than ``STOP_BEFORE_TIME_LIMIT_S`` away:
      save and stop training (``stopped``), so the retried job resumes where this one stopped;
    - after each save, ``COMPLETE_MARKER`` in the new folder (main process, once all processes
      finished writing);
    - a job resumed from its last step stops before training another one (the Trainer would run
      one step past ``max_steps`` when ``max_steps`` is not a multiple of the steps per epoch):
      ``TrainingAlreadyDone`` from ``on_train_begin``, when the checkpoint is already loaded.
    """

    def __init__(
        self, every_minutes: float | None, stop: StopRequest, end_time: float | None = None
    ) -> None:
        self.every_seconds = None if every_minutes is None else 60.0 * every_minutes
        self.stop = stop
        self.end_time = end_time
        self.stopped = False
        self._last_save = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            raise TrainingAlreadyDone(f"global step {state.global_step} >= {state.max_steps}")
        self._last_save = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        due = (
            self.every_seconds is not None
            and time.monotonic() - self._last_save >= self.every_seconds
        )
        near_end = (
            self.end_time is not None and time.time() >= self.end_time - STOP_BEFORE_TIME_LIMIT_S
        )
        due, stop = _any_process(args.device, due, self.stop.requested or near_end)
        if due or stop:
            control.should_save = True
        if stop:
            log.warning("stop requested: saving step %d and stopping", state.global_step)
            control.should_training_stop = True
            self.stopped = True

    def on_save(self, args, state, control, **kwargs):
        self._last_save = time.monotonic()
        _wait_for_everyone()
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            mark_complete(folder, state.global_step)


def last_logged_step(run_id: str) -> int:
    """The highest step of any metric the MLflow run already holds (0: none)."""
    import mlflow

    client = mlflow.MlflowClient()
    metrics = client.get_run(run_id).data.metrics
    steps = (point.step for key in metrics for point in client.get_metric_history(run_id, key))
    return max(steps, default=0)


def skip_logged_steps(trainer, run_id: str) -> None:
    """A job killed between checkpoints logged steps past its last checkpoint; the resumed job
    replays them (same data order and RNG state from the checkpoint). Keep the values MLflow has
    and log only the steps after them, else MLflow holds two points per replayed step."""
    logged = last_logged_step(run_id)
    if logged and trainer.pop_callback(MLflowCallback) is not None:
        trainer.add_callback(_MLflowAfterStep(logged))
        log.info("MLflow run %s has steps up to %d: not logging them again", run_id, logged)


class _MLflowAfterStep(MLflowCallback):
    """transformers' MLflow logging, silent up to step ``after_step``."""

    def __init__(self, after_step: int) -> None:
        super().__init__()
        self.after_step = after_step

    def on_log(self, args, state, control, logs, model=None, **kwargs):
        if state.global_step > self.after_step:
            super().on_log(args, state, control, logs, model=model, **kwargs)
