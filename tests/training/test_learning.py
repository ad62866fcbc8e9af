"""GRPO learns: the tiny model, the real EXP rewards, a few hundred CPU steps (~2 min)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbio.training.grpo import train_grpo
from tests.training.conftest import grpo_job, tiny_config


@pytest.mark.slow
def test_mean_reward_rises_with_the_exp_verifier(
    tmp_path: Path, tiny_model_dir: Path, exp_prompts: Path
):
    from safetensors.torch import load_file

    cfg = tiny_config(max_steps=300, save_steps=1000, logging_steps=10, learning_rate=1e-3)
    job = grpo_job(cfg, tiny_model_dir, exp_prompts, tmp_path)
    summary = train_grpo(job)  # the reward registry's format + mention + answer (EXP labels)
    rewards = [point["reward"] for point in summary["reward_curve"]]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-5:]) / 5
    print("reward curve (every 10 steps):", [round(r, 3) for r in rewards])
    # A random model writes tags by chance (one token each); GRPO makes it write them on purpose.
    assert last > first + 0.1 and last > 1.5 * first, (first, last)
    before, after = (
        load_file(tiny_model_dir / "model.safetensors"),
        load_file(Path(job.out_dir) / "model.safetensors"),
    )
    assert any(not (before[k] == after[k]).all() for k in before)
