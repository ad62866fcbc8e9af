"""Finding the checkpoint a killed training job resumes from.

Checkpoints live in ``results/checkpoints/{variant}/{split}/checkpoint-<step>/`` (the Trainer's
layout), beside but outside the rule's declared outputs, so Snakemake does not delete them when a
job fails. A rerun resumes from the newest *complete* one:

- a checkpoint the job was killed while writing (files missing, in particular
  ``trainer_state.json``, which the Trainer writes last) is skipped with a warning: that is
  expected after a kill and the previous checkpoint is still good;
- a checkpoint whose files are all there but unreadable (truncated weights, broken JSON, a step
  that disagrees with its name) is not silently skipped: ``CorruptCheckpointError`` names it, so
  a disk problem is seen and the checkpoint deleted on purpose.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")


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
    """All files a resumable checkpoint needs are present (a kill mid-save leaves some missing)."""
    has_weights = any((folder / name).is_file() for name in WEIGHT_FILES) or any(
        folder.glob("global_step*")  # DeepSpeed ZeRO keeps sharded weights + optimizer there
    )
    return has_weights and (folder / "trainer_state.json").is_file()


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
    weights = folder / "model.safetensors"
    if not weights.is_file():
        weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            # Opening checks the header against the file length: a truncated file fails here.
            with safe_open(str(weights), framework="pt") as handle:
                handle.keys()
        except (SafetensorError, OSError, ValueError) as error:
            raise CorruptCheckpointError(
                f"checkpoint {folder} is corrupt: {weights.name} cannot be read ({error}); "
                "delete this folder to resume from the previous checkpoint"
            ) from error


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (validated), or None when there is none to resume from."""
    for step, folder in checkpoint_steps(checkpoint_dir):
        if not is_complete(folder):
            log.warning("skipping incomplete checkpoint %s (killed while saving?)", folder)
            continue
        validate_checkpoint(folder, step)
        return folder
    return None
