"""Training across several nodes of one SLURM allocation: one accelerate launcher per node.

A ``train_grpo`` job with ``nodes: N`` (and ``gres: gpu:G``, G GPUs on *each* node) trains on
N x G GPUs. The job's own process runs on the first node; :func:`train_on_nodes` starts
``python -m rbio.training.grpo --node <accelerate config> <job.json>`` on every node with ``srun``
(one task per node). Each of those reads its place (:meth:`NodeRole.from_slurm`) from the
environment SLURM gives a job step and starts ``accelerate launch`` with G processes as machine ``SLURM_NODEID`` of N, meeting the
others at the first node of the allocation (the rendezvous) -- the layout of open-r1's SLURM
script, built and checked in Python here. DeepSpeed ZeRO-3 then shards over all N x G ranks.

vLLM server mode uses one node's GPU(s) and is not combined with several nodes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RENDEZVOUS_PORT = 29500  # torch.distributed's usual port, on the first node of the allocation


class MultiNodeError(RuntimeError):
    """A multi-node launch without the SLURM environment it needs."""


def scontrol_hostnames(nodelist: str) -> list[str]:
    """Host names of a SLURM node list (``gpu[01-03]`` -> gpu01, gpu02, gpu03), as SLURM expands it."""
    result = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@dataclass(frozen=True)
class NodeRole:
    """This node's place in the job step: N nodes, its rank, and the rendezvous host."""

    nodes: int
    rank: int
    main_host: str

    @classmethod
    def from_slurm(
        cls,
        environ: Mapping[str, str],
        hostnames: Callable[[str], list[str]] | None = None,
    ) -> NodeRole:
        """From the variables srun sets in each task (the step's, else the job's); ``hostnames``
        expands a node list (default: ``scontrol show hostnames``)."""
        hostnames = hostnames or scontrol_hostnames

        def first(*names: str) -> str:
            for name in names:
                if environ.get(name):
                    return environ[name]
            raise MultiNodeError(
                f"none of {', '.join(names)} is set: run under srun inside a SLURM allocation"
            )

        nodes = int(first("SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"))
        rank = int(first("SLURM_NODEID"))
        # MASTER_ADDR, where a site sets it, wins (e.g. a high-speed interface's host name).
        main = (
            environ.get("MASTER_ADDR")
            or hostnames(first("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"))[0]
        )
        if not 0 <= rank < nodes:
            raise MultiNodeError(f"SLURM_NODEID={rank} is outside the step's {nodes} node(s)")
        return cls(nodes=nodes, rank=rank, main_host=main)


def accelerate_machine_args(
    role: NodeRole, gpus_per_node: int, port: int = RENDEZVOUS_PORT
) -> list[str]:
    """``accelerate launch`` arguments that place this node's ``gpus_per_node`` processes among
    all ``role.nodes x gpus_per_node`` (``--num_processes`` counts every machine's)."""
    return [
        "--num_machines", str(role.nodes),
        "--num_processes", str(role.nodes * gpus_per_node),
        "--machine_rank", str(role.rank),
        "--main_process_ip", role.main_host,
        "--main_process_port", str(port),
    ]  # fmt: skip


def gpus_per_node(resources: Mapping[str, object]) -> int:
    """GPUs of each node of a job: ``gres: gpu[:type]:G`` (per node; multi-node jobs) wins over
    ``gpu`` (``sbatch --gpus``, a total: one-node jobs)."""
    gres = str(resources.get("gres") or "")
    if gres.startswith("gpu"):
        count = gres.split(":")[-1]
        return int(count) if count.isdigit() else 1  # "gpu" / "gpu:a100": one GPU
    return max(1, int(resources.get("gpu") or 1))


def srun_command(
    nodes: int, accelerate_config: str | Path, spec: str | Path, python: str = sys.executable
) -> list[str]:
    """One launcher per node of the allocation; one failing node stops the others."""
    return [
        "srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1",
        # The job's own step already holds the GPUs: the launchers share them with it.
        "--overlap", "--kill-on-bad-exit=1",
        python, "-m", "rbio.training.grpo", "--node", str(accelerate_config), str(spec),
    ]  # fmt: skip


def train_on_nodes(job, accelerate_config: str | Path, nodes: int) -> None:
    """From the job's process: write the job for the launchers and start one per node."""
    if job.grpo.vllm_server_gpus:
        raise MultiNodeError(
            "grpo.vllm_mode server runs on one node: use vllm_mode colocate with several nodes"
        )
    spec = Path(job.checkpoint_dir) / "job.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    job.to_json(spec)
    command = srun_command(nodes, accelerate_config, spec)
    log.info("launching on %d nodes: %s", nodes, " ".join(command))
    subprocess.run(command, check=True)
