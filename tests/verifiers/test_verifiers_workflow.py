"""The verifier stage through the real Snakemake on the tiny preset and the real data (~3 min)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from safetensors import safe_open

from rbio.verifiers import embeddings as emb
from tests.helpers import run_workflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("verifiers_workflow")
    run_workflow(workdir, "verifiers")
    return workdir


def test_go_index_and_coverage(workdir):
    index = pd.read_parquet(workdir / "results/verifiers/go/index.parquet")
    assert list(index.columns) == ["gene", "aspect", "go_id", "go_name"]
    coverage = json.loads((workdir / "results/verifiers/go/coverage.json").read_text())
    assert coverage["perturbqa_coverage"] > 0.95
    assert (workdir / "logs/verifiers/go/build_go_index.log").exists()


def test_embedding_file(workdir):
    embedding = emb.load_embedding(workdir / "results/verifiers/embeddings/go_svd.safetensors")
    assert embedding.kind == "go_svd" and embedding.matrix.shape[1] == 32  # tiny preset dim


def test_mlp_verifier_outputs(workdir):
    folder = workdir / "results/verifiers/mlp/loco_k562"
    train = pd.read_parquet(workdir / "results/splits/loco_k562/train.parquet")
    test = pd.read_parquet(workdir / "results/splits/loco_k562/test.parquet")
    scores = pd.read_parquet(folder / "scores.parquet")
    assert len(scores) == len(train) + len(test)
    assert scores["score"].between(0, 1).all()
    config = json.loads((folder / "config.json").read_text())
    assert "k562" not in config["training_lines"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["all"]["n"] == len(test)
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        assert "hidden.weight" in list(handle.keys())


def test_tf_questions(workdir):
    questions = pd.read_parquet(workdir / "results/verifiers/tf_pmi/questions.parquet")
    assert list(questions.columns) == ["gene_a", "gene_b", "pmi", "label", "confidence"]
    assert set(questions["label"]) == {0, 1}
    assert (questions.loc[questions["label"] == 1, "confidence"] >= 0.5).all()
