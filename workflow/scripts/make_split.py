"""Snakemake adapter: one train/test split with leak annotations and report."""

from rbio import provenance
from rbio.data.stages import split
from rbio.logs import log_to

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
split(
    table_path=snakemake.input[0],
    split_name=snakemake.wildcards.split,
    cell_lines=snakemake.params.cell_lines,
    max_test_rows=snakemake.params.max_test_rows,
    seed=snakemake.params.seed,
    gene_panel=snakemake.params.gene_panel,
    validation_rows=snakemake.params.validation_rows,
    out_train=snakemake.output.train,
    out_test=snakemake.output.test,
    out_validation=snakemake.output.validation,
    out_report=snakemake.output.report,
)
record.write(snakemake.output.provenance)
