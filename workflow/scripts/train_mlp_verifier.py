"""Snakemake adapter: the MLP verifier of one split (weights, config, scores, test metrics)."""

from rbio.config import load_config
from rbio.logs import log_to
from rbio.verifiers.stages import train_mlp_verifier

log_to(snakemake.log[0])
train_mlp_verifier(
    config=load_config(snakemake.config),
    split=snakemake.wildcards.split,
    train_path=snakemake.input.train,
    test_path=snakemake.input.test,
    embedding_path=snakemake.input.embedding,
    out_model=snakemake.output.model,
    out_config=snakemake.output.config,
    out_scores=snakemake.output.scores,
    out_metrics=snakemake.output.metrics,
)
