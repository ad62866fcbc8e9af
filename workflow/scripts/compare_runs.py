"""Snakemake adapter: the MLflow runs of this configuration as one table."""

from rbio.config import load_config
from rbio.logs import log_to
from rbio.reporting.mlflow_compare import search_runs_table, write_runs_table

log_to(snakemake.log[0])
cfg = load_config(snakemake.config)
table = search_runs_table(
    cfg.mlflow.resolved_uri(),
    snakemake.params.experiment,
    {"config_hash": snakemake.params.config_hash},
)
write_runs_table(table, snakemake.output[0])
