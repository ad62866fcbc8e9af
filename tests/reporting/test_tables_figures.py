"""Paper tables and figures from synthetic metrics files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from rbio.evaluation.baselines import BASELINES
from rbio.evaluation.metrics import metrics_table
from rbio.provenance import canonical_digest
from rbio.reporting import figures as figures_module
from rbio.reporting.artefacts import (
    FIGURE_FORMATS,
    METRICS_LONG,
    TABLE_FORMATS,
    paper_figures,
    paper_tables,
)
from rbio.reporting.figures import composition_ladder, cot_vs_nocot, metric_bars, write_figures
from rbio.reporting.reported import reported_long
from rbio.reporting.run_page import write_run_page
from rbio.reporting.tables import (
    collect_metrics,
    loco_mean_table,
    metric_cell,
    split_prevalence,
    split_table,
    write_tables,
)
from tests.reporting.conftest import PROMPTS, SPLITS, VARIANTS


def test_tables_list_every_model_and_baseline(metrics_entries, tmp_path):
    written = write_tables(
        metrics_entries, tmp_path, splits=SPLITS, prompts=PROMPTS, variants=VARIANTS
    )
    assert all(path.is_file() and path.stat().st_size > 0 for path in written)
    declared = [name for t in paper_tables(SPLITS, PROMPTS) for name in t.files(TABLE_FORMATS)]
    assert [path.name for path in written] == [METRICS_LONG, *declared]  # what the rule expects
    for split in SPLITS:
        for prompt in PROMPTS:
            table = pd.read_csv(tmp_path / f"{split}_{prompt}.csv")
            models = [*VARIANTS, "base", *BASELINES]
            assert table["protocol"].tolist() == ["conservative"] * len(models) + ["strict"] * len(
                models
            )  # two blocks, the project's protocol first
            assert table["model"].tolist() == models * 2
            assert {"coverage", "unparseable"} <= set(table)
            assert {"f1", "f1_ci_low", "f1_ci_high", "mcc", "auroc_per_gene"} <= set(table)
            # Likelihood AUROCs beside the sampled ones, for models; baselines have none.
            likelihood = table.set_index("model")["auroc_per_gene_likelihood"]
            assert likelihood[VARIANTS].notna().all() and likelihood[list(BASELINES)].isna().all()
            markdown = (tmp_path / f"{split}_{prompt}.md").read_text()
            assert all(f"| {name} |" in markdown for name in [*VARIANTS, *BASELINES])
            assert "MCC by stratum" in markdown
            assert "DE prevalence" in markdown and "strict (the paper" in markdown
            assert "P(yes) is the share" in markdown
            assert "AUROC (likelihood)" in markdown and "AUROC/gene (likelihood)" in markdown
            latex = (tmp_path / f"{split}_{prompt}.tex").read_text()
            assert r"\begin{tabular}" in latex and "TF+GO+MLP" in latex and "gene\\_prior" in latex
    loco = pd.read_csv(tmp_path / "loco_mean_nocot.csv")
    assert (loco["splits"] == 2).all()  # two loco splits in the fixture, not single_rpe1
    assert set(loco["protocol"]) == {"conservative", "strict"}


def test_reported_numbers_stay_apart_and_marked(metrics_entries, tmp_path):
    write_tables(metrics_entries, tmp_path, splits=SPLITS, prompts=PROMPTS)
    reported = (tmp_path / "reported.md").read_text()
    assert "QUOTED" in reported and "SUMMER" in reported and "GEARS" in reported
    computed = pd.read_csv(tmp_path / "metrics_long.csv")
    assert not set(computed["model"]) & set(reported_long()["model"])
    for split in SPLITS:
        assert "SUMMER" not in (tmp_path / f"{split}_nocot.md").read_text()


def test_loco_mean_is_the_mean_of_the_loco_splits(metrics_entries):
    frame = collect_metrics(metrics_entries)
    means = loco_mean_table(frame, "cot").set_index("model")
    per_split = [
        split_table(frame, split, "cot").set_index("model").at["EXP", "mcc"]
        for split in ("loco_k562", "loco_rpe1")
    ]
    assert means.at["EXP", "mcc"] == pytest.approx(np.mean(per_split))


def test_figures_exist_and_are_not_blank(metrics_entries, tmp_path):
    frame = collect_metrics(metrics_entries)
    written = write_figures(frame, tmp_path, splits=SPLITS, prompts=PROMPTS, variants=VARIANTS)
    figures = paper_figures(SPLITS, PROMPTS)
    assert [path.name for path in written] == [n for f in figures for n in f.files(FIGURE_FORMATS)]
    pngs = [path for path in written if path.suffix == ".png"]
    assert len(pngs) == len(SPLITS) * len(PROMPTS) + 2 * len(PROMPTS) + 1
    assert all(path.with_suffix(".pdf").stat().st_size > 1000 for path in pngs)
    for path in pngs:
        image = imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 400, path
        assert image[..., :3].std() > 0.05, f"{path} looks blank"


def test_figures_without_data_explain_why(tmp_path, metrics_entries):
    frame = collect_metrics([e for e in metrics_entries if e["prompt"] != "cot"])
    written = write_figures(frame, tmp_path, splits=["single_rpe1"], prompts=["nocot"])
    assert (tmp_path / "cot_vs_nocot.png") in written  # "only prompt style(s) ['nocot']" panel


def test_split_table_per_protocol_with_coverage(metrics_entries):
    frame = collect_metrics(metrics_entries)
    conservative = split_table(frame, "loco_k562", "cot").set_index("model")
    strict = split_table(frame, "loco_k562", "cot", protocol="strict").set_index("model")
    assert (conservative["coverage"] == 1.0).all()
    trained = strict[strict["kind"] == "trained"]
    assert (trained["coverage"] < 1).all() and (
        trained["n"] < conservative.loc[trained.index, "n"]
    ).all()
    baselines = strict[strict["kind"] == "baseline"].index
    pd.testing.assert_frame_equal(
        strict.loc[baselines].drop(columns="protocol"),
        conservative.loc[baselines].drop(columns="protocol"),
    )
    assert 0 < split_prevalence(frame, "loco_k562") < 0.5  # the fixture's ~15% DE


def _one_gene_one_class_entries(tmp_path) -> list[dict]:
    """One model on a LOCO split where every gene has one class (per-gene AUROC undefined),
    the unseen-perturbation stratum has no DE row (its MCC undefined) and the DE rows sit in
    one perturbation of ten (some bootstrap draws have none)."""
    n = 200
    pert = np.repeat([f"p{i}" for i in range(10)], n // 10)
    label = (pert == "p0").astype(int)
    rows = pd.DataFrame(
        {
            "label": label,
            "predicted": label,
            "score": label.astype(float),
            "gene": np.where(label == 1, "A", "B"),
            "pert": pert,
            "pair_seen_elsewhere": False,
            "pert_seen_elsewhere": pert < "p8",  # p8, p9 unseen: no DE row there
            "unparseable": False,
        }
    )
    path = tmp_path / "metrics.parquet"
    metrics_table(rows, n_bootstrap=50, seed=0, rate_columns=("unparseable",)).to_parquet(path)
    return [dict(model="EXP", kind="trained", split="loco_k562", prompt="nocot", path=str(path))]


def test_undefined_values_show_as_na_with_their_reason(tmp_path):
    entries = _one_gene_one_class_entries(tmp_path)
    write_tables(entries, tmp_path, splits=["loco_k562"], prompts=["nocot"])
    markdown = (tmp_path / "loco_k562_nocot.md").read_text()
    assert "n/a (no gene with both classes)" in markdown  # the column stays, with its reason
    assert "| AUROC/gene |" in markdown and "| Genes (AUROC/gene) |" in markdown
    assert "n/a (no DE row)" in markdown  # MCC of the unseen-perturbation stratum
    # p0 missed by ~35% of the draws: the resamples with no DE row are counted in the table
    numeric = pd.read_csv(tmp_path / "loco_k562_nocot.csv").iloc[0]
    assert 5 < numeric["mcc_undefined_resamples"] < 35 and numeric["resamples"] == 50
    assert f"({int(numeric['mcc_undefined_resamples'])} of 50 resamples n/a)" in markdown
    assert "DE prevalence 0.100 (20 DE of 200 test rows)" in markdown
    # the strata lead, perturbation seen first, with the share of seen-perturbation rows
    assert markdown.index("MCC by stratum") < markdown.index("| Protocol |")
    assert "160 of 200 test rows (80%)" in markdown
    html = (tmp_path / "loco_k562_nocot.html").read_text()
    assert "<table" in html and "n/a (no gene with both classes)" in html
    loco = (tmp_path / "loco_mean_nocot.md").read_text()
    assert "n/a (undefined in every split)" in loco


def test_metric_cell_formats():
    record = {"mcc": 0.5, "mcc_ci_low": 0.4, "mcc_ci_high": 0.6, "mcc_undefined_resamples": 0}
    assert metric_cell("mcc", record) == "0.500 [0.40, 0.60]"
    assert metric_cell("mcc", {"mcc": 0.5, "mcc_splits_defined": 1, "splits": 3}) == (
        "0.500 (1 of 3 splits)"
    )
    assert metric_cell("mcc", {"mcc": float("nan")}) == "n/a (not computed)"


def test_run_summary_names_preset_and_config_digest(tmp_path):
    config = {"preset": "tiny", "seed": 1, "model": {"base": "m"}, "variants": {"EXP": {}}}
    path = tmp_path / "run_summary.html"
    write_run_page(path, config, ["config.yaml", "config/tiny.yaml"])
    page = path.read_text()
    assert "tiny" in page and canonical_digest(config) in page
    assert "config.yaml, config/tiny.yaml" in page and "EXP" in page
    changed = write_run_page(path, {**config, "seed": 2}, []) or path.read_text()
    assert canonical_digest(config) not in changed


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn, kept open instead of saved (their axes can be inspected)."""
    figures = []
    monkeypatch.setattr(figures_module, "_save", lambda fig, stem: figures.append(fig) or [])
    yield figures
    plt.close("all")


