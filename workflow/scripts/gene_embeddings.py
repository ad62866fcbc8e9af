"""Snakemake adapter: one per-gene embedding table (esm2 | go_svd | onehot) and its coverage."""

from rbio import provenance
from rbio.logs import log_to
from rbio.verifiers.stages import gene_embeddings

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
gene_embeddings(
    kind=snakemake.wildcards.emb,
    perturbqa_path=snakemake.input.perturbqa,
    out_embedding=snakemake.output.embedding,
    out_coverage=snakemake.output.coverage,
    propagated_path=snakemake.input.get("propagated"),
    esm2_path=snakemake.input.get("esm2"),
    **snakemake.params.settings,
)
record.write(snakemake.output.provenance)
