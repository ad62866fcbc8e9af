"""Rerun semantics: on a finished tiny run, which jobs a one-key config edit reruns.

Config reaches jobs only through ``params:``, so Snakemake's default rerun triggers rerun exactly
the jobs whose settings changed, and their downstream; settings that change no result (where the
data, the checkout or the tracking store live) rerun nothing. The table below is the README's
"What reruns when".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, TINY, run_workflow

pytestmark = pytest.mark.slow

# The finished run: the data, verifier and prompt stages, the EXP model of loco_k562 with its
# evaluation (one prompt style) and the baselines of that split.
TARGETS = (
    "data",
    "verifiers",
    "prompts",
    "results/eval/EXP/loco_k562/nocot/metrics.parquet",
    "results/eval/baselines/loco_k562/majority/metrics.parquet",
)
# The `verifiers` target trains the MLP verifier of both tiny splits (loco_k562, single_rpe1).
SPLIT_AND_AFTER = {
    "make_split": 2, "train_mlp_verifier": 2, "build_prompts": 6, "train_grpo": 1,
    "evaluate_model": 1, "evaluate_baselines": 1,
}  # fmt: skip
EVERYTHING = {
    "acquire_perturbqa": 8, "acquire_hgnc_aliases": 1, "ingest_perturbqa": 1,
    "build_go_index": 1, "gene_embeddings": 1, "precompute_tf_pmi": 1,
    "prepare_base_model": 1, **SPLIT_AND_AFTER,
}  # fmt: skip
MODEL_AND_AFTER = {"train_grpo": 1, "evaluate_model": 1}

# (overlay, the jobs `snakemake -n` plans: rule -> count). Every config section is covered.
RERUNS = [
    ({"seed": 7}, {**SPLIT_AND_AFTER, "gene_embeddings": 1, "prepare_base_model": 1}),
    ({"data": {"origin": "remote"}}, EVERYTHING),
    ({"splits": {"max_test_rows": 32}}, SPLIT_AND_AFTER),
    ({"prompts": {"max_train_prompts": 128}}, {"build_prompts": 6, **MODEL_AND_AFTER}),
    ({"prompts": {"negated_fraction": 0.5}}, {"build_prompts": 6, **MODEL_AND_AFTER}),
    (
        {"verifiers": {"embeddings": {"dim": 16}}},
        {
            "gene_embeddings": 1,
            "train_mlp_verifier": 2,
            "build_prompts": 1,
            "evaluate_baselines": 1,
        },
    ),  # fmt: skip
    (
        {"verifiers": {"mlp": {"hidden": 32}}},
        {"train_mlp_verifier": 2, "build_prompts": 1, "evaluate_baselines": 1},
    ),
    # Only the MLP prompts map the verifier's scores: the verifier is not retrained.
    ({"verifiers": {"mlp": {"confidence": "threshold_centred"}}}, {"build_prompts": 1}),
    (
        {"verifiers": {"tf_pmi": {"top_fraction": 0.02}}},
        {"precompute_tf_pmi": 1, "build_prompts": 1, "evaluate_baselines": 1},
    ),
    ({"verifiers": {"go": {"max_terms_per_aspect": 5}}}, {"build_prompts": 3}),
    (
        {"model": {"base": "Qwen/Qwen2.5-0.5B-Instruct"}},
        {"prepare_base_model": 1, **MODEL_AND_AFTER},
    ),
    ({"grpo": {"learning_rate": 2.0e-4}}, MODEL_AND_AFTER),
    # Half the generations per prompt, twice the prompts: the same global batch of completions.
    ({"grpo": {"num_generations": 2, "global_prompts_per_step": 2}}, MODEL_AND_AFTER),
    (
        {"variants": {"EXP": {"rewards": {"format": 1.0, "mention": 1.0, "answer": 1.0}}}},
        MODEL_AND_AFTER,
    ),  # fmt: skip
    ({"variants": {"TF": {"sources": {"tf": 1.0, "go": 1.0}}}}, {}),  # not among the targets
    ({"evaluation": {"temperature": 0.5}}, {"evaluate_model": 1}),
    ({"evaluation": {"bootstrap": 20}}, {"evaluate_model": 1, "evaluate_baselines": 1}),
    ({"evaluation": {"prompt_styles": ["nocot"]}}, {}),
    ({"mlflow": {"experiment": "elsewhere", "tracking_uri": "sqlite:///other.db"}}, {}),
    ({"data": {"local_dir": "/nonexistent/but/overridden/by/RBIO_DATA_DIR"}}, {}),
]


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    """rule -> job count from a dry run's "Job stats" table ({} for "Nothing to be done")."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("total", 1)[0]
    return {
        rule: int(count)
        for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)
        if rule not in {"all", "data", "verifiers", "prompts"}  # target rules
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("rerun")
    run_workflow(workdir, *TARGETS)
    assert planned(run_workflow(workdir, *TARGETS, args=("-n",))) == {}
    return workdir


