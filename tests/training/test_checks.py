"""Machine-dependent settings fail with a message naming the config key."""

from __future__ import annotations

from rbio.training.checks import machine_problems
from tests.training.conftest import tiny_config


def test_tiny_preset_runs_on_cpu():
    assert machine_problems(tiny_config().grpo, cuda=False) == []


def test_bf16_and_vllm_need_cuda():
    problems = machine_problems(tiny_config(bf16=True, use_vllm=True).grpo, cuda=False)
    assert len(problems) == 2
    assert "grpo.bf16" in problems[0] and "grpo.use_vllm" in problems[1]
    assert machine_problems(tiny_config(bf16=True).grpo, cuda=True) == []


def test_more_processes_than_gpus():
    problems = machine_problems(tiny_config().grpo, cuda=True, cuda_devices=2, processes=8)
    assert any("gpu=8" in problem for problem in problems)
