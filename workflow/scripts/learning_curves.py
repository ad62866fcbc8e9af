"""Snakemake adapter: per trained model, its learning curves (PNG + PDF) from its training
summaries."""

from rbio import provenance
from rbio.logs import log_to
from rbio.reporting.figures import write_learning_curves

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
write_learning_curves(snakemake.params.entries, snakemake.params.out_dir)
record.write(snakemake.output.provenance)
