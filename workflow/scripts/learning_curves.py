"""Snakemake adapter: per trained model, its learning curves (PNG + PDF) from its training
summaries, also logged to the model's MLflow training run."""

from rbio import provenance
from rbio.config import tracking_target
from rbio.logs import log_to
from rbio.reporting.figures import log_learning_curves, write_learning_curves

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
write_learning_curves(snakemake.params.entries, snakemake.params.out_dir)
tracking_uri, _ = tracking_target()
log_learning_curves(snakemake.params.entries, snakemake.params.out_dir, tracking_uri)
record.write(snakemake.output.provenance)
