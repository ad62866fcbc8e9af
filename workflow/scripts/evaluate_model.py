"""Snakemake adapter: evaluate one model on one split's test rows with one system prompt."""

from pathlib import Path

from rbio.config import load_config
from rbio.evaluation.generate import (
    EvaluationRequest,
    GenerationSettings,
    run_evaluation,
    training_run_info,
)
from rbio.evaluation.tracking import log_evaluation_run
from rbio.logs import log_to

log_to(snakemake.log[0])
cfg = load_config(snakemake.config)
wildcards = snakemake.wildcards
model_dir = str(Path(snakemake.input.model).parent)
checkpoint = snakemake.input.get("checkpoint")
settings = GenerationSettings(
    greedy=cfg.evaluation.greedy,
    num_samples=cfg.evaluation.num_samples,
    temperature=cfg.evaluation.temperature,
    max_new_tokens=cfg.evaluation.max_new_tokens,
    batch_size=cfg.evaluation.batch_size,
    seed=cfg.seed,
)
request = EvaluationRequest(
    model_name=wildcards.model,
    model_dir=model_dir,
    test_parquet=snakemake.input.test,
    split=wildcards.split,
    prompt_style=wildcards.prompt,
    settings=settings,
    n_bootstrap=cfg.evaluation.bootstrap,
    predictions_path=snakemake.output.predictions,
    metrics_path=snakemake.output.metrics,
    checkpoint_dir=str(Path(checkpoint).parent) if checkpoint else None,
)
metrics = run_evaluation(request)
log_evaluation_run(
    metrics,
    tracking_uri=cfg.mlflow.resolved_uri(),
    experiment=cfg.mlflow.experiment,
    tags={
        "variant": wildcards.model,
        "split": wildcards.split,
        "seed": cfg.seed,
        "stage": "eval",
        "config_hash": snakemake.params.config_hash,
        "prompt": wildcards.prompt,
        "model_kind": snakemake.params.kind,
        "train_run_id": training_run_info(model_dir).get("run_id", "")
        if snakemake.params.kind == "trained"
        else "",
    },
    params={**vars(settings), "n_bootstrap": cfg.evaluation.bootstrap},
    run_name=f"eval {wildcards.model} {wildcards.split} {wildcards.prompt}",
)
