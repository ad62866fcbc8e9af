"""What the SLURM scheduler itself recorded about a workflow's jobs.

Tests read the controller's job table (`scontrol show job`, which keeps finished jobs for
MinJobAge seconds) and its completion log (jobcomp/filetxt, written by slurmctld when a job ends),
never Snakemake's own account of what it submitted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_KEY_VALUE = re.compile(r"(\S+?)=(\S*)")
_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")


def _run(*command: str, timeout: float = 30) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def _key_values(line: str) -> dict[str, str]:
    return dict(_KEY_VALUE.findall(line))


def controller_reachable() -> str | None:
    """None when a SLURM controller answers, else why not (for a skip message)."""
    if shutil.which("scontrol") is None:
        return "scontrol not installed (run scripts/slurm/setup_slurm.sh)"
    try:
        output = _run("scontrol", "ping", timeout=15)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return f"scontrol ping failed: {error}"
    return None if "UP" in output else f"no SLURM controller is up: {output.strip()}"


def controller_config() -> dict[str, str]:
    """`scontrol show config` as a mapping (keys as SLURM spells them)."""
    config = {}
    for line in _run("scontrol", "show", "config").splitlines():
        key, separator, value = line.partition("=")
        if separator:
            config[key.strip()] = value.strip()
    return config


def min_job_age_seconds(config: dict[str, str]) -> int:
    return int(config["MinJobAge"].split()[0])


@dataclass(frozen=True)
class SchedulerJob:
    """One job as the controller's job table shows it."""

    job_id: int
    rule: str
    state: str
    exit_code: str
    workdir: str
    # What the job asked for: "gres:gpu:1" for `sbatch --gpus=1`, "" for none.
    tres_per_job: str
    cpus_per_tres: str
    min_memory: str
    time_limit: str
    num_cpus: int
    partition: str

    @property
    def memory_mb(self) -> float:
        """MinMemoryNode in MB (scontrol prints 8000M, 62.50G, ...)."""
        match = re.fullmatch(r"([\d.]+)([KMGT]?)", self.min_memory)
        if match is None:
            raise ValueError(f"job {self.job_id}: unreadable memory {self.min_memory!r}")
        scale = {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024**2}[match.group(2)]
        return float(match.group(1)) * scale

    @property
    def time_limit_minutes(self) -> int:
        """TimeLimit in minutes (scontrol prints [days-]hours:minutes:seconds)."""
        days, _, clock = self.time_limit.rpartition("-")
        hours, minutes, seconds = (int(part) for part in clock.split(":"))
        return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)

    @property
    def requested_gpus(self) -> int:
        match = re.search(r"gres:gpu(?::[^:,]+)?:(\d+)", self.tres_per_job)
        return int(match.group(1)) if match else 0


def rule_of_comment(comment: str) -> str:
    """The plugin labels every job `rule_<rule>` or `rule_<rule>_wildcards_<values>`."""
    if not comment.startswith("rule_"):
        return ""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def newest_job_id() -> int:
    """The highest job id the controller knows (0 when none): jobs submitted later are newer."""
    ids = [
        int(fields["JobId"])
        for line in _run("scontrol", "-o", "show", "job").splitlines()
        if "JobId" in (fields := _key_values(line))
    ]
    return max(ids, default=0)


def jobs_in(workdir: Path, after: int = 0) -> list[SchedulerJob]:
    """Every job the controller still knows whose working directory is `workdir` and whose id is
    above `after` (an earlier test run may have used the same folder)."""
    jobs = []
    for line in _run("scontrol", "-o", "show", "job").splitlines():
        fields = _key_values(line)
        if fields.get("WorkDir") != str(workdir) or int(fields["JobId"]) <= after:
            continue
        jobs.append(
            SchedulerJob(
                job_id=int(fields["JobId"]),
                rule=rule_of_comment(fields.get("Comment", "")),
                state=fields.get("JobState", ""),
                exit_code=fields.get("ExitCode", ""),
                workdir=fields["WorkDir"],
                tres_per_job=fields.get("TresPerJob", ""),
                cpus_per_tres=fields.get("CpusPerTres", ""),
                min_memory=fields.get("MinMemoryNode", ""),
                time_limit=fields.get("TimeLimit", ""),
                num_cpus=int(fields.get("NumCPUs", "0")),
                partition=fields.get("Partition", ""),
            )
        )
    return sorted(jobs, key=lambda job: job.job_id)


def completion_records(config: dict[str, str]) -> dict[int, dict[str, str]]:
    """The controller's completion log (jobcomp/filetxt): job id -> its fields, last line wins."""
    if config.get("JobCompType") != "jobcomp/filetxt":
        return {}
    path = Path(config["JobCompLoc"])
    if not path.is_file():
        return {}
    records = {}
    for line in path.read_text().splitlines():
        fields = _key_values(line)
        if "JobId" in fields:
            records[int(fields["JobId"])] = fields
    return records


def submitted_job_ids(snakemake_output: str) -> list[int]:
    """The SLURM job ids Snakemake reported for its sbatch submissions."""
    return [int(job_id) for job_id in _SUBMITTED.findall(snakemake_output)]


def wait_for_job(
    workdir: Path,
    rule: str,
    state: str,
    after: int = 0,
    timeout: float = 120,
    process: subprocess.Popen | None = None,
) -> SchedulerJob:
    """Poll the controller until a job of `rule` from `workdir` is in `state` (while the
    submitting `process`, if given, still runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"snakemake exited ({process.returncode}) before {rule} ran")
        for job in jobs_in(workdir, after):
            if job.rule == rule and job.state == state:
                return job
        time.sleep(1)
    raise TimeoutError(
        f"no job of rule {rule} reached {state} within {timeout} s: {jobs_in(workdir)}"
    )


def cancel(job_id: int) -> None:
    _run("scancel", str(job_id))
