"""Snakemake adapter: the report's run summary (preset, config digest, code and lock)."""

from rbio.logs import log_to
from rbio.reporting.run_page import write_run_page

log_to(snakemake.log[0])
write_run_page(snakemake.output[0], snakemake.params.config, snakemake.params.configfiles)
