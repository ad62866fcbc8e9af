"""Snakemake adapter: the MLflow runs behind this workflow's models and evaluations, as one table."""

from rbio import provenance
from rbio.config import tracking_target
from rbio.logs import log_to
from rbio.reporting.mlflow_compare import runs_of_artefacts, write_runs_table

log_to(snakemake.log[0])
uri, experiment = tracking_target()
records = [provenance.read(path) for path in snakemake.input]
write_runs_table(runs_of_artefacts(uri, experiment, records), snakemake.output[0])
