"""Snakemake adapter: direct GO annotations per gene and aspect, propagated table, coverage."""

from rbio import provenance
from rbio.logs import log_to
from rbio.verifiers.stages import build_go_index

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
build_go_index(
    origin=snakemake.params.origin,
    perturbqa_path=snakemake.input.perturbqa,
    out_index=snakemake.output.index,
    out_propagated=snakemake.output.propagated,
    out_coverage=snakemake.output.coverage,
)
record.write(snakemake.output.provenance)
