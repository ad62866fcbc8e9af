"""Cluster profile checks at parse time: placeholders and a submit host without sbatch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rbio.cluster_profile import check_cluster_profile, executor_name, profile_files
from rbio.config import ConfigError
from tests.helpers import REPO, TINY

SLURM = REPO / "profiles" / "slurm"
SLURM_CI = REPO / "profiles" / "slurm-ci"
PROFILE_ARGS = ["--profile", str(SLURM), f"--profile={SLURM_CI}"]


def test_profiles_and_executor_are_read_as_snakemake_reads_them(tmp_path):
    files = profile_files(PROFILE_ARGS, {})
    assert files == [SLURM / "config.v8+.yaml", SLURM_CI / "config.v8+.yaml"]
    assert executor_name(PROFILE_ARGS, files) == "slurm"
    assert executor_name([*PROFILE_ARGS, "-e", "local"], files) == "local"
    assert executor_name([], []) is None


def test_a_placeholder_resource_names_itself_and_its_profile_file():
    resources = {"train_grpo": {"slurm_partition": "YOUR_GPU_PARTITION", "gpu": 1}}
    with pytest.raises(ConfigError) as error:
        check_cluster_profile(resources, ["--profile", str(SLURM)], {}, dryrun=True)
    assert str(error.value) == (
        "resource slurm_partition of train_grpo is the placeholder 'YOUR_GPU_PARTITION' of "
        f"{SLURM / 'config.v8+.yaml'}: replace it with your cluster's value"
    )


def test_a_slurm_run_without_sbatch_fails_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    resources = {"default-resources": {"slurm_partition": "ci"}}
    with pytest.raises(ConfigError, match="the executor is slurm but sbatch is not on PATH"):
        check_cluster_profile(resources, PROFILE_ARGS, {}, dryrun=False)
    check_cluster_profile(resources, PROFILE_ARGS, {}, dryrun=True)  # a dry run submits nothing
    check_cluster_profile(resources, [*PROFILE_ARGS, "-e", "local"], {}, dryrun=False)


def plan_with_profiles(tmp_path, *profiles: Path, env: dict | None = None, dry_run=False):
    profile_args = [arg for profile in profiles for arg in ("--profile", str(profile))]
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml"), str(TINY),
         *profile_args, *(["-n"] if dry_run else []), "data"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_the_unedited_slurm_profile_fails_at_parse_time_even_in_a_dry_run(tmp_path):
    result = plan_with_profiles(tmp_path, SLURM)
    assert result.returncode != 0
    assert (
        f"resource slurm_partition of default-resources is the placeholder 'YOUR_PARTITION' of "
        f"{SLURM / 'config.v8+.yaml'}"
    ) in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 5, result.stderr


def path_without_sbatch(folder: Path) -> str:
    """A PATH of one folder linking every program of today's PATH but sbatch (even where SLURM
    is installed)."""
    folder.mkdir()
    for directory in [
        Path(sys.executable).parent,
        *map(Path, os.environ["PATH"].split(os.pathsep)),
    ]:
        for program in directory.glob("*") if directory.is_dir() else []:
            link = folder / program.name
            if program.name != "sbatch" and not link.exists():
                link.symlink_to(program)
    return str(folder)


def test_a_real_slurm_run_without_sbatch_fails_at_parse_time(tmp_path):
    env = {"PATH": path_without_sbatch(tmp_path / "bin"), "RBIO_DATA_DIR": str(tmp_path)}
    result = plan_with_profiles(tmp_path, SLURM, SLURM_CI, env=env)
    assert result.returncode != 0
    assert "the executor is slurm but sbatch is not on PATH" in result.stderr
    assert "sacctmgr" not in result.stderr


def test_the_profile_points_jobs_at_a_tracking_server_and_its_placeholder_fails(tmp_path):
    # Partitions and account filled in, the tracking server's address not: the profile's
    # `config` reached config mlflow.tracking_uri, and the workflow stops in one line.
    site = tmp_path / "site"
    site.mkdir()
    text = (SLURM / "config.v8+.yaml").read_text()
    for placeholder, value in [("YOUR_GPU_PARTITION", "gpu"), ("YOUR_PARTITION", "cpu"),
                               ("YOUR_ACCOUNT", "lab")]:  # fmt: skip
        text = text.replace(placeholder, value)
    (site / "config.v8+.yaml").write_text(text)
    result = plan_with_profiles(tmp_path, site, env={"MLFLOW_TRACKING_URI": ""}, dry_run=True)
    assert result.returncode != 0
    assert "mlflow.tracking_uri is the placeholder 'http://YOUR_TRACKING_HOST:5000'" in (
        result.stdout + result.stderr
    )
