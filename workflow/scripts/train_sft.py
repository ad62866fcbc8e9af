"""Snakemake adapter: the optional SFT stage of one (variant, split) (rbio.training.sft)."""

from pathlib import Path

from rbio import provenance
from rbio.config import SftConfig, Variant, from_params
from rbio.logs import log_to
from rbio.training.mixture import prompt_dirs_of
from rbio.training.sft import SftJob, train_sft

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
train_sft(
    SftJob(
        variant=from_params(Variant, snakemake.params.variant),
        split=snakemake.wildcards.split,
        sft=from_params(SftConfig, snakemake.params.sft),
        seed=snakemake.params.seed,
        base_model=str(Path(snakemake.input.base).parent),
        prompt_dirs=prompt_dirs_of(snakemake.input),
        out_dir=str(Path(snakemake.output.model).parent),
        validation=snakemake.input.validation,
        heldout_max_new_tokens=snakemake.params.heldout_max_new_tokens,
    )
)
record.write(snakemake.output.provenance)
