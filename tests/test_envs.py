"""The lock and the conda environments made from it.

uv.lock is consistent with pyproject.toml, .venv holds exactly what it pins, and envs/*.yaml are
what `make envs` renders from the locks (never hand-edited) and hold every package the scripts of
the rules that use them import (following the rbio package's imports).

A rule's environment is its `conda:` directive; rules without one are checked against
RECOMMENDED_ENVS, the mapping the directives should follow.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from rbio.lockfile import Lock, compare_with_installed, installed_versions
from tests.helpers import REPO

ENVS = REPO / "envs"
RULES = REPO / "workflow" / "rules"
SRC = REPO / "src"

RECOMMENDED_ENVS = {
    "acquire_perturbqa": "data",
    "acquire_hgnc_aliases": "data",
    "ingest_perturbqa": "data",
    "make_split": "data",
    "build_prompts": "data",
    "build_go_index": "verifiers",
    "gene_embeddings": "verifiers",
    "train_mlp_verifier": "verifiers",
    "precompute_tf_pmi": "verifiers",
    "prepare_base_model": "training",
    "train_grpo": "training",
    "evaluate_model": "evaluation",
    "download_published_checkpoint": "evaluation",
    "evaluate_baselines": "evaluation",
    "run_summary": "evaluation",
    "paper_tables": "evaluation",
    "paper_figures": "evaluation",
    "compare_runs": "evaluation",
}
# Imported only behind a configuration switch, and installed where that switch needs them:
# transcriptformer (+ its omegaconf) in envs/transcriptformer.yaml, vLLM and DeepSpeed with the
# project's `gpu` extra.
FEATURE_GATED = {"transcriptformer", "omegaconf", "vllm", "deepspeed"}


def _env_files() -> list[Path]:
    return sorted(ENVS.glob("*.yaml"))


@cache
def _env(name: str) -> dict:
    return yaml.safe_load((ENVS / f"{name}.yaml").read_text())


def _requirement_name(spec: str) -> str:
    return re.split(r"[=<>!~ \[]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _packages(name: str) -> set[str]:
    """Normalised names of every conda and pip package the environment lists."""
    names = set()
    for dependency in _env(name)["dependencies"]:
        specs = dependency["pip"] if isinstance(dependency, dict) else [dependency]
        names |= {_requirement_name(spec) for spec in specs}
    return names


# --- which rule runs which script in which environment ------------------------------------------


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted(RULES.glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.M | re.S):
            blocks[match.group(1)] = match.group(2)
    return blocks


def _script_of(block: str) -> Path | None:
    match = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", block, re.M)
    return (RULES / match.group(1)).resolve() if match else None


def _envs_of(rule: str, block: str) -> list[str]:
    """Environment names named in the rule's `conda:` (all alternatives), else the recommended."""
    directive = re.search(r"^\s+conda:\s*\n((?:\s{8}.*\n?)+)", block, re.M)
    if directive:
        return re.findall(r"envs/([\w-]+)\.yaml", directive.group(1))
    return [RECOMMENDED_ENVS[rule]] if rule in RECOMMENDED_ENVS else []


# --- what a script imports ------------------------------------------------------------------------


def _module_path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, package: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


@cache
def third_party_imports(script: Path) -> frozenset[str]:
    """Top-level third-party modules imported by the script or any rbio module it reaches
    (function-level imports included: a job may call any of them)."""
    seen: set[str] = set()
    found: set[str] = set()
    pending = [(script, "")]
    while pending:
        path, package = pending.pop()
        for name in _imported_names(path, package):
            parts = name.split(".")
            if parts[0] != "rbio":
                found.add(parts[0])
                continue
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                module_file = _module_path(module)
                if module_file is not None and module not in seen:
                    seen.add(module)
                    is_package = module_file.name == "__init__.py"
                    pending.append(
                        (module_file, module if is_package else ".".join(parts[: depth - 1]))
                    )
    return frozenset(found - set(sys.stdlib_module_names) - {"__future__", "snakemake", ""})


@cache
def _installed_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _provided(module: str, packages: set[str]) -> bool:
    """The environment lists a distribution of `module`, by its PyPI or conda-forge name."""
    for distribution in _installed_distributions().get(module, [module]):
        if re.sub(r"[-_.]+", "-", distribution).lower() in packages:
            return True
    return False


# --- tests ----------------------------------------------------------------------------------------


