"""Snakemake adapter: paper tables (CSV, Markdown, LaTeX) from every metrics file."""

from pathlib import Path

from rbio import provenance
from rbio.logs import log_to
from rbio.reporting.tables import write_tables

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
write_tables(
    snakemake.params.entries,
    Path(snakemake.output.long).parent,
    splits=snakemake.params.splits,
    prompts=snakemake.params.prompts,
    variants=snakemake.params.variants,
)
record.write(snakemake.output.provenance)
