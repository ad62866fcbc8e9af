"""The whole `paper` target on the tiny preset, offline, through the real Snakemake DAG."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.image import imread

from rbio.config_file import read_config
from rbio.evaluation.baselines import BASELINES
from rbio.evaluation.metrics import PROTOCOLS
from tests.helpers import REPO, TINY, run_workflow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, data_dir):
    if "verifiers.smk" not in (REPO / "Snakefile").read_text():
        pytest.skip("the verifier stage (workflow/rules/verifiers.smk) is not in the workflow yet")
    workdir = tmp_path_factory.mktemp("paper")
    run_workflow(workdir, "paper", timeout=3600)
    return workdir


def test_tables_have_every_variant_baseline_and_prompt(paper_run):
    cfg = read_config(REPO / "config.yaml", TINY)
    splits = sorted({split for _, split in cfg.variant_splits()})
    for split in splits:
        for prompt in cfg.evaluation.prompt_styles:
            table = pd.read_csv(paper_run / "results" / "tables" / f"{split}_{prompt}.csv")
            expected = [*cfg.variants, "base", *BASELINES]
            assert table["model"].tolist() == expected * len(PROTOCOLS)
            blocks = {p: rows.set_index("model") for p, rows in table.groupby("protocol")}
            conservative, strict = blocks["conservative"], blocks["strict"]
            # Every row scored: values for every model, coverage 1.
            assert conservative["f1"].notna().all() and conservative["mcc"].notna().all()
            assert (conservative["coverage"] == 1).all()
            # Strict: a model is scored on the rows it answered readably (none: no values, not 0).
            assert (strict["coverage"] == strict["n"] / conservative["n"]).all()
            assert strict.loc[strict["n"] == 0, "mcc"].isna().all()
            assert strict.loc[strict["n"] > 0, "mcc"].notna().all()
            # Baselines read no answer: the same values under both protocols.
            pd.testing.assert_frame_equal(
                strict.loc[list(BASELINES)].drop(columns="protocol"),
                conservative.loc[list(BASELINES)].drop(columns="protocol"),
            )
            for suffix in ("md", "tex"):
                assert (
                    (paper_run / "results" / "tables" / f"{split}_{prompt}.{suffix}").stat().st_size
                )
    assert "QUOTED" in (paper_run / "results" / "tables" / "reported.md").read_text()


def test_figures_are_real_images(paper_run):
    figures = sorted((paper_run / "results" / "figures").glob("*.png"))
    assert len(figures) >= 4
    for path in figures:
        image = imread(path)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05, path
        assert path.with_suffix(".pdf").stat().st_size > 1000


def test_mlflow_runs_table_lists_training_and_evaluation(paper_run):
    runs = pd.read_csv(paper_run / "results" / "tables" / "mlflow_runs.csv")
    assert {"eval"} <= set(runs["stage"])
    evaluations = runs[(runs["stage"] == "eval") & (runs["model_kind"] == "trained")]
    assert evaluations["train_run_id"].notna().all()


def test_snakemake_report_builds(paper_run):
    run_workflow(paper_run, "paper", args=("--report", str(paper_run / "report.html")))
    assert (paper_run / "report.html").stat().st_size > 10_000
    report = (paper_run / "report.html").read_text()
    # the front page names the preset (jinja on snakemake.config) and links the Run page
    assert "preset <strong>tiny</strong>" in report
    assert "app.showCategory('Run')" in report and "app.showCategory('Tables')" in report
    # tables are report items as HTML pages (shown inline), with their own captions
    assert "run_summary.html" in report and "loco_mean_nocot.html" in report
    assert "QUOTED from publications" in report  # reported's caption, not the split tables'
