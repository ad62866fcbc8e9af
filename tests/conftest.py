"""Shared fixtures: the real data folder, a temporary MLflow store, CPU-friendly threads."""

from __future__ import annotations

import os

import pytest

from tests.helpers import REPO, shared_data_dir

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def data_dir():
    """../shared/data (or $RBIO_DATA_DIR); tests that need it skip with the reason when absent."""
    found = shared_data_dir()
    if found is None:
        pytest.skip(f"real data not found: set RBIO_DATA_DIR or place shared/data beside {REPO}")
    return found


@pytest.fixture(autouse=True)
def _mlflow_tmp(tmp_path, monkeypatch):
    # MLflow writes mlflow.db into the working directory when no URI is set: never in tests.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
