"""Snakemake adapter: training prompts of one source for one split (HF dataset on disk)."""

from pathlib import Path

from rbio import provenance
from rbio.config import GoConfig, PromptsConfig, from_params
from rbio.data.stages import prompts
from rbio.logs import log_to

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
go = snakemake.params.go
prompts(
    source=snakemake.wildcards.source,
    split_name=snakemake.wildcards.split,
    settings=from_params(PromptsConfig, snakemake.params.prompts),
    seed=snakemake.params.seed,
    go=from_params(GoConfig, go) if go else None,
    mlp_confidence=snakemake.params.mlp_confidence,
    train_path=snakemake.input.train,
    verifier_outputs={name: path for name, path in snakemake.input.items() if name != "train"},
    out_dir=snakemake.output[0],
)
record.write(Path(snakemake.output[0]) / provenance.FILE_NAME)