def _texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def test_metric_bars_mark_what_they_cannot_draw_on_fixed_axes(metrics_entries, drawn):
    frame = collect_metrics(metrics_entries)
    here = (frame["split"] == "loco_k562") & (frame["prompt"] == "nocot")
    frame.loc[here & (frame.model == "EXP") & (frame.metric == "unparseable"), "value"] = 1.0
    frame.loc[here & (frame.model == "MLP") & (frame.metric == "mcc"), "value"] = np.nan
    baselines = (frame["split"] == "loco_k562") & (frame.metric == "mcc")
    prior = frame.loc[baselines & (frame.model == "pair_prior"), "value"].iloc[0]
    frame.loc[baselines & (frame.model == "gene_prior"), "value"] = prior  # the lines coincide
    metric_bars(frame, "loco_k562", "nocot", Path("unused"), VARIANTS)
    f1, mcc, tpr = drawn[0].axes[:3]
    assert "no parseable answer" in _texts(f1) and "no parseable answer" in _texts(tpr)
    assert "not computable" in _texts(mcc) and "not computable" not in _texts(f1)
    assert mcc.get_xlim() == (-1.0, 1.0) and f1.get_xlim() == (0.0, 1.0)
    assert mcc.get_xlabel() == "MCC"
    lines = {line.get_label(): line for line in mcc.get_lines()}
    gene, pair = lines["gene prior"], lines["pair prior"]
    assert gene.get_xdata()[0] == pair.get_xdata()[0]
    # the earlier line is wider and below: both visible where they coincide
    assert gene.get_linewidth() > pair.get_linewidth() and gene.get_zorder() < pair.get_zorder()


