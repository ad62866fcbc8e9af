"""Fixtures for evaluation tests: a tiny model folder and a small split test table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rbio.data.prompts import SYSTEM_PROMPTS, question
from rbio.training.tiny_model import build_tiny_model

GENES = [f"GENE{i}" for i in range(12)]
PERTS = [f"PERT{i}" for i in range(8)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    texts = [*SYSTEM_PROMPTS.values(), question("PERT0", "GENE0", "k562"), *GENES, *PERTS]
    return build_tiny_model(tmp_path_factory.mktemp("models") / "base", texts, seed=0)


def make_test_rows(n: int = 48, seed: int = 0) -> pd.DataFrame:
    """Rows shaped like results/splits/{split}/test.parquet."""
    rng = np.random.default_rng(seed)
    pert = rng.choice(PERTS, n)
    return pd.DataFrame(
        {
            "cell_line": "k562",
            "pert": pert,
            "gene": rng.choice(GENES, n),
            "pert_original": pert,
            "gene_original": rng.choice(GENES, n),
            "label": (rng.random(n) < 0.3).astype("int8"),
            "direction": None,
            "split": "test",
            "pair_seen_elsewhere": rng.random(n) < 0.4,
            "pert_seen_elsewhere": np.isin(pert, PERTS[:5]),
        }
    )


@pytest.fixture
def test_parquet(tmp_path) -> Path:
    path = tmp_path / "splits" / "loco_k562" / "test.parquet"
    path.parent.mkdir(parents=True)
    make_test_rows().to_parquet(path, index=False)
    return path
