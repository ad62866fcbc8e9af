"""Snakemake adapter: download one released rbio1 checkpoint (unsigned S3, resumable)."""

from pathlib import Path

from rbio.evaluation.published import download_checkpoint
from rbio.logs import log_to

log_to(snakemake.log[0])
download_checkpoint(snakemake.wildcards.checkpoint, Path(snakemake.output.manifest).parent)
