"""Settings that depend on the machine: checked at DAG-build time for local runs and at job start.

``rbio.config_file.load_config`` checks what holds anywhere (batch divisible by generations). What
needs CUDA can only be judged where the job runs: on a login node or a laptop a SLURM run's
config is fine even though this machine has no GPU, so the workflow checks the machine only when
jobs run locally, and every training job checks again when it starts.
"""

from __future__ import annotations

from rbio.config import GrpoConfig


class MachineConfigError(RuntimeError):
    """The configuration needs hardware or software this machine does not have."""


def machine_problems(
    grpo: GrpoConfig, *, cuda: bool, cuda_devices: int = 0, processes: int = 1
) -> list[str]:
    """Every setting in ``grpo`` this machine cannot run, as messages naming the config key."""
    problems = []
    if grpo["bf16"] and not cuda:
        problems.append(
            "config key 'grpo.bf16' is true but this machine has no CUDA device: bf16 training "
            "needs a GPU. Set grpo.bf16: false for CPU runs (config/tiny.yaml does)."
        )
    if grpo["use_vllm"] and not cuda:
        problems.append(
            "config key 'grpo.use_vllm' is true but this machine has no CUDA device: vLLM "
            "generation needs a GPU. Set grpo.use_vllm: false for CPU runs (config/tiny.yaml does)."
        )
    if grpo["use_vllm"] and cuda:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            problems.append(
                "config key 'grpo.use_vllm' is true but the vllm package is not installed "
                "(install the project's `gpu` extra), or set grpo.use_vllm: false."
            )
    if processes > 1 and cuda:
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            problems.append(
                f"the job runs on {processes} GPUs with DeepSpeed ZeRO-3 (grpo.deepspeed_config) "
                "but the deepspeed package is not installed (pip install deepspeed)."
            )
    if processes > 1 and cuda and cuda_devices < processes:
        problems.append(
            f"the job asks for {processes} GPU processes (resources gpu={processes}) but only "
            f"{cuda_devices} CUDA device(s) are visible."
        )
    return problems


def cuda_status() -> tuple[bool, int]:
    """(CUDA usable, number of visible devices)."""
    import torch

    available = torch.cuda.is_available()
    return available, torch.cuda.device_count() if available else 0


def check_machine(grpo: GrpoConfig, processes: int = 1) -> None:
    """Raise ``MachineConfigError`` listing every problem of ``grpo`` on this machine."""
    cuda, devices = cuda_status()
    problems = machine_problems(grpo, cuda=cuda, cuda_devices=devices, processes=processes)
    if problems:
        raise MachineConfigError("\n".join(problems))
