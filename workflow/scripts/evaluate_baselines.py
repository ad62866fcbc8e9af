"""Snakemake adapter: every baseline on one split's test rows (thresholds from training rows)."""

from pathlib import Path

from rbio.config import load_config
from rbio.evaluation.baselines import BaselineInputs, evaluate_baselines
from rbio.evaluation.tracking import log_evaluation_run
from rbio.logs import log_to

log_to(snakemake.log[0])
cfg = load_config(snakemake.config)
split = snakemake.wildcards.split
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
    n_bootstrap=cfg.evaluation.bootstrap,
    seed=cfg.seed,
)
for name, metrics in tables.items():
    log_evaluation_run(
        metrics,
        tracking_uri=cfg.mlflow.resolved_uri(),
        experiment=cfg.mlflow.experiment,
        tags={"variant": name, "split": split, "seed": cfg.seed, "stage": "eval",
              "config_hash": snakemake.params.config_hash, "prompt": "", "model_kind": "baseline"},
        run_name=f"baseline {name} {split}",
    )  # fmt: skip
