"""Snakemake adapter: gene-gene PMI (TranscriptFormer or expression) and co-expression questions."""

from rbio import provenance
from rbio.config import TfPmiConfig, from_params
from rbio.logs import log_to
from rbio.verifiers.stages import precompute_tf_pmi

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
precompute_tf_pmi(
    settings=from_params(
        TfPmiConfig, {**snakemake.params.tf_pmi, "h5ad": snakemake.input.get("h5ad")}
    ),
    genes_path=snakemake.input.perturbqa,
    out_pmi=snakemake.output.pmi,
    out_questions=snakemake.output.questions,
    out_report=snakemake.output.report,
)
record.write(snakemake.output.provenance)
