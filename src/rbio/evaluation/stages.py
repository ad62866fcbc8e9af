"""Entry points of the evaluation rules (the workflow scripts call these)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from rbio import provenance
from rbio.config import tracking_target
from rbio.evaluation.baselines import BaselineInputs, evaluate_baselines
from rbio.evaluation.generate import EvaluationRequest, run_evaluation, training_run_info
from rbio.provenance import Provenance
from rbio.tracking import (
    evaluation_run,
    log_evaluation_results,
    log_evaluation_run,
    public_uri,
    run_tags,
)

COMPLETIONS_SAMPLE = "completions_sample.json"  # an artifact of the evaluation run
SAMPLE_COLUMNS = (
    "pert", "gene", "cell_line", "label", "greedy_completion", "greedy_answer", "samples",
    "sample_answers", "answer", "strict_answer",
)  # fmt: skip


def evaluate_model(request: EvaluationRequest, *, model_kind: str, record: Provenance) -> None:
    """Evaluate one model on one split's test rows with one system prompt inside an MLflow run
    tagged like the model's training run (``stage=eval``), linked to it by the trained model's
    provenance digest and nested under it; the run holds the metrics, the predictions, the
    evaluation summary and a sample of completions (``record``: this evaluation's provenance)."""
    trained = model_kind == "trained"
    uri, experiment = tracking_target()
    training = training_run_info(request.model_dir) if trained else {}
    with evaluation_run(
        tracking_uri=uri,
        experiment=experiment,
        tags=run_tags(
            variant=request.model_name,
            split=request.split,
            seed=request.settings.seed,
            stage="eval",
            provenance_tags=record.tags(),
            prompt=request.prompt_style,
            model_kind=model_kind,
            train_run_id=training.get("run_id") or "",
            model_provenance_digest=model_digest(request.model_dir) if trained else "",
        ),
        params={**vars(request.settings), "n_bootstrap": request.n_bootstrap},
        run_name=f"eval {request.model_name} {request.split} {request.prompt_style}",
        # Nested only in the store that holds the training run.
        # (run.json records the store as rbio.tracking.public_uri writes it: no credentials).
        parent_run_id=training.get("run_id")
        if training.get("tracking_uri") == public_uri(uri)
        else None,
    ) as run_id:
        metrics = run_evaluation(request)
        # Not a rule output: only on the run.
        with tempfile.TemporaryDirectory() as scratch:
            sample = Path(scratch) / COMPLETIONS_SAMPLE
            write_completion_sample(request.predictions_path, sample)
            log_evaluation_results(
                run_id,
                metrics,
                tracking_uri=uri,
                artifacts=[request.predictions_path, request.summary_path, sample],
            )


def write_completion_sample(predictions_path: str | Path, path: str | Path, rows: int = 20) -> None:
    """The first ``rows`` questions with their completions and answers as readable JSON (the
    predictions are parquet, which MLflow's artifact view does not show)."""
    frame = pd.read_parquet(predictions_path).head(rows)
    columns = [c for c in SAMPLE_COLUMNS if c in frame]
    frame[columns].to_json(path, orient="records", indent=1, force_ascii=False)


def model_digest(model_dir: str | Path) -> str:
    """The provenance digest of a trained model folder (its training run carries the same)."""
    return provenance.read(model_dir)["digest"]


def evaluate_split_baselines(
    inputs: BaselineInputs,
    *,
    split: str,
    test_lines_are_new: bool,
    n_bootstrap: int,
    seed: int,
    out_dir: str | Path,
    record: Provenance,
) -> None:
    """Every baseline on one split's test rows, one MLflow run each (``model_kind=baseline``)."""
    tables = evaluate_baselines(
        inputs,
        test_lines_are_new=test_lines_are_new,
        out_dir=out_dir,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    uri, experiment = tracking_target()
    for name, metrics in tables.items():
        tags = run_tags(
            variant=name,
            split=split,
            seed=seed,
            stage="eval",
            provenance_tags=record.tags(),
            prompt="",
            model_kind="baseline",
        )
        log_evaluation_run(
            metrics,
            tracking_uri=uri,
            experiment=experiment,
            tags=tags,
            run_name=f"baseline {name} {split}",
        )
