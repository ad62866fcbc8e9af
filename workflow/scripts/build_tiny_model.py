"""Materialise the base model folder (tiny offline model, local folder or hub snapshot)."""

import logging
import sys
from pathlib import Path

from rbio.training.tiny_model import resolve_base_model, tokenizer_corpus

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115 (lives as long as the job)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

base: str = snakemake.params.base
seed: int = snakemake.params.seed
out_dir = Path(snakemake.output.config).parent
corpus = tokenizer_corpus(snakemake.input.perturbqa) if base == "tiny" else []

resolve_base_model(base, out_dir, corpus, seed)
