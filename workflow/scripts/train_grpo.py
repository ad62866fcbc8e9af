"""Train one (variant, split) with GRPO; several GPUs go through accelerate + DeepSpeed ZeRO-3."""

import logging
import os
from pathlib import Path

from rbio.training.grpo import GrpoJob, launch

# Everything (this process, C extensions, accelerate's child processes) goes to the rule log.
log_file = open(snakemake.log[0], "a")  # noqa: SIM115 (lives as long as the job)
os.dup2(log_file.fileno(), 1)
os.dup2(log_file.fileno(), 2)
logging.basicConfig(level=logging.INFO)

variant: str = snakemake.wildcards.variant
split: str = snakemake.wildcards.split
prompt_dirs = {
    key.removeprefix("prompts_"): str(path)
    for key, path in snakemake.input.items()
    if key.startswith("prompts_")
}
job = GrpoJob(
    variant=variant,
    split=split,
    base_model=str(Path(snakemake.input.base).parent),
    prompt_dirs=prompt_dirs,
    out_dir=str(Path(snakemake.output.model).parent),
    checkpoint_dir=snakemake.params.checkpoint_dir,
    processes=max(1, int(snakemake.resources.get("gpu", 1))),
    config=dict(snakemake.config),
)
launch(job, accelerate_config=snakemake.params.accelerate_config)
