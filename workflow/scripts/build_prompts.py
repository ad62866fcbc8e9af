"""Snakemake adapter: training prompts of one source for one split (HF dataset on disk)."""

from rbio.config import load_config
from rbio.data.stages import prompts
from rbio.logs import log_to

log_to(snakemake.log[0])
prompts(
    source=snakemake.wildcards.source,
    split_name=snakemake.wildcards.split,
    config=load_config(snakemake.config),
    train_path=snakemake.input.train,
    out_dir=snakemake.output[0],
    mlp_scores=snakemake.input.get("mlp_scores"),
    tf_questions=snakemake.input.get("tf_questions"),
    go_index=snakemake.input.get("go_index"),
)
