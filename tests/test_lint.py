"""Static checks of the whole repository: ruff (lint + format), snakefmt, `snakemake --lint`.

Each runs the tool as a user would, from the repository root, in a few seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BIN = Path(sys.executable).parent
SNAKEMAKE_FILES = ["Snakefile", "workflow/", "tests/slurm/resilience_workflow/Snakefile"]


def _run(*command: str, timeout: float = 120, env: dict | None = None):
    return subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_ruff_check_passes():
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout[-5000:]


def test_ruff_format_is_applied():
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_snakefmt_is_applied():
    result = _run(str(BIN / "snakefmt"), "--check", *SNAKEMAKE_FILES)
    assert result.returncode == 0, result.stderr[-5000:]


def _snakemake_lints(data_dir: Path) -> dict[str, list[str]]:
    """`snakemake --lint` on the paper configuration: finding title -> where it was found."""
    result = _run(
        str(BIN / "snakemake"), "--lint", env={"RBIO_DATA_DIR": str(data_dir)}, timeout=180
    )
    text = result.stdout + result.stderr
    if result.returncode != 0 and "Lints for" not in text:
        pytest.fail(f"snakemake --lint did not run:\n{text[-5000:]}")
    findings: dict[str, list[str]] = {}
    where = ""
    for line in text.splitlines():
        if line.startswith("Lints for "):
            where = line.removeprefix("Lints for ").rstrip(":")
        elif match := re.match(r"    \* (.+?):?$", line):
            findings.setdefault(match.group(1), []).append(where)
    return findings


@pytest.fixture(scope="module")
def snakemake_lints(data_dir) -> dict[str, list[str]]:
    return _snakemake_lints(data_dir)


def test_snakemake_lint_is_clean(snakemake_lints):
    assert not snakemake_lints, "snakemake --lint:\n" + "\n".join(
        f"{title}\n    " + "\n    ".join(places) for title, places in snakemake_lints.items()
    )
