"""Snakemake adapter: materialise the base model folder (tiny offline model, local folder or hub
snapshot)."""

from pathlib import Path

from rbio import provenance
from rbio.logs import log_to
from rbio.models import prepare_base_model
from rbio.training.tiny_model import gene_symbols, tokenizer_corpus

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
base: str = snakemake.params.base
tiny = base == "tiny"
prepare_base_model(
    base,
    Path(snakemake.output.config).parent,
    tokenizer_corpus(snakemake.input.perturbqa) if tiny else [],
    snakemake.params.seed,
    gene_symbols(snakemake.input.perturbqa) if tiny else [],
)
record.write(snakemake.output.provenance)
