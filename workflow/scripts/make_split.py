"""Snakemake adapter: one train/test split with leak annotations and report."""

from rbio.config import load_config
from rbio.data.stages import split
from rbio.logs import log_to

log_to(snakemake.log[0])
split(
    table_path=snakemake.input[0],
    split_name=snakemake.wildcards.split,
    config=load_config(snakemake.config),
    out_train=snakemake.output.train,
    out_test=snakemake.output.test,
    out_report=snakemake.output.report,
)
