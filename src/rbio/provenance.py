"""Where an artefact comes from: ``provenance.json`` beside every model, verifier, evaluation and
table, and the same values as MLflow tags.

A record holds the job's rule, wildcards and params (the config values it used) with their
digest, the code version (``git describe``, dirty flag), the digest of the lock the environment
was installed from, and the sha256 of every input. Its own ``digest`` identifies the artefact:
two records with the same digest were made by the same code, lock, settings and input bytes.
Nothing in it depends on time or on where the checkout lives, so two runs from scratch write
byte-identical records.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from rbio.io import sha256_file, write_json

REPO = Path(__file__).resolve().parents[2]
LOCK_FILE = "uv.lock"
FILE_NAME = "provenance.json"
# Bookkeeping inside a folder that is not its content: the folder's own record, and the marker
# Snakemake puts in a directory() output after its job.
NOT_CONTENT = {FILE_NAME, ".snakemake_timestamp"}
# The MLflow tags a run carries (training and evaluation alike).
TAGS = ("provenance_digest", "params_digest", "code_version", "lock_digest")


def canonical_digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (sorted keys, no whitespace)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def path_digest(path: str | Path) -> str:
    """sha256 of a file; of a folder, over its files' relative paths and contents."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.name in NOT_CONTENT:
            continue
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


@cache
def code_version(repo: Path = REPO) -> str:
    """``git describe`` of the checkout the code runs from (``-dirty`` when it has edits)."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=repo, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"  # not a git checkout (an unpacked release) or no git on the node
    return result.stdout.strip()


@cache
def lock_digest(repo: Path = REPO) -> str:
    lock = repo / LOCK_FILE
    return sha256_file(lock) if lock.is_file() else "unknown"


@dataclass(frozen=True)
class Provenance:
    rule: str
    wildcards: dict[str, str]
    params: dict[str, Any]
    inputs: list[dict[str, str]]  # {"path", "sha256"} per input file or folder, in rule order
    code_version: str = field(default_factory=code_version)
    lock_digest: str = field(default_factory=lock_digest)

    @property
    def params_digest(self) -> str:
        return canonical_digest(self.params)

    @property
    def digest(self) -> str:
        return canonical_digest(asdict(self))

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "params_digest": self.params_digest, "digest": self.digest}

    def tags(self) -> dict[str, str]:
        """MLflow tags: the record's digests, code version and lock digest."""
        return {
            "provenance_digest": self.digest,
            "params_digest": self.params_digest,
            "code_version": self.code_version,
            "lock_digest": self.lock_digest,
        }

    def write(self, path: str | Path) -> None:
        write_json(path, self.record())


def of_inputs(
    rule: str, wildcards: Mapping[str, str], params: Mapping[str, Any], inputs: Iterable[str]
) -> Provenance:
    return Provenance(
        rule=rule,
        wildcards=dict(wildcards),
        params=json.loads(json.dumps(dict(params), default=str)),
        inputs=[{"path": str(path), "sha256": path_digest(path)} for path in inputs],
    )


def of_job(job: Any) -> Provenance:
    """The record of the running Snakemake job (the ``snakemake`` object a script receives)."""
    return of_inputs(job.rule, dict(job.wildcards.items()), dict(job.params.items()), job.input)


def read(path: str | Path) -> dict[str, Any]:
    """A stored record; ``path`` may be the artefact's folder or the record itself."""
    path = Path(path)
    record = path / FILE_NAME if path.is_dir() else path
    if not record.is_file():
        raise FileNotFoundError(f"no {FILE_NAME} at {path}")
    return json.loads(record.read_text())


def describe(record: Mapping[str, Any]) -> str:
    """A record for a person: what made it, with which settings and inputs."""
    wildcards = ", ".join(f"{k}={v}" for k, v in record["wildcards"].items())
    lines = [
        f"rule         {record['rule']}" + (f" ({wildcards})" if wildcards else ""),
        f"digest       {record['digest']}",
        f"code         {record['code_version']}",
        f"lock         {record['lock_digest']}",
        f"params       {record['params_digest']}",
    ]
    for key, value in record["params"].items():
        lines.append(f"  {key} = {json.dumps(value, sort_keys=True)}")
    lines.append("inputs")
    lines += [f"  {item['sha256'][:16]}  {item['path']}" for item in record["inputs"]]
    return "\n".join(lines)
