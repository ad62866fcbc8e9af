"""Snakemake adapter: every baseline on one split's test rows (thresholds from training rows)."""

from pathlib import Path

from rbio import provenance
from rbio.config import tracking_target
from rbio.evaluation.baselines import BaselineInputs, evaluate_baselines
from rbio.evaluation.tracking import log_evaluation_run
from rbio.logs import log_to

log_to(snakemake.log[0])
record = provenance.of_job(snakemake)
split = snakemake.wildcards.split
seed = snakemake.params.seed
tables = evaluate_baselines(
    BaselineInputs(
        train_parquet=snakemake.input.train,
        test_parquet=snakemake.input.test,
        mlp_scores=snakemake.input.mlp_scores,
        tf_pmi=snakemake.input.tf_pmi,
        go_index=snakemake.input.go_index,
    ),
    test_lines_are_new=snakemake.params.test_lines_are_new,
    out_dir=Path(snakemake.output.scores).parent,
    n_bootstrap=snakemake.params.bootstrap,
    seed=seed,
)
uri, experiment = tracking_target()
for name, metrics in tables.items():
    log_evaluation_run(
        metrics,
        tracking_uri=uri,
        experiment=experiment,
        tags={"variant": name, "split": split, "seed": seed, "stage": "eval", "prompt": "",
              "model_kind": "baseline", **record.tags()},
        run_name=f"baseline {name} {split}",
    )  # fmt: skip
record.write(snakemake.output.provenance)
