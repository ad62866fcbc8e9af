"""Entry points of the evaluation rules (the workflow scripts call these)."""

from __future__ import annotations

from pathlib import Path

from rbio import provenance
from rbio.config import tracking_target
from rbio.evaluation.baselines import BaselineInputs, evaluate_baselines
from rbio.evaluation.generate import EvaluationRequest, run_evaluation, training_run_info
from rbio.provenance import Provenance
from rbio.tracking import log_evaluation_run, run_tags


def evaluate_model(request: EvaluationRequest, *, model_kind: str, record: Provenance) -> None:
    """Evaluate one model on one split's test rows with one system prompt; log an MLflow run
    tagged like the model's training run (``stage=eval``) and linked to it by the trained
    model's provenance digest (``record``: the provenance of this evaluation)."""
    metrics = run_evaluation(request)
    trained = model_kind == "trained"
    uri, experiment = tracking_target()
    log_evaluation_run(
        metrics,
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
            train_run_id=training_run_info(request.model_dir).get("run_id", "") if trained else "",
            model_provenance_digest=model_digest(request.model_dir) if trained else "",
        ),
        params={**vars(request.settings), "n_bootstrap": request.n_bootstrap},
        run_name=f"eval {request.model_name} {request.split} {request.prompt_style}",
    )


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
