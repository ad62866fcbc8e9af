"""The pipeline through a real SLURM scheduler, with the real profile (profiles/slurm + slurm-ci).

Start the one-node test cluster first (root):  scripts/slurm/setup_slurm.sh
Then:  .venv/bin/pytest -m slurm tests/slurm

Every claim is checked against the scheduler's own records (controller job table and completion
log), not against Snakemake's console: jobs went through sbatch with the profile's resources, GPU
rules asked for GPUs, a failing job was resubmitted per the profile, a cancelled job was redone
by the next run, and the results equal a local run's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from tests.helpers import run_workflow
from tests.slurm import profile_values, scheduler

pytestmark = pytest.mark.slurm

# A slice of `all_variants` on the tiny preset that runs every rule kind: data, all verifiers, the
# prompts of every source, the base model, GRPO training of the variant mixing all sources, model
# evaluation (GPU rule) of it and of the base model, and the baselines.
VARIANT = "TF+GO+MLP+EXP"
SPLIT = "loco_k562"
TARGETS = (
    "data",
    "verifiers",
    f"results/models/{VARIANT}/{SPLIT}/config.json",
    f"results/eval/{VARIANT}/{SPLIT}/nocot/metrics.parquet",
    f"results/eval/base/{SPLIT}/nocot/metrics.parquet",
    f"results/eval/baselines/{SPLIT}/scores.parquet",
)
RESILIENCE_SNAKEFILE = Path(__file__).parent / "resilience_workflow" / "Snakefile"
# Outputs that legitimately differ between two runs (tracking stores, run ids, wall times).
VOLATILE_PARTS = {"mlflow", "checkpoints"}
VOLATILE_NAMES = {"run.json", "mlflow.db"}
VOLATILE_JSON_KEYS = re.compile(r"(run_id|time|second|duration|date|host|path|uri)", re.I)


def _rules_by_kind(snakemake_output: str) -> tuple[set[str], set[str]]:
    """(rules Snakemake submitted, rules it ran on the submit host) from its console.

    The slurm plugin announces a submission only as "Job N has been submitted with SLURM jobid M"
    (it prints no job block); Snakemake names the rule of job N when it finishes.
    """
    rule_of_job = dict(
        re.findall(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$", snakemake_output, re.M)
    )
    submitted_jobs = re.findall(
        r"^Job (\d+) has been submitted with SLURM jobid", snakemake_output, re.M
    )
    submitted = {rule_of_job.get(job, f"unfinished job {job}") for job in submitted_jobs}
    local = set(re.findall(r"^localrule (\w+):$", snakemake_output, re.M))
    return submitted, local


def _declared_gpus(dry_run_output: str) -> dict[str, int]:
    """Per rule, the `gpu` resource Snakemake resolved for its jobs (profile + rule), read from
    the job blocks of a dry run."""
    gpus: dict[str, int] = {}
    for block in re.split(r"\n(?=rule \w+:\n)", dry_run_output):
        header = re.match(r"rule (\w+):\n", block)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if header and resources:
            match = re.search(r"(?:^|, )gpu=(\d+)", resources.group(1))
            gpus[header.group(1)] = int(match.group(1)) if match else 0
    return gpus


@pytest.fixture(scope="module")
def profile() -> dict:
    return profile_values.merged(profile_values.SLURM, profile_values.SLURM_CI)


@dataclass(frozen=True)
class SlurmRun:
    workdir: Path
    # Snakemake's console output.
    output: str
    # Jobs with higher ids were submitted by this run.
    after_job_id: int

    def jobs(self) -> list[scheduler.SchedulerJob]:
        return scheduler.jobs_in(self.workdir, self.after_job_id)


@pytest.fixture(scope="module")
def slurm_run(slurm_config, data_dir, tmp_path_factory) -> SlurmRun:
    workdir = tmp_path_factory.mktemp("slurm_run")
    after = scheduler.newest_job_id()
    result = run_workflow(workdir, *TARGETS, args=tuple(profile_values.slurm_command()))
    return SlurmRun(workdir, result.stdout + result.stderr, after)


@pytest.fixture(scope="module")
def local_run(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local_run")
    run_workflow(workdir, *TARGETS)
    return workdir


def test_every_job_went_through_sbatch(slurm_run, slurm_config):
    output = slurm_run.output
    jobs = slurm_run.jobs()
    submitted_rules, local_rules = _rules_by_kind(output)
    assert jobs, "the scheduler knows no job of this run"
    assert submitted_rules, "Snakemake submitted nothing"
    # The scheduler's job table holds exactly the jobs Snakemake says it submitted ...
    assert sorted(job.job_id for job in jobs) == sorted(scheduler.submitted_job_ids(output))
    # ... one per non-local job, each finished cleanly.
    assert {job.rule for job in jobs} == submitted_rules
    assert not submitted_rules & local_rules
    assert all(job.state == "COMPLETED" and job.exit_code == "0:0" for job in jobs), jobs
    # The completion log slurmctld appends to agrees (test cluster: jobcomp/filetxt).
    records = scheduler.completion_records(slurm_config)
    if slurm_config.get("JobCompType") == "jobcomp/filetxt":
        assert all(records[job.job_id]["JobState"] == "COMPLETED" for job in jobs)


def test_jobs_got_the_profiles_resources(slurm_run, profile):
    for job in slurm_run.jobs():
        expected_partition = profile_values.resource(profile, job.rule, "slurm_partition")
        memory_mb = profile_values.resource(profile, job.rule, "mem_mb")
        runtime_minutes = profile_values.resource(profile, job.rule, "runtime")
        assert job.partition == expected_partition, job
        assert job.memory_mb == memory_mb, job
        assert job.time_limit_minutes == runtime_minutes, job


def test_gpu_rules_were_submitted_with_a_gpu_request(slurm_run, profile):
    # Every job of the finished run again, planned only: what Snakemake resolved for each rule.
    plan = run_workflow(
        slurm_run.workdir,
        *TARGETS,
        args=(*profile_values.slurm_command(), "--dry-run", "--forceall"),
    )
    declared = _declared_gpus(plan.stdout + plan.stderr)
    assert declared, (plan.stdout + plan.stderr)[-3000:]
    jobs = slurm_run.jobs()
    for job in jobs:
        assert job.requested_gpus == declared[job.rule], job
        if job.requested_gpus:
            cpus_per_gpu = profile_values.resource(profile, job.rule, "cpus_per_gpu")
            assert f"gpu:{cpus_per_gpu}" in job.cpus_per_tres, job
    if not any(declared.values()):
        pytest.skip(f"no GPU rule in the DAG of {TARGETS} yet (the resilience test covers GPUs)")


def _comparable_files(root: Path) -> dict[str, Path]:
    files = {}
    for path in (root / "results").rglob("*"):
        relative = path.relative_to(root)
        volatile = VOLATILE_PARTS & set(relative.parts) or path.name in VOLATILE_NAMES
        if path.is_file() and not volatile:
            files[str(relative)] = path
    return files


def _stable_json(value):
    if isinstance(value, dict):
        return {k: _stable_json(v) for k, v in value.items() if not VOLATILE_JSON_KEYS.search(k)}
    if isinstance(value, list):
        return [_stable_json(item) for item in value]
    return value


def _same_content(left: Path, right: Path) -> bool:
    if left.read_bytes() == right.read_bytes():
        return True
    if left.suffix == ".parquet":
        try:
            pd.testing.assert_frame_equal(pd.read_parquet(left), pd.read_parquet(right))
        except AssertionError:
            return False
        return True
    if left.suffix == ".safetensors":
        # Same tensors and metadata; the header's key order is not part of the content.
        with safe_open(left, "pt") as one, safe_open(right, "pt") as other:
            names = set(one.keys())
            if one.metadata() != other.metadata() or names != set(other.keys()):
                return False
            return all(torch.equal(one.get_tensor(name), other.get_tensor(name)) for name in names)
    if left.suffix == ".json":
        return _stable_json(json.loads(left.read_text())) == _stable_json(
            json.loads(right.read_text())
        )
    return False


def test_results_equal_the_local_run(slurm_run, local_run):
    on_slurm, local = _comparable_files(slurm_run.workdir), _comparable_files(local_run)
    assert on_slurm.keys() == local.keys()
    assert any(name.endswith(".parquet") for name in local)
    differing = [name for name in sorted(local) if not _same_content(local[name], on_slurm[name])]
    assert not differing, f"SLURM and local results differ: {differing}"


# --- resilience: retries from the profile, resume after scancel ---------------------------------


def _run_resilience(workdir: Path, *targets: str, extra: tuple[str, ...] = ()):
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(RESILIENCE_SNAKEFILE),
        "--directory", str(workdir),
        *profile_values.slurm_command(),
        *targets,
        # Last: --config takes every following word as a key=value pair.
        *extra,
    ]  # fmt: skip
    return command


def test_a_failed_job_is_resubmitted_with_the_profiles_retry_resources(
    slurm_config, profile, tmp_path
):
    after = scheduler.newest_job_id()
    result = subprocess.run(
        _run_resilience(tmp_path, "out/flaky.txt", "out/gpu.txt"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    flaky = [job for job in scheduler.jobs_in(tmp_path, after) if job.rule == "flaky"]
    # First attempt failed in the scheduler's eyes, the profile's retry was a new sbatch job ...
    assert [job.state for job in flaky] == ["FAILED", "COMPLETED"], flaky
    assert flaky[0].exit_code == "1:0"
    # ... with the memory and time the profile grants a second attempt.
    for job, attempt in zip(flaky, (1, 2), strict=True):
        assert job.memory_mb == profile_values.resource(profile, "flaky", "mem_mb", attempt)
    assert (tmp_path / "out" / "flaky.txt").read_text().strip() == "attempt 2"
    records = scheduler.completion_records(slurm_config)
    if records:
        assert [records[job.job_id]["JobState"] for job in flaky] == ["FAILED", "COMPLETED"]

    # A GPU job got a GPU from the scheduler, and the job saw it.
    (gpu_job,) = [job for job in scheduler.jobs_in(tmp_path, after) if job.rule == "gpu_probe"]
    assert gpu_job.requested_gpus == 1
    assert re.fullmatch(
        r"CUDA_VISIBLE_DEVICES=\d+", (tmp_path / "out" / "gpu.txt").read_text().strip()
    )


def test_a_rerun_after_scancel_redoes_only_the_cancelled_work(slurm_config, tmp_path):
    after = scheduler.newest_job_id()
    console = tmp_path / "first_run.log"
    with console.open("w") as sink:
        first = subprocess.Popen(
            _run_resilience(
                tmp_path, "out/final.txt", extra=("--retries", "0", "--config", "slow_seconds=600")
            ),
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            slow = scheduler.wait_for_job(
                tmp_path, "slow", "RUNNING", after, timeout=180, process=first
            )
            scheduler.cancel(slow.job_id)
            first.wait(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
    assert first.returncode != 0, console.read_text()[-3000:]
    jobs_before = scheduler.jobs_in(tmp_path, after)
    states = sorted((job.rule, job.state) for job in jobs_before)
    expected = [("quick", "COMPLETED"), ("quick", "COMPLETED"), ("slow", "CANCELLED")]
    assert states == expected, jobs_before
    assert not (tmp_path / "out" / "slow.txt").exists()
    assert not (tmp_path / "out" / "final.txt").exists()

    rerun = subprocess.run(
        _run_resilience(tmp_path, "out/final.txt", extra=("--config", "slow_seconds=1")),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    known = {job.job_id for job in jobs_before}
    new_jobs = [job for job in scheduler.jobs_in(tmp_path, after) if job.job_id not in known]
    # The quick jobs' results were kept; only the cancelled job and what depends on it ran again.
    assert sorted(job.rule for job in new_jobs if job.rule) == ["final", "slow"], new_jobs
    assert all(job.state == "COMPLETED" for job in new_jobs)
    assert (tmp_path / "out" / "final.txt").read_text().splitlines() == ["1", "2", "slept"]
    records = scheduler.completion_records(slurm_config)
    if records:
        assert records[slow.job_id]["JobState"] == "CANCELLED"


def test_ci_cluster_keeps_finished_jobs_long_enough_for_squeue(slurm_config, profile):
    """The plugin polls squeue: finished jobs must stay visible >= 3 x the first-check delay."""
    min_job_age = scheduler.min_job_age_seconds(slurm_config)
    assert min_job_age >= 3 * profile["slurm-init-seconds-before-status-checks"]