def test_composition_ladder_shows_declared_rungs_only(metrics_entries, drawn):
    frame = collect_metrics(metrics_entries)
    composition_ladder(frame, "nocot", Path("unused"), VARIANTS)
    ax = drawn[0].axes[0]
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["TF", "TF+GO+MLP", "TF+GO+MLP+EXP"]  # no empty TF+GO rung
    composition_ladder(frame, "nocot", Path("unused"), [*VARIANTS, "TF+GO"])
    labels = [tick.get_text() for tick in drawn[1].axes[0].get_xticklabels()]
    assert labels == ["TF", "TF+GO\n(not trained)", "TF+GO+MLP", "TF+GO+MLP+EXP"]
    assert [ax.get_ylim() for ax in drawn[1].axes] == [(0, 1), (-1, 1), (0, 1)]


def test_cot_vs_nocot_has_fixed_axes_and_cis(metrics_entries, drawn):
    frame = collect_metrics(metrics_entries)
    cot_vs_nocot(frame, Path("unused"), VARIANTS)
    f1, mcc, _ = drawn[0].axes
    assert f1.get_xlim() == (0.0, 1.0) and mcc.get_xlim() == (-1.0, 1.0)
    assert mcc.get_xlabel() == "MCC"
    bars = [c for c in mcc.containers if hasattr(c, "errorbar") and c.errorbar is not None]
    assert len(bars) == 2  # nocot and cot, each with its whiskers
    whiskers = bars[0].errorbar.lines[2][0].get_segments()
    assert any(abs(segment[1][0] - segment[0][0]) > 0 for segment in whiskers)
