"""Entry points of the evaluation rules (the workflow scripts call these)."""

from __future__ import annotations

from rbio.config import Config
from rbio.evaluation.generate import (
    EvaluationRequest,
    GenerationSettings,
    run_evaluation,
    training_run_info,
)
from rbio.evaluation.tracking import log_evaluation_run


def evaluate_model(
    cfg: Config,
    *,
    model_name: str,
    model_kind: str,
    model_dir: str,
    split: str,
    prompt_style: str,
    test_parquet: str,
    predictions_path: str,
    metrics_path: str,
    checkpoint_dir: str | None,
) -> None:
    """Evaluate one model on one split's test rows with one system prompt; log an MLflow run
    tagged like the model's training run (``stage=eval``)."""
    settings = GenerationSettings(
        greedy=cfg.evaluation.greedy,
        num_samples=cfg.evaluation.num_samples,
        temperature=cfg.evaluation.temperature,
        max_new_tokens=cfg.evaluation.max_new_tokens,
        batch_size=cfg.evaluation.batch_size,
        seed=cfg.seed,
    )
    request = EvaluationRequest(
        model_name=model_name,
        model_dir=model_dir,
        test_parquet=test_parquet,
        split=split,
        prompt_style=prompt_style,
        settings=settings,
        n_bootstrap=cfg.evaluation.bootstrap,
        predictions_path=predictions_path,
        metrics_path=metrics_path,
        checkpoint_dir=checkpoint_dir,
    )
    metrics = run_evaluation(request)
    train_run_id = training_run_info(model_dir).get("run_id", "") if model_kind == "trained" else ""
    log_evaluation_run(
        metrics,
        tracking_uri=cfg.mlflow.resolved_uri(),
        experiment=cfg.mlflow.experiment,
        tags={
            "variant": model_name,
            "split": split,
            "seed": cfg.seed,
            "stage": "eval",
            "config_hash": cfg.hash(),
            "prompt": prompt_style,
            "model_kind": model_kind,
            "train_run_id": train_run_id,
        },
        params={**vars(settings), "n_bootstrap": cfg.evaluation.bootstrap},
        run_name=f"eval {model_name} {split} {prompt_style}",
    )
