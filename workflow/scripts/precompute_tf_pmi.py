"""Snakemake adapter: gene-gene PMI (TranscriptFormer or expression) and co-expression questions."""

from rbio.config import load_config
from rbio.logs import log_to
from rbio.verifiers.stages import precompute_tf_pmi

log_to(snakemake.log[0])
precompute_tf_pmi(
    config=load_config(snakemake.config),
    genes_path=snakemake.input.perturbqa,
    out_pmi=snakemake.output.pmi,
    out_questions=snakemake.output.questions,
    out_report=snakemake.output.report,
)
