"""Snakemake adapter: one per-gene embedding table (esm2 | go_svd | onehot) and its coverage."""

from rbio.config import load_config
from rbio.logs import log_to
from rbio.verifiers.stages import gene_embeddings

log_to(snakemake.log[0])
gene_embeddings(
    config=load_config(snakemake.config),
    kind=snakemake.wildcards.emb,
    perturbqa_path=snakemake.input.perturbqa,
    propagated_path=snakemake.input.get("propagated"),
    out_embedding=snakemake.output.embedding,
    out_coverage=snakemake.output.coverage,
)
