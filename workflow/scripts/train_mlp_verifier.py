"""Snakemake adapter: the MLP verifier of one split (weights, config, scores, test metrics)."""

from rbio import provenance
from rbio.config import MlpConfig, from_params
from rbio.logs import log_to
from rbio.verifiers.mlp import VerifierFiles
from rbio.verifiers.stages import train_mlp_verifier

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
train_mlp_verifier(
    settings=from_params(MlpConfig, snakemake.params.mlp),
    seed=snakemake.params.seed,
    cell_lines=tuple(snakemake.params.cell_lines),
    split=snakemake.wildcards.split,
    train_path=snakemake.input.train,
    test_path=snakemake.input.test,
    embedding_path=snakemake.input.embedding,
    out=VerifierFiles(
        model=snakemake.output.model,
        config=snakemake.output.config,
        scores=snakemake.output.scores,
        metrics=snakemake.output.metrics,
    ),
)
record.write(snakemake.output.provenance)
