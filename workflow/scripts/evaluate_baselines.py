"""Snakemake adapter: every baseline on one split's test rows (thresholds from training rows)."""

from pathlib import Path

from rbio import provenance
from rbio.evaluation.baselines import BaselineInputs
from rbio.evaluation.stages import evaluate_split_baselines
from rbio.logs import log_to

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
evaluate_split_baselines(
    BaselineInputs(
        train_parquet=snakemake.input.train,
        test_parquet=snakemake.input.test,
        mlp_scores=snakemake.input.mlp_scores,
        tf_pmi=snakemake.input.tf_pmi,
        go_index=snakemake.input.go_index,
    ),
    split=snakemake.wildcards.split,
    test_lines_are_new=snakemake.params.test_lines_are_new,
    n_bootstrap=snakemake.params.bootstrap,
    seed=snakemake.params.seed,
    out_dir=Path(snakemake.output.scores).parent,
    record=record,
)
record.write(snakemake.output.provenance)
