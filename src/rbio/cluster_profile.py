"""Checks of a cluster profile while the workflow parses, before the SLURM plugin starts.

``profiles/slurm`` ships placeholders (``YOUR_PARTITION``, ``YOUR_ACCOUNT``,
``YOUR_GPU_PARTITION``) that each site replaces. Left as they are, a dry run succeeds and the real
run fails inside the plugin (``No such file or directory: 'sacctmgr'`` on a machine without
SLURM, an invalid partition on one with it). :func:`check_cluster_profile` fails in one line
instead: the resource, the placeholder and the profile file that holds it; and, for a real SLURM
run, a submit host without ``sbatch``.

Snakemake does not tell a workflow its executor while it parses (``workflow.executor_plugin`` is
set only when the DAG runs), so the executor is read the way Snakemake reads it: ``--executor`` /
``-e`` on the command line, else ``executor:`` of the profiles given.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from rbio.config import PLACEHOLDER_MARK, ConfigError

# The file names Snakemake reads in a profile folder (the first that exists).
PROFILE_FILE_NAMES = ("config.v8+.yaml", "config.yaml")
PROFILE_OPTIONS = ("--profile", "--workflow-profile")
EXECUTOR_OPTIONS = ("--executor", "-e")


def check_cluster_profile(
    resources: Mapping[str, Mapping[str, object]],
    argv: Sequence[str],
    environ: Mapping[str, str],
    dryrun: bool,
) -> None:
    """Raise :class:`ConfigError` for a placeholder left in a resource (dry runs too), or for a
    real SLURM run on a machine without ``sbatch``.

    ``resources``: scope (``default-resources`` or a rule name) -> resource -> value as written.
    """
    profiles = profile_files(argv, environ)
    for scope, values in resources.items():
        for name, value in values.items():
            if isinstance(value, str) and PLACEHOLDER_MARK in value:
                raise ConfigError(
                    f"resource {name} of {scope} is the placeholder '{value}' of "
                    f"{_file_holding(value, profiles)}: replace it with your cluster's value"
                )
    if not dryrun and executor_name(argv, profiles) == "slurm" and not shutil.which("sbatch"):
        raise ConfigError(
            "the executor is slurm but sbatch is not on PATH: run on the cluster's submit host "
            "(login node), or choose a local profile"
        )


def profile_files(argv: Sequence[str], environ: Mapping[str, str]) -> list[Path]:
    """The profile files of this run, in the order Snakemake applies them (later ones win)."""
    folders = [environ["SNAKEMAKE_PROFILE"]] if environ.get("SNAKEMAKE_PROFILE") else []
    folders += _option_values(argv, PROFILE_OPTIONS)
    files = []
    for folder in folders:
        existing = [Path(folder) / name for name in PROFILE_FILE_NAMES]
        files += [path for path in existing if path.is_file()][:1]
    return files


def executor_name(argv: Sequence[str], profiles: Sequence[Path]) -> str | None:
    """The executor the command line names, else the last profile that names one."""
    given = _option_values(argv, EXECUTOR_OPTIONS)
    if given:
        return given[-1]
    named = [(yaml.safe_load(path.read_text()) or {}).get("executor") for path in profiles]
    return next((name for name in reversed(named) if name), None)


def _option_values(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """Values of ``--option value`` and ``--option=value`` (the argument list as given)."""
    values = []
    for position, argument in enumerate(argv):
        name, equals, value = argument.partition("=")
        if equals and name in options:
            values.append(value)
        elif argument in options and position + 1 < len(argv):
            values.append(argv[position + 1])
    return values


def _file_holding(placeholder: str, profiles: Sequence[Path]) -> str:
    holders = [path for path in profiles if placeholder in path.read_text()]
    return str(holders[-1]) if holders else "the profile"
