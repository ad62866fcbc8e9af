"""Snakemake adapter: put the HGNC alias -> approved symbol table in place."""

from rbio.config import data_dir
from rbio.data.stages import acquire_alias_table
from rbio.logs import log_to

log_to(snakemake.log[0])
acquire_alias_table(snakemake.output[0], origin=snakemake.params.origin, local_dir=data_dir())
