"""Snakemake adapter: put one PerturbQA table in place, sha256-verified."""

from rbio.config import data_dir
from rbio.data.stages import acquire_perturbqa
from rbio.logs import log_to

log_to(snakemake.log[0])
acquire_perturbqa(
    name=f"{snakemake.wildcards.line}-{snakemake.wildcards.task}.csv",
    dest=snakemake.output[0],
    origin=snakemake.params.origin,
    local_dir=data_dir(),
)
