"""Multi-node launch without a cluster: the SLURM environment of a job step -> the arguments
each node's ``accelerate launch`` gets (parsed by accelerate's own parser), and the srun line."""

from __future__ import annotations

import pytest
from accelerate.commands.launch import launch_command_parser

import rbio.training.grpo as grpo_module
import rbio.training.multinode as multinode
from rbio.training.multinode import (
    MultiNodeError,
    NodeRole,
    accelerate_machine_args,
    gpus_per_node,
    srun_command,
)
from tests.helpers import REPO
from tests.training.conftest import grpo_job, tiny_config

ZERO3 = REPO / "workflow/accelerate/zero3.yaml"

# What srun sets in the second task of a two-node step.
STEP = dict(
    SLURM_JOB_NUM_NODES="2",
    SLURM_STEP_NUM_NODES="2",
    SLURM_NODEID="1",
    SLURM_PROCID="1",
    SLURM_STEP_NODELIST="gpu[07-08]",
    SLURM_JOB_NODELIST="gpu[07-08]",
)


def expand(nodelist: str) -> list[str]:
    assert nodelist == "gpu[07-08]"  # what scontrol show hostnames would be asked
    return ["gpu07", "gpu08"]


def test_each_node_knows_its_rank_and_the_rendezvous_host():
    assert NodeRole.from_slurm(STEP, expand) == NodeRole(nodes=2, rank=1, main_host="gpu07")
    assert NodeRole.from_slurm({**STEP, "MASTER_ADDR": "gpu07-ib"}, expand).main_host == "gpu07-ib"
    with pytest.raises(MultiNodeError, match="SLURM_NODEID is set: run under srun"):
        NodeRole.from_slurm({k: v for k, v in STEP.items() if k != "SLURM_NODEID"}, expand)
    with pytest.raises(MultiNodeError, match="outside the step's 2 node"):
        NodeRole.from_slurm({**STEP, "SLURM_NODEID": "2"}, expand)


def test_accelerate_reads_the_node_arguments_as_the_whole_world(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(grpo_module, "run_workers", commands.append)
    # This machine has no 8 GPUs: the launch command is what is checked.
    monkeypatch.setattr(grpo_module, "check_machine", lambda grpo, processes: None)
    monkeypatch.setattr(multinode, "scontrol_hostnames", expand)
    for name, value in STEP.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    job = grpo_job(tiny_config(), tmp_path / "base", tmp_path / "prompts", tmp_path, processes=8)
    job.to_json(tmp_path / "job.json")
    grpo_module.main(["--node", str(ZERO3), str(tmp_path / "job.json")])
    (command,) = commands
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(command[3:])
    assert (args.num_machines, args.num_processes, args.machine_rank) == (2, 16, 1)
    assert (args.main_process_ip, args.main_process_port) == ("gpu07", 29500)
    # Each node trains the job the rule wrote (the same spec, beside the checkpoints).
    assert args.training_script_args == [job.checkpoint_dir + "/job.json"] and args.module


def test_machine_args_scale_with_nodes():
    args = accelerate_machine_args(NodeRole(nodes=4, rank=0, main_host="h"), 8, port=6000)
    assert args[args.index("--num_processes") + 1] == "32"
    assert args[args.index("--main_process_port") + 1] == "6000"


def test_one_launcher_per_node_and_one_failure_stops_all():
    command = srun_command(3, "zero3.yaml", "job.json", python="python")
    assert command[:3] == ["srun", "--nodes=3", "--ntasks=3"]
    assert "--ntasks-per-node=1" in command and "--kill-on-bad-exit=1" in command
    assert command[-6:] == [
        "python",
        "-m",
        "rbio.training.grpo",
        "--node",
        "zero3.yaml",
        "job.json",
    ]


@pytest.mark.parametrize(
    ("resources", "gpus"),
    [
        ({"gpu": 8}, 8),
        ({"gpu": 0, "gres": "gpu:8", "nodes": 2}, 8),
        ({"gres": "gpu:h100:4"}, 4),
        ({}, 1),
    ],
)
def test_gpus_per_node_from_the_rules_resources(resources, gpus):
    assert gpus_per_node(resources) == gpus
