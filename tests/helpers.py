"""Helpers for tests that run the real workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "tiny.yaml"


def shared_data_dir() -> Path | None:
    """The real data folder: $RBIO_DATA_DIR, else ../shared/data beside the checkout."""
    candidate = Path(os.environ.get("RBIO_DATA_DIR") or REPO.parent / "shared" / "data")
    return candidate if (candidate / "perturbqa").is_dir() else None


def run_workflow(
    workdir: Path,
    *targets: str,
    extra_config: dict | None = None,
    overlays: tuple[Path, ...] = (),
    args: tuple[str, ...] = (),
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess:
    """Run Snakemake on the tiny preset in ``workdir`` (outputs under workdir/results).

    ``overlays`` (config files of the repository, e.g. config/tiny_panel.yaml) come after the tiny
    preset, then ``extra_config``, written as a further overlay.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    configfiles = [str(REPO / "config.yaml"), str(TINY), *map(str, overlays)]
    if extra_config:
        overlay = workdir / "extra_config.yaml"
        overlay.write_text(yaml.safe_dump(extra_config))
        configfiles.append(str(overlay))
    data_dir = shared_data_dir()
    run_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        **({"RBIO_DATA_DIR": str(data_dir)} if data_dir else {}),
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", *configfiles,
        "--cores", "2",
        "--show-failed-logs",
        *args,
        *targets,
    ]  # fmt: skip
    result = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(targets)} failed:\n{result.stdout[-5000:]}\n{result.stderr[-8000:]}"
        )
    return result