def _lock_info():
    spec = importlib.util.spec_from_file_location("lock_info", REPO / "scripts" / "lock_info.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _uv() -> str:
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed (make setup installs it into .tools/)")
    return uv


@pytest.mark.parametrize("project", [REPO, REPO / "envs" / "transcriptformer"], ids=["main", "tf"])
def test_lock_is_consistent_with_pyproject(project):
    result = subprocess.run(
        [_uv(), "lock", "--check", "--offline", "--project", str(project)],
        capture_output=True, text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    assert result.returncode == 0, f"uv.lock is stale, run `make lock`:\n{result.stderr}"


def test_the_environment_is_exactly_the_lock():
    installed = installed_versions()
    extras = ["test", *(["gpu"] if "vllm" in installed else [])]
    problems = compare_with_installed(Lock.read(REPO / "uv.lock"), extras, installed)
    assert not problems, "\n".join(problems)


def test_lock_comparison_catches_every_kind_of_difference():
    lock = Lock.read(REPO / "uv.lock")
    installed = installed_versions()
    changed = {**installed, "pyyaml": "0.0.1", "not-locked": "1.0"}
    del changed["jsonschema"]
    problems = "\n".join(compare_with_installed(lock, ["test"], changed))
    assert "pyyaml: 0.0.1 installed" in problems
    assert "not-locked==1.0 is installed but not locked" in problems
    assert "jsonschema==" in problems and "not installed" in problems


def test_torch_is_pinned_and_cuda_runtime_is_only_torchs_and_vllms():
    lock = Lock.read(REPO / "uv.lock")
    assert lock.version("torch") == "2.13.0"
    cpu = set(lock.closure([("rbio-pipeline", ["test"])], {"sys_platform": "darwin"}))
    assert not set(lock.cuda_runtime()) & cpu, "a non-CUDA platform must not need CUDA packages"


@pytest.mark.parametrize("path", _env_files(), ids=lambda path: path.stem)
def test_env_file_is_generated_from_the_lock(path):
    expected = _lock_info().env_files()
    assert path in expected, f"{path.name} is not made by scripts/lock_info.py"
    assert path.read_text() == expected[path], f"{path.name} differs from the lock: run `make envs`"


@pytest.mark.parametrize("path", _env_files(), ids=lambda path: path.stem)
def test_env_file_is_a_valid_conda_environment(path):
    content = yaml.safe_load(path.read_text())
    assert set(content) == {"channels", "dependencies"}, path.name
    assert content["channels"][0] == "conda-forge"
    conda_specs = [spec for spec in content["dependencies"] if isinstance(spec, str)]
    assert "python=3.11" in conda_specs, "Snakemake's script preamble needs the same Python"
    pip = next(dep["pip"] for dep in content["dependencies"] if isinstance(dep, dict))
    assert pip and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", spec) for spec in pip), pip
    assert path.read_text().startswith("#"), "say which rules use the environment"


def test_the_stage_environments_exist():
    assert {path.stem for path in _env_files()} >= {
        "data", "verifiers", "training", "evaluation", "transcriptformer"
    }  # fmt: skip


def test_stage_environments_pin_the_pipelines_torch_and_transcriptformer_its_own():
    assert "torch==2.13.0" in _packages_with_versions("training")
    tf = _packages_with_versions("transcriptformer")
    assert "transcriptformer==0.6.1" in tf
    # The wheel's METADATA pins torch 2.5.1: installing it next to torch 2.13 would break one.
    assert "torch==2.5.1" in tf


def _packages_with_versions(name: str) -> list[str]:
    return next(dep["pip"] for dep in _env(name)["dependencies"] if isinstance(dep, dict))


def test_every_scripted_rule_has_an_environment():
    rules = {rule for rule, block in _rule_blocks().items() if _script_of(block)}
    assert rules, "no rules found"
    missing = sorted(rule for rule in rules if not _envs_of(rule, _rule_blocks()[rule]))
    assert not missing, f"rules without conda: nor a recommended environment: {missing}"
    unknown = {env for rule in rules for env in _envs_of(rule, _rule_blocks()[rule])}
    assert unknown <= {path.stem for path in _env_files()}


@pytest.mark.parametrize("rule", sorted(_rule_blocks()))
def test_environment_provides_every_import_of_the_rules_script(rule):
    block = _rule_blocks()[rule]
    script = _script_of(block)
    if script is None:
        pytest.skip(f"{rule} runs no script")
    for env in _envs_of(rule, block):
        packages = _packages(env)
        missing = sorted(
            module
            for module in third_party_imports(script) - FEATURE_GATED
            if not _provided(module, packages)
        )
        assert not missing, f"{rule} ({script.name}) imports what envs/{env}.yaml lacks: {missing}"


def test_transcriptformer_environment_provides_the_tf_backend():
    script = REPO / "workflow" / "scripts" / "precompute_tf_pmi.py"
    assert "transcriptformer" in third_party_imports(script)
    packages = _packages("transcriptformer")
    needed = third_party_imports(script) - {"vllm", "deepspeed", "omegaconf"}
    missing = [module for module in needed if not _provided(module, packages)]
    assert not missing, missing
