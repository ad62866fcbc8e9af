"""Snakemake adapter: evaluate one model on one split's test rows with one system prompt."""

from pathlib import Path

from rbio import provenance
from rbio.evaluation.generate import GenerationSettings
from rbio.evaluation.stages import evaluate_model
from rbio.logs import log_to

log_to(snakemake.log[0])
checkpoint = snakemake.input.get("checkpoint")
evaluate_model(
    GenerationSettings(**snakemake.params.generation),
    n_bootstrap=snakemake.params.bootstrap,
    model_name=snakemake.wildcards.model,
    model_kind=snakemake.params.kind,
    model_dir=str(Path(snakemake.input.model).parent),
    split=snakemake.wildcards.split,
    prompt_style=snakemake.wildcards.prompt,
    test_parquet=snakemake.input.test,
    predictions_path=snakemake.output.predictions,
    metrics_path=snakemake.output.metrics,
    checkpoint_dir=str(Path(checkpoint).parent) if checkpoint else None,
    record=provenance.of_job(snakemake),
    provenance_path=snakemake.output.provenance,
)
