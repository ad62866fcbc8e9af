"""Read the repository's Snakemake profiles and evaluate their resource expressions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers import REPO

PROFILES = REPO / "profiles"
SLURM = PROFILES / "slurm"
SLURM_CI = PROFILES / "slurm-ci"
PROFILE_FILE = "config.v8+.yaml"


def load(profile: Path) -> dict[str, Any]:
    return yaml.safe_load((profile / PROFILE_FILE).read_text())


def merged(*profiles: Path) -> dict[str, Any]:
    """Profiles given as `--profile A --profile B`: B's top-level keys replace A's."""
    result: dict[str, Any] = {}
    for profile in profiles:
        result.update(load(profile))
    return result


def resource(profile: dict[str, Any], rule: str, name: str, attempt: int = 1, threads: int = 1):
    """The value Snakemake gives resource `name` of `rule` (set-resources win over defaults)."""
    expression = profile.get("set-resources", {}).get(rule, {}).get(name)
    if expression is None:
        expression = profile.get("default-resources", {}).get(name)
    if not isinstance(expression, str):
        return expression
    # Like Snakemake: a value is a Python expression of `attempt` and `threads` (our own, trusted
    # file) when it evaluates, else a plain string (a partition name).
    try:
        return eval(expression, {"__builtins__": {}}, {"attempt": attempt, "threads": threads})
    except (NameError, SyntaxError):
        return expression


def gpu_rules(profile: dict[str, Any]) -> set[str]:
    return {rule for rule, values in profile.get("set-resources", {}).items() if values.get("gpu")}


def slurm_command() -> list[str]:
    """The profile arguments every test submission uses."""
    return ["--profile", str(SLURM), "--profile", str(SLURM_CI)]
