"""The Snakemake profiles: valid options, GPU rules covered, CI overlay in step with the real one.

Fast and cluster-free (no `slurm` marker): they guard what the SLURM test cannot see on its own,
e.g. a new GPU rule without a GPU request in the cluster profile.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from snakemake_executor_plugin_slurm.validation import get_forbidden_slurm_options

from tests.helpers import REPO, TINY
from tests.slurm import profile_values
from tests.slurm.profile_values import PROFILE_FILE, PROFILES, SLURM, SLURM_CI

ALL_PROFILES = sorted(path.parent for path in PROFILES.glob(f"*/{PROFILE_FILE}"))
# Rules that always need a GPU on the paper configuration (precompute_tf_pmi only with the
# TranscriptFormer backend: its rule decides, the profile gives it per-GPU CPUs and memory).
GPU_RULES = {"train_grpo", "train_sft", "evaluate_model"}
# Keys the CI overlay may change relative to profiles/slurm inside the resource mappings.
SITE_KEYS = {"slurm_partition", "slurm_account"}
# The training job's size: 8 GPUs on the cluster, one of the CI node's at most 4 fake GPUs.
SIZE_KEYS = {"gpu", "mem_mb"}


@pytest.fixture(scope="module")
def snakemake_options() -> set[str]:
    """Every long option Snakemake accepts, the SLURM plugin's included."""
    from snakemake.cli import get_argument_parser

    parser = get_argument_parser()
    return {option for action in parser._actions for option in action.option_strings}


def test_the_expected_profiles_exist():
    assert {path.name for path in ALL_PROFILES} >= {"slurm", "slurm-ci", "local", "laptop"}


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda path: path.name)
def test_every_key_is_a_snakemake_option(profile, snakemake_options):
    unknown = [key for key in profile_values.load(profile) if f"--{key}" not in snakemake_options]
    assert not unknown, f"{profile.name}: not Snakemake options: {unknown}"


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda path: path.name)
def test_a_comment_above_every_top_level_key(profile):
    lines = (profile / PROFILE_FILE).read_text().splitlines()
    uncommented = [
        line
        for index, line in enumerate(lines)
        if re.match(r"[a-z][\w-]*:", line) and (index == 0 or not lines[index - 1].startswith("#"))
    ]
    assert not uncommented, f"{profile.name}: keys without a comment line above: {uncommented}"


def test_default_resources_of_the_slurm_profile_are_commented():
    lines = (SLURM / PROFILE_FILE).read_text().splitlines()
    start = lines.index("default-resources:")
    block = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    keys = [index for index, line in enumerate(block) if re.match(r"  \w+:", line)]
    assert keys, "default-resources is empty"
    assert all(block[index - 1].strip().startswith("#") for index in keys if index > 0)


def test_slurm_profile_uses_the_slurm_executor_with_retries_and_placeholders():
    profile = profile_values.load(SLURM)
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    assert profile["latency-wait"] >= 30
    defaults = profile["default-resources"]
    # Placeholders the user must replace: the README and the file's comments say how.
    assert defaults["slurm_partition"] == "YOUR_PARTITION"
    assert defaults["slurm_account"] == "YOUR_ACCOUNT"
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(defaults)
    # A retry gets more memory and time than the first attempt.
    for name in ("mem_mb", "runtime"):
        assert profile_values.resource(profile, "any_rule", name, attempt=2) > (
            profile_values.resource(profile, "any_rule", name, attempt=1)
        )


def test_training_takes_one_whole_8_gpu_node():
    profile = profile_values.load(SLURM)
    values = profile["set-resources"]["train_grpo"]
    # --nodes=1: the plugin sets --nodes only from this resource; --gpus=8 alone may span nodes.
    assert (values["nodes"], values["gpu"]) == (1, 8)
    assert profile_values.resource(profile, "train_grpo", "mem_mb") >= 8 * 32000
    assert profile_values.load(SLURM_CI)["set-resources"]["train_grpo"]["nodes"] == 1


