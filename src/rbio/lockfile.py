"""The project's lock (``uv.lock``): what it pins, what is installed, the conda files made from it.

``uv lock`` writes the lock from ``pyproject.toml`` (every distribution at one exact version);
``make setup`` installs it with ``uv sync --frozen``. This module reads it for what uv does not
do: check that an environment holds exactly the locked versions, and render the per-stage conda
environment files (``envs/*.yaml``) from the same pins.

Imports only the standard library at module level: ``make setup`` calls it before ``.venv`` exists.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = "rbio-pipeline"
# Distributions that only PyPI's CUDA build of torch (and vLLM) pull in: left out on a CPU machine,
# where the CPU build of the locked torch version is installed instead.
CUDA_RUNTIME = re.compile(r"^(nvidia-.+|cuda-.+|triton)$")
# The platform the conda files are rendered for: the GPU clusters the paper configuration runs on.
CLUSTER_PLATFORM = {
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "os_name": "posix",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
}


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Lock:
    """The packages of a uv lock, by normalised name (several entries where the lock forks)."""

    packages: Mapping[str, tuple[dict[str, Any], ...]]

    @classmethod
    def read(cls, path: str | Path) -> Lock:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
        packages: dict[str, list[dict[str, Any]]] = {}
        for package in document["package"]:
            packages.setdefault(normalise(package["name"]), []).append(package)
        return cls({name: tuple(entries) for name, entries in packages.items()})

    def version(self, name: str) -> str:
        entries = self.packages.get(normalise(name))
        if not entries:
            raise KeyError(f"{name} is not in the lock")
        versions = {entry["version"] for entry in entries}
        if len(versions) > 1:
            raise KeyError(f"the lock holds several versions of {name}: {sorted(versions)}")
        return versions.pop()

    def direct_dependencies(self) -> list[str]:
        """What the lock's own (virtual) project depends on."""
        project = next(
            entry
            for entries in self.packages.values()
            for entry in entries
            if "virtual" in entry.get("source", {}) or "editable" in entry.get("source", {})
        )
        return [normalise(dependency["name"]) for dependency in project["dependencies"]]

    def cuda_runtime(self) -> list[str]:
        return sorted(name for name in self.packages if CUDA_RUNTIME.match(name))

    def closure(
        self,
        roots: Iterable[tuple[str, Iterable[str]]],
        platform: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """name -> version of every distribution that installing ``roots`` (name, extras) pulls
        in on ``platform`` (marker values; default: this interpreter), roots included."""
        from packaging.markers import Marker, default_environment

        environment = {**default_environment(), **(platform or {})}

        def applies(dependency: Mapping[str, Any]) -> bool:
            marker = dependency.get("marker")
            return marker is None or Marker(marker).evaluate({**environment, "extra": ""})

        found: dict[str, str] = {}
        seen: set[tuple[str, str | None, str]] = set()
        pending = [(normalise(name), None, tuple(extras)) for name, extras in roots]
        while pending:
            name, version, extras = pending.pop()
            entry = self._entry(name, version)
            found[name] = entry["version"]
            dependencies = list(entry.get("dependencies", []))
            for extra in extras:
                dependencies += entry.get("optional-dependencies", {}).get(extra, [])
            for dependency in filter(applies, dependencies):
                target, pinned = normalise(dependency["name"]), dependency.get("version")
                for extra in ("", *dependency.get("extra", [])):
                    if (target, pinned, extra) not in seen:
                        seen.add((target, pinned, extra))
                        pending.append((target, pinned, (extra,) if extra else ()))
        return found

    def _entry(self, name: str, version: str | None) -> dict[str, Any]:
        entries = self.packages[name]
        if version is None and len(entries) > 1:
            raise KeyError(f"{name}: the lock forks ({[e['version'] for e in entries]})")
        return next(entry for entry in entries if version in (None, entry["version"]))


def installed_versions() -> dict[str, str]:
    """name -> version of every distribution in the running interpreter's environment."""
    from importlib import metadata

    return {normalise(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def compare_with_installed(
    lock: Lock, extras: Iterable[str], installed: Mapping[str, str]
) -> list[str]:
    """What differs between the lock (project + ``extras``, this platform) and ``installed``.

    A CPU build of torch (``2.13.0+cpu``) counts as the locked ``2.13.0``, and the CUDA runtime
    distributions may then be absent; anything else missing, extra or at another version counts.
    """
    wanted = lock.closure([(ROOT, extras)])
    wanted.pop(ROOT)
    cpu_torch = installed.get("torch", "").endswith("+cpu")
    problems = []
    for name, version in sorted(wanted.items()):
        have = installed.get(name)
        if have is None and cpu_torch and CUDA_RUNTIME.match(name):
            continue
        if have is None:
            problems.append(f"{name}=={version} is locked but not installed")
        elif have.split("+")[0] != version:
            problems.append(f"{name}: {have} installed, {version} locked")
    extra = sorted(set(installed) - set(wanted) - {ROOT})
    problems += [f"{name}=={installed[name]} is installed but not locked" for name in extra]
    return problems


def render_conda_env(
    lock: Lock, header: str, distributions: Iterable[str], lock_name: str = "uv.lock"
) -> str:
    """A conda environment file: Python 3.11 and pip from conda-forge, then ``distributions`` and
    everything they pull in at the locked versions for the cluster platform (Linux x86_64)."""
    pins = lock.closure([(name, ()) for name in distributions], CLUSTER_PLATFORM)
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    lines += [
        f"# Generated from {lock_name} by `make envs`: do not edit by hand.",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *(f"      - {name}=={version}" for name, version in sorted(pins.items())),
    ]
    return "\n".join(lines) + "\n"