@pytest.mark.parametrize(
    ("overlay", "expected"), RERUNS, ids=[repr(overlay) for overlay, _ in RERUNS]
)
def test_a_config_edit_reruns_exactly_the_jobs_that_use_it(finished_run, overlay, expected):
    result = run_workflow(finished_run, *TARGETS, extra_config=overlay, args=("-n",))
    assert planned(result) == expected


def test_a_moved_data_folder_or_tracking_store_reruns_nothing(finished_run, tmp_path, data_dir):
    moved_data = tmp_path / "data"
    moved_data.symlink_to(data_dir.resolve(), target_is_directory=True)
    env = {"RBIO_DATA_DIR": str(moved_data), "MLFLOW_TRACKING_URI": "sqlite:///moved.db"}
    result = run_workflow(finished_run, *TARGETS, args=("-n",), env=env)
    assert planned(result) == {}


def test_a_finished_run_copied_with_its_checkout_elsewhere_plans_nothing(
    finished_run, tmp_path, data_dir
):
    checkout = tmp_path / "elsewhere" / "checkout"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in tracked)):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, checkout / name)  # keeps mtimes, as cp -a or a remount does
    workdir = tmp_path / "elsewhere" / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(checkout / "Snakefile"),
         "--directory", str(workdir), "--configfile", str(checkout / "config.yaml"),
         str(checkout / TINY.relative_to(REPO)), "--cores", "1", "-n", *TARGETS],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "RBIO_DATA_DIR": str(data_dir),
             "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned(result) == {}, result.stdout[-3000:]


def test_every_artefact_folder_carries_its_provenance(finished_run):
    from rbio import provenance

    results = Path(finished_run) / "results"
    for folder in (
        "models/EXP/loco_k562", "models/base", "verifiers/mlp/loco_k562", "verifiers/go",
        "verifiers/tf_pmi", "eval/EXP/loco_k562/nocot", "eval/baselines/loco_k562",
        "splits/loco_k562", "prompts/exp/loco_k562",
    ):  # fmt: skip
        record = provenance.read(results / folder)
        assert record["lock_digest"] == provenance.lock_digest()
        for item in record["inputs"]:
            assert item["sha256"] == provenance.path_digest(Path(finished_run) / item["path"])
    model = provenance.read(results / "models/EXP/loco_k562")
    assert model["params"]["variant"]["sources"] == {"exp": 1.0}
    evaluation = provenance.read(results / "eval/EXP/loco_k562/nocot")
    inputs = {item["path"]: item["sha256"] for item in evaluation["inputs"]}
    model_record = results / "models/EXP/loco_k562/provenance.json"
    assert inputs["results/models/EXP/loco_k562/provenance.json"] == provenance.path_digest(
        model_record
    )


# What records how long something ran, or a run's random MLflow id.
CLOCK_OR_RUN_ID = {"trainer_state.json", "training_summary.json", "run.json", "evaluation.json"}
NOT_ARTEFACTS = {"mlflow", "checkpoints"}  # the tracking store; resume points of training


def _artefacts(workdir: Path) -> dict[str, bytes]:
    results = workdir / "results"
    return {
        path.relative_to(results).as_posix(): path.read_bytes()
        for path in sorted(results.rglob("*"))
        if path.is_file() and path.relative_to(results).parts[0] not in NOT_ARTEFACTS
    }


def test_same_config_from_scratch_gives_the_same_bytes(finished_run, tmp_path):
    second = tmp_path / "second"
    run_workflow(second, *TARGETS)
    first, again = _artefacts(finished_run), _artefacts(second)
    assert sorted(first) == sorted(again)
    differ = sorted(name for name in first if first[name] != again[name])
    assert [name for name in differ if Path(name).name not in CLOCK_OR_RUN_ID] == []
    # Splits, prompts, verifier scores, models, predictions and metrics are all among them.
    for prefix in ("splits/", "prompts/", "verifiers/", "models/EXP/", "eval/EXP/", "eval/base"):
        assert any(name.startswith(prefix) for name in first), prefix
