"""Train one (variant, split) with GRPO; several GPUs go through accelerate + DeepSpeed ZeRO-3."""

import logging
import os
from pathlib import Path

from rbio import provenance
from rbio.config import GrpoConfig, Variant, from_params
from rbio.training.grpo import GrpoJob, launch
from rbio.training.mixture import prompt_dirs_of
from rbio.training.multinode import gpus_per_node

# Everything (this process, C extensions, accelerate's child processes) goes to the rule log.
log_file = open(snakemake.log[0], "a")  # noqa: SIM115 (lives as long as the job)
os.dup2(log_file.fileno(), 1)
os.dup2(log_file.fileno(), 2)
logging.basicConfig(level=logging.INFO)

record = provenance.of_job(snakemake)
grpo = from_params(GrpoConfig, snakemake.params.grpo)
job = GrpoJob(
    variant=from_params(Variant, snakemake.params.variant),
    split=snakemake.wildcards.split,
    grpo=grpo,
    seed=snakemake.params.seed,
    model_base=snakemake.params.model_base,
    base_model=str(Path(snakemake.input.base).parent),
    prompt_dirs=prompt_dirs_of(snakemake.input),
    out_dir=str(Path(snakemake.output.model).parent),
    checkpoint_dir=snakemake.params.checkpoint_dir,
    processes=gpus_per_node(snakemake.resources),
    tags=record.tags(),
    validation=snakemake.input.validation,
)
# grpo.deepspeed_config is relative to the workflow root (two folders above this script).
launch(
    job,
    accelerate_config=Path(snakemake.scriptdir).parents[1] / grpo.deepspeed_config,
    nodes=int(snakemake.resources.get("nodes", 1)),
)
record.write(snakemake.output.provenance)
