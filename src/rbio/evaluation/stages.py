"""Entry points of the evaluation rules (the workflow scripts call these)."""

from __future__ import annotations

from pathlib import Path

from rbio import provenance
from rbio.config import tracking_target
from rbio.evaluation.generate import (
    EvaluationRequest,
    GenerationSettings,
    run_evaluation,
    training_run_info,
)
from rbio.evaluation.tracking import log_evaluation_run
from rbio.provenance import Provenance


def evaluate_model(
    settings: GenerationSettings,
    *,
    n_bootstrap: int,
    model_name: str,
    model_kind: str,
    model_dir: str,
    split: str,
    prompt_style: str,
    test_parquet: str,
    predictions_path: str,
    metrics_path: str,
    checkpoint_dir: str | None,
    record: Provenance,
    provenance_path: str,
) -> None:
    """Evaluate one model on one split's test rows with one system prompt; log an MLflow run
    tagged like the model's training run (``stage=eval``) and linked to it by the trained
    model's provenance digest."""
    request = EvaluationRequest(
        model_name=model_name,
        model_dir=model_dir,
        test_parquet=test_parquet,
        split=split,
        prompt_style=prompt_style,
        settings=settings,
        n_bootstrap=n_bootstrap,
        predictions_path=predictions_path,
        metrics_path=metrics_path,
        checkpoint_dir=checkpoint_dir,
    )
    metrics = run_evaluation(request)
    trained = model_kind == "trained"
    uri, experiment = tracking_target()
    log_evaluation_run(
        metrics,
        tracking_uri=uri,
        experiment=experiment,
        tags={
            "variant": model_name,
            "split": split,
            "seed": settings.seed,
            "stage": "eval",
            "prompt": prompt_style,
            "model_kind": model_kind,
            "train_run_id": training_run_info(model_dir).get("run_id", "") if trained else "",
            "model_provenance_digest": model_digest(model_dir) if trained else "",
            **record.tags(),
        },
        params={**vars(settings), "n_bootstrap": n_bootstrap},
        run_name=f"eval {model_name} {split} {prompt_style}",
    )
    record.write(provenance_path)


def model_digest(model_dir: str | Path) -> str:
    """The provenance digest of a trained model folder (its training run carries the same)."""
    return provenance.read(model_dir)["digest"]