@pytest.mark.parametrize("rule", sorted(GPU_RULES))
def test_gpu_rules_request_gpus_on_slurm(rule):
    values = profile_values.load(SLURM)["set-resources"][rule]
    assert values["gpu"] >= 1
    assert values["cpus_per_gpu"] >= 1
    # A non-zero cpus_per_task would win over cpus_per_gpu in the plugin (--cpus-per-task).
    assert values["cpus_per_task"] == 0
    assert {"mem_mb", "runtime", "slurm_partition"} <= set(values)


def _rules_declaring_gpus() -> set[str]:
    """Rules in workflow/rules/*.smk whose own `resources:` block names a gpu."""
    found = set()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for match in re.finditer(r"^rule (\w+):(.*?)(?=^rule |\Z)", path.read_text(), re.M | re.S):
            resources = re.search(r"resources:\s*\n((?:\s{8}.*\n?)+)", match.group(2))
            if resources and re.search(r"\bgpu\s*=", resources.group(1)):
                found.add(match.group(1))
    return found


def test_every_rule_that_declares_a_gpu_has_slurm_gpu_resources():
    set_resources = profile_values.load(SLURM)["set-resources"]
    declaring = _rules_declaring_gpus()
    assert declaring >= GPU_RULES | {"precompute_tf_pmi"}
    for rule in declaring:
        assert rule in set_resources, f"GPU rule {rule} has no set-resources in profiles/slurm"
        assert set_resources[rule].get("cpus_per_gpu", 0) >= 1, rule
        assert {"mem_mb", "runtime"} <= set(set_resources[rule]), rule


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda path: path.name)
def test_slurm_extra_never_sets_options_the_plugin_manages(profile):
    content = profile_values.load(profile)
    extras = [
        str(values["slurm_extra"])
        for values in [
            content.get("default-resources", {}),
            *content.get("set-resources", {}).values(),
        ]
        if "slurm_extra" in values
    ]
    for extra in extras:
        for pattern, option in get_forbidden_slurm_options().items():
            assert not re.search(pattern, extra), f"{profile.name}: {option} in slurm_extra"


def _without_keys(resources: dict, keys: set[str] = SITE_KEYS) -> dict:
    return {key: value for key, value in resources.items() if key not in keys}


def test_ci_overlay_changes_only_site_settings():
    base, overlay = profile_values.load(SLURM), profile_values.load(SLURM_CI)
    assert _without_keys(overlay["default-resources"]) == _without_keys(base["default-resources"])
    assert overlay["set-resources"].keys() == base["set-resources"].keys()
    for rule, values in base["set-resources"].items():
        ignored = SITE_KEYS | (SIZE_KEYS if rule == "train_grpo" else set())
        assert _without_keys(overlay["set-resources"][rule], ignored) == _without_keys(
            values, ignored
        ), rule
    assert "executor" not in overlay


def test_ci_overlay_status_checks_work_without_slurmdbd():
    overlay = profile_values.load(SLURM_CI)
    assert overlay["slurm-status-command"] == "squeue"
    assert overlay["slurm-no-account"] is True
    setup = (REPO / "scripts" / "slurm" / "setup_slurm.sh").read_text()
    min_job_age = int(re.search(r"MIN_JOB_AGE=\$\{MIN_JOB_AGE:-(\d+)\}", setup).group(1))
    assert min_job_age >= 300
    # The plugin silently prefers sacct when MinJobAge < 3 x the first status delay.
    assert 3 * overlay["slurm-init-seconds-before-status-checks"] <= min_job_age


@pytest.mark.parametrize("profile", ["local", "laptop"])
def test_local_profiles_limit_gpu_jobs(profile):
    content = profile_values.load(PROFILES / profile)
    assert content["executor"] == "local"
    # A global limit on the `gpu` resource the GPU rules declare.
    assert content["resources"]["gpu"] >= 1


# profiles/slurm alone fails on its placeholders (tests/test_cluster_profile.py).
@pytest.mark.parametrize("profiles", [["slurm", "slurm-ci"], ["laptop"]])
def test_snakemake_accepts_the_profiles_in_a_dry_run(profiles, tmp_path, data_dir):
    profile_args = [arg for name in profiles for arg in ("--profile", str(PROFILES / name))]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml"), str(TINY),
         *profile_args, "--dry-run", "data"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RBIO_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Using profile" in result.stderr
