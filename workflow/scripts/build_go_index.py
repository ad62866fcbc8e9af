"""Snakemake adapter: direct GO annotations per gene and aspect, propagated table, coverage."""

from rbio.config import load_config
from rbio.logs import log_to
from rbio.verifiers.stages import build_go_index

log_to(snakemake.log[0])
build_go_index(
    config=load_config(snakemake.config),
    perturbqa_path=snakemake.input.perturbqa,
    out_index=snakemake.output.index,
    out_propagated=snakemake.output.propagated,
    out_coverage=snakemake.output.coverage,
)
