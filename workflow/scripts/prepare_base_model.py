"""Snakemake adapter: materialise the base model folder (tiny offline model, local folder or hub
snapshot)."""

from pathlib import Path

from rbio import provenance
from rbio.logs import log_to
from rbio.models import prepare_base_model
from rbio.training.tiny_model import tokenizer_corpus

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
base: str = snakemake.params.base
corpus = tokenizer_corpus(snakemake.input.perturbqa) if base == "tiny" else []
prepare_base_model(base, Path(snakemake.output.config).parent, corpus, snakemake.params.seed)
record.write(snakemake.output.provenance)
