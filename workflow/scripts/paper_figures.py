"""Snakemake adapter: paper figures (PNG + PDF) from every metrics file."""

from rbio import provenance
from rbio.logs import log_to
from rbio.reporting.figures import write_figures
from rbio.reporting.tables import collect_metrics

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
write_figures(
    collect_metrics(snakemake.params.entries),
    snakemake.params.out_dir,
    splits=snakemake.params.splits,
    prompts=snakemake.params.prompts,
    variants=snakemake.params.variants,
)
record.write(snakemake.output.provenance)
