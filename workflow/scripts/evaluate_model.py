"""Snakemake adapter: evaluate one model on one split's test rows with one system prompt."""

from pathlib import Path

from rbio import provenance
from rbio.evaluation.generate import EvaluationRequest, GenerationSettings
from rbio.evaluation.stages import evaluate_model
from rbio.logs import log_to

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
checkpoint = snakemake.input.get("checkpoint")
request = EvaluationRequest(
    model_name=snakemake.wildcards.model,
    model_dir=str(Path(snakemake.input.model).parent),
    test_parquet=snakemake.input.test,
    split=snakemake.wildcards.split,
    prompt_style=snakemake.wildcards.prompt,
    settings=GenerationSettings(**snakemake.params.generation),
    n_bootstrap=snakemake.params.bootstrap,
    predictions_path=snakemake.output.predictions,
    metrics_path=snakemake.output.metrics,
    summary_path=snakemake.output.summary,
    checkpoint_dir=str(Path(checkpoint).parent) if checkpoint else None,
    engine=snakemake.params.engine,
)
evaluate_model(request, model_kind=snakemake.params.kind, record=record)
record.write(snakemake.output.provenance)
