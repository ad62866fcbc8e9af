"""Parsing the workflow needs nothing beyond what Snakemake itself installs.

With ``--software-deployment-method conda`` (or a container) the jobs bring their own packages,
so a user may run a plain Snakemake outside the project's venv. Then the Snakefile, the rule files
and their input functions may import only the standard library, Snakemake's own dependencies
(yaml, jsonschema, ...) and the light parts of rbio (src/ goes on sys.path while parsing).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rbio.lockfile import Lock
from tests.helpers import REPO, TINY

# Run in a subprocess: every top-level module outside the standard library, rbio and the
# requirement closure of Snakemake and its installed plugins raises ImportError, then a dry run plans the whole tiny DAG (which calls
# every input function of `all`).
BLOCKED_DRY_RUN = textwrap.dedent(
    """
    import importlib.metadata as md
    import re
    import sys

    from packaging.requirements import Requirement

    def closure(name, seen):
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            return seen
        seen.add(key)
        for text in md.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                closure(requirement.name, seen)
        return seen

    allowed_dists = set()
    for dist in md.distributions():  # Snakemake and its plugins, as a user installs them
        if dist.metadata["Name"].lower().startswith("snakemake"):
            closure(dist.metadata["Name"], allowed_dists)
    allowed = {"rbio", *sys.stdlib_module_names}
    for module, dists in md.packages_distributions().items():
        if any(re.sub(r"[-_.]+", "-", d).lower() in allowed_dists for d in dists):
            allowed.add(module)

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top not in allowed and not top.startswith("_"):
                raise ImportError(f"parse time imported {name}, which Snakemake does not install")

    sys.meta_path.insert(0, Blocker())
    from snakemake.cli import main

    sys.argv = ["snakemake", *sys.argv[1:]]
    main()
    """
)


def dry_run(tmp_path, target: str, *config: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_DRY_RUN, target, "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml"), *config,
         "-n", "--quiet", "rules"],
        capture_output=True, text=True, timeout=300,
        # Nothing from the caller's PYTHONPATH; the slow test below checks that the Snakefile
        # finds src/ without the venv's editable install.
        env={**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}, cwd=tmp_path,
    )  # fmt: skip


def test_dry_run_imports_only_what_snakemake_installs(tmp_path):
    """The tiny preset plans every rule of the DAG (all 11 variants), input functions included."""
    result = dry_run(tmp_path, "all", str(TINY))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert re.search(r"^train_grpo\s+11$", result.stdout, flags=re.MULTILINE), result.stdout


def plain_snakemake(tmp_path) -> Path:
    """A fresh venv holding only the locked Snakemake and its own dependencies."""
    uv = REPO / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("uv not installed (make setup)")
    venv = tmp_path / "plain"
    version = Lock.read(REPO / "uv.lock").version("snakemake")
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         f"snakemake=={version}"],
        check=True, timeout=600,
    )  # fmt: skip
    return venv / "bin" / "snakemake"


@pytest.mark.slow
def test_a_plain_snakemake_plans_the_workflow(tmp_path):
    """What a user outside the project's venv runs (README, "Reproducibility")."""
    snakemake = plain_snakemake(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    command = [str(snakemake), "all", "--snakefile", str(REPO / "Snakefile"),
               "--configfile", str(REPO / "config.yaml"), str(TINY), "-n", "--quiet", "rules"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert re.search(r"^train_grpo\s+11$", result.stdout, flags=re.MULTILINE), result.stdout

    # With per-rule conda environments: Snakemake asks conda about them only once it builds the
    # DAG, after parsing; without conda on this machine it gets exactly that far.
    result = subprocess.run(
        [*command, "--sdm", "conda"], cwd=work, capture_output=True, text=True, env=env
    )
    output = result.stdout + result.stderr
    if shutil.which("conda"):
        assert result.returncode == 0, output[-3000:]
    else:
        assert "Building DAG of jobs" in output and "conda info" in output, output[-3000:]
        assert "ImportError" not in output, output[-3000:]
