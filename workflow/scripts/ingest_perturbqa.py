"""Snakemake adapter: PerturbQA tables -> tidy parquet + ingest report."""

from rbio.data.stages import ingest
from rbio.logs import log_to

log_to(snakemake.log[0])
ingest(
    lines=snakemake.params.lines,
    de_paths=snakemake.input.de,
    dir_paths=snakemake.input.direction,
    aliases=snakemake.input.aliases,
    out_table=snakemake.output.table,
    out_report=snakemake.output.report,
)
