"""Paper figures (PNG + PDF) from the long metrics frame (``tables.collect_metrics``).

- ``metrics_{split}_{prompt}``: per-model metric bars with 95% CIs; baselines as vertical lines;
- ``loco_per_line_{prompt}``: MCC and F1 per held-out cell line, models and baselines as rows;
- ``composition_ladder_{prompt}``: TF -> TF+GO -> TF+GO+MLP -> TF+GO+MLP+EXP, the rungs the
  config declares (one declared but not evaluated is marked "not trained"), one line per split,
  the gene prior as reference;
- ``cot_vs_nocot``: each model's LOCO-mean metrics with both system prompts side by side;
- ``learning_curves_{variant}_{split}``: from the training summaries, not the metrics files: the
  total, per-verifier and format rewards, completion length and the SFT loss against step, SFT
  then GRPO on one step axis (a dashed line where GRPO starts).

Every metric axis is fixed and labelled (rates [0, 1], MCC [-1, 1]), so figures compare by eye;
a value that cannot be drawn is marked: "no parseable answer" (the model answered nothing
readable: its conservative metrics are those of "always no") or "not computable" (undefined,
e.g. no DE row), never a silent gap; an empty training curve likewise ("no logging window", "no
SFT stage", "not logged", "not rewarded").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on compute nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rbio.io import atomic_path  # noqa: E402
from rbio.reporting.artefacts import (  # noqa: E402
    FIGURE_FORMATS,
    Artefact,
    learning_curve_figures,
    paper_figures,
)
from rbio.reporting.tables import METRIC_LABELS, for_prompt, for_protocol, model_order  # noqa: E402

BAR_METRICS: tuple[str, ...] = ("f1", "mcc", "tpr", "tnr", "balanced_accuracy")
LADDER: tuple[str, ...] = ("TF", "TF+GO", "TF+GO+MLP", "TF+GO+MLP+EXP")
# Baselines drawn as reference lines (the others are in the tables).
REFERENCE_BASELINES: dict[str, tuple[str, str]] = {
    "majority": ("#7f7f7f", ":"),
    "gene_prior": ("#d62728", "--"),
    "pair_prior": ("#9467bd", "-."),
    "mlp_verifier": ("#2ca02c", (0, (5, 1, 1, 1))),
}
KIND_COLOURS = {"trained": "#1f77b4", "published": "#ff7f0e", "base": "#8c8c8c"}
# Reference lines can coincide (a gene prior equal to the pair prior): each is drawn thinner and
# above the one before, so every line stays visible.
REFERENCE_WIDTHS: tuple[float, ...] = (3.4, 2.6, 1.8, 1.1)
NO_ANSWER = "no parseable answer"
NOT_COMPUTABLE = "not computable"


def metric_limits(metric: str) -> tuple[float, float]:
    """The fixed axis range of a metric: MCC runs from -1, the rates from 0."""
    return (-1.0, 1.0) if metric == "mcc" else (0.0, 1.0)


def value_mark(metric_value: float, unparseable: float) -> str:
    """What to write where a bar or point would be: "" when it can be drawn."""
    if unparseable == 1:
        return NO_ANSWER
    return NOT_COMPUTABLE if np.isnan(metric_value) else ""


def _mark_bar(ax, metric: str, y: float, value: float, unparseable: float) -> None:
    """Write the reason at a horizontal bar's base when the bar cannot show the value."""
    if mark := value_mark(value, unparseable):
        lower, upper = metric_limits(metric)
        ax.text(lower + 0.03 * (upper - lower), y, mark, va="center", fontsize=7, color="#b00000",
                zorder=10, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})  # fmt: skip


def _save(fig, stem: Path) -> list[Path]:
    paths = []
    for ext in FIGURE_FORMATS:
        path = stem.with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _no_data(stem: Path, title: str, message: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _save(fig, stem)


def _all_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """All test rows under the conservative protocol (the tables show both protocols)."""
    return for_protocol(frame[frame["stratum"] == "all"])


def _lookup(table: pd.DataFrame, models: Sequence[str], column: str) -> np.ndarray:
    return np.array([table.at[m, column] if m in table.index else np.nan for m in models])


def _reference_lines(ax, values: pd.DataFrame) -> None:
    """Baselines as vertical lines, each thinner and above the previous (all stay visible)."""
    for i, (baseline, (colour, style)) in enumerate(REFERENCE_BASELINES.items()):
        if baseline in values.index and not np.isnan(values.at[baseline, "value"]):
            ax.axvline(values.at[baseline, "value"], color=colour, linestyle=style,
                       linewidth=REFERENCE_WIDTHS[i], zorder=3 + i,
                       label=baseline.replace("_", " "))  # fmt: skip


def _metric_panel(ax, rows: pd.DataFrame, metric: str, models: Sequence[str]) -> None:
    """One metric's bars with CIs, the reference lines, and a mark for each missing bar."""
    mine = rows[rows["metric"] == metric].set_index("model")
    unparseable = rows[rows["metric"] == "unparseable"].set_index("model")
    values, low, high = (_lookup(mine, models, c) for c in ("value", "ci_low", "ci_high"))
    positions = np.arange(len(models))[::-1]
    colours = [KIND_COLOURS.get(k, "#1f77b4") for k in _lookup(mine, models, "kind")]
    errors = np.vstack([np.nan_to_num(values - low), np.nan_to_num(high - values)]).clip(0)
    ax.barh(positions, np.nan_to_num(values), xerr=errors, color=colours, capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
    lower, upper = metric_limits(metric)
    for y, value, rate in zip(
        positions, values, _lookup(unparseable, models, "value"), strict=True
    ):
        _mark_bar(ax, metric, y, value, rate)
    _reference_lines(ax, mine)
    ax.set_xlim(lower, upper)
    ax.set_xlabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(METRIC_LABELS.get(metric, metric))
    ax.grid(axis="x", alpha=0.3)
    ax.axvline(0, color="black", linewidth=0.6)


def metric_bars(
    frame: pd.DataFrame, split: str, prompt: str, stem: Path, variants=()
) -> list[Path]:
    """One panel per metric; a horizontal bar (with CI) per model; baselines as lines."""
    rows = _all_rows(for_prompt(frame, prompt))
    rows = rows[rows["split"] == split]
    models = [
        m for m in model_order(rows, variants) if rows[rows.model == m].kind.iloc[0] != "baseline"
    ]
    title = f"{split}, prompt {prompt}"
    if not models:
        return _no_data(stem, title, "no model evaluated")
    height = max(2.5, 0.38 * len(models) + 1.4)
    fig, axes = plt.subplots(
        1, len(BAR_METRICS), figsize=(3.1 * len(BAR_METRICS), height), sharey=True
    )
    for ax, metric in zip(axes, BAR_METRICS, strict=True):
        _metric_panel(ax, rows, metric, models)
    axes[0].set_yticks(np.arange(len(models))[::-1], models)
    handles, labels = axes[0].get_legend_handles_labels()
    kinds = {"trained": "trained here", "published": "released rbio1", "base": "base model"}
    for kind, colour in KIND_COLOURS.items():
        if any(rows[rows.model == m].kind.iloc[0] == kind for m in models):
            handles.append(plt.Rectangle((0, 0), 1, 1, color=colour))
            labels.append(kinds[kind])
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.25 / height))  # fmt: skip
    fig.suptitle(f"Test metrics with 95% CI, conservative protocol — {title}", y=1.0)
    fig.tight_layout()
    return _save(fig, stem)


def loco_per_line(frame: pd.DataFrame, prompt: str, stem: Path, variants=()) -> list[Path]:
    """Heatmaps (MCC, F1): rows models and baselines, columns held-out cell lines."""
    rows = _all_rows(for_prompt(frame, prompt))
    rows = rows[rows["split"].str.startswith("loco_")]
    title = f"Leave-one-cell-line-out, prompt {prompt}"
    if rows.empty:
        return _no_data(stem, title, "no leave-one-cell-line-out split evaluated")
    splits = sorted(rows["split"].unique())
    models = model_order(rows, variants)
    fig, axes = plt.subplots(1, 2, figsize=(2.2 + 1.3 * len(splits) * 2, 0.36 * len(models) + 1.6))
    for ax, metric in zip(axes, ("mcc", "f1"), strict=True):
        grid = (
            rows[rows["metric"] == metric]
            .pivot_table(index="model", columns="split", values="value")
            .reindex(index=models, columns=splits)
        )
        lowest = -1 if metric == "mcc" else 0  # MCC runs from -1
        image = ax.imshow(grid.to_numpy(float), cmap="viridis", vmin=lowest, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
            text = "—" if np.isnan(value) else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if not np.isnan(value) and value < (lowest + 1) * 0.55 else "black")  # fmt: skip
        ax.set_xticks(range(len(splits)), [s.removeprefix("loco_") for s in splits])
        ax.set_yticks(range(len(models)), models)
        ax.set_xlabel("held-out cell line")
        ax.set_title(METRIC_LABELS[metric])
        fig.colorbar(image, ax=ax, fraction=0.04)
    axes[1].set_yticklabels([])
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, stem)


def ladder_rungs(trained_models: Sequence[str], variants: Sequence[str] = ()) -> list[str]:
    """The rungs of LADDER to draw: those the config declares (``variants``; without it, those
    evaluated), in ladder order.

    >>> ladder_rungs(["TF", "TF+GO+MLP"], ["EXP", "TF", "TF+GO+MLP", "TF+GO+MLP+EXP"])
    ['TF', 'TF+GO+MLP', 'TF+GO+MLP+EXP']
    """
    declared = set(variants) if variants else set(trained_models)
    return [rung for rung in LADDER if rung in declared]


def composition_ladder(frame: pd.DataFrame, prompt: str, stem: Path, variants=()) -> list[Path]:
    """Metrics along TF -> TF+GO -> TF+GO+MLP -> TF+GO+MLP+EXP, one line per split; only the
    rungs the config declares, one declared but not evaluated labelled "not trained"."""
    rows = _all_rows(for_prompt(frame, prompt))
    title = f"Verifier composition ladder, prompt {prompt}"
    trained = rows[(rows["kind"] == "trained") & rows["model"].isin(LADDER)]
    rungs = ladder_rungs(trained["model"].unique(), variants)
    if trained.empty or not rungs:
        return _no_data(stem, title, "none of the ladder variants (TF, TF+GO, ...) was evaluated")
    metrics = ("f1", "mcc", "balanced_accuracy")
    splits = sorted(trained["split"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.6))
    x = np.arange(len(rungs))
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes, metrics, strict=True):
        for i, split in enumerate(splits):
            mine = trained[(trained["split"] == split) & (trained["metric"] == metric)]
            mine = mine.set_index("model").reindex(rungs)
            values = mine["value"].to_numpy(float)
            errors = np.vstack(
                [values - mine["ci_low"].to_numpy(float), mine["ci_high"].to_numpy(float) - values]
            )
            ax.errorbar(x, values, yerr=np.nan_to_num(errors).clip(0), marker="o", capsize=3,
                        color=colours(i), label=split)  # fmt: skip
            prior = rows[
                (rows.model == "gene_prior") & (rows.split == split) & (rows.metric == metric)
            ]
            if len(prior):
                ax.axhline(
                    prior["value"].iloc[0], color=colours(i), linestyle="--", linewidth=1, alpha=0.7
                )
        evaluated = set(trained["model"])
        labels = [rung if rung in evaluated else f"{rung}\n(not trained)" for rung in rungs]
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_xlabel("verifiers rewarded")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_title(METRIC_LABELS[metric])
        ax.set_ylim(*metric_limits(metric))
        ax.grid(alpha=0.3)
    axes[0].legend(title="split (dashed: gene prior)", fontsize=8, title_fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, stem)


def _prompt_means(rows: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per (model, prompt, metric): the mean over splits, and the envelope of the splits' 95%
    CIs (lowest low, highest high): a mean's own CI is not stored."""
    rows = rows[rows["metric"].isin([*metrics, "unparseable"])]
    return rows.groupby(["model", "prompt", "metric"]).agg(
        value=("value", "mean"), ci_low=("ci_low", "min"), ci_high=("ci_high", "max")
    )


def cot_vs_nocot(frame: pd.DataFrame, stem: Path, variants=()) -> list[Path]:
    """Each model's metrics (mean over its splits) with the nocot and cot system prompts."""
    rows = _all_rows(frame)
    rows = rows[rows["kind"] != "baseline"]
    title = "Chain-of-thought system prompt vs the training prompt"
    prompts = [p for p in ("nocot", "cot") if p in set(rows["prompt"])]
    if len(prompts) < 2:
        return _no_data(stem, title, f"only prompt style(s) {prompts} evaluated")
    metrics = ("f1", "mcc", "balanced_accuracy")
    means = _prompt_means(rows, metrics)
    models = model_order(rows, variants)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 0.42 * len(models) + 1.5), sharey=True
    )
    positions = np.arange(len(models))[::-1]
    for ax, metric in zip(axes, metrics, strict=True):
        lower, upper = metric_limits(metric)
        for offset, prompt, colour in ((0.2, "nocot", "#1f77b4"), (-0.2, "cot", "#ff7f0e")):
            got = [means.loc[(m, prompt, metric)] if (m, prompt, metric) in means.index
                   else pd.Series(np.nan, ["value", "ci_low", "ci_high"]) for m in models]  # fmt: skip
            values = np.array([g["value"] for g in got])
            errors = np.vstack(
                [values - [g["ci_low"] for g in got], [g["ci_high"] for g in got] - values]
            )
            ax.barh(positions + offset, np.nan_to_num(values), height=0.38, color=colour,
                    label=prompt, xerr=np.nan_to_num(errors).clip(0), capsize=2,
                    error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
            for m, y, value in zip(models, positions + offset, values, strict=True):
                _mark_bar(ax, metric, y, value, means["value"].get((m, prompt, "unparseable")))
        ax.set_xlim(lower, upper)
        ax.set_xlabel(METRIC_LABELS[metric])
        ax.set_title(METRIC_LABELS[metric])
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, models)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title + " (mean over evaluated splits; whiskers: lowest to highest split 95% CI)")
    fig.tight_layout()
    return _save(fig, stem)


def write_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    splits: Sequence[str],
    prompts: Sequence[str],
    variants: Sequence[str] = (),
) -> list[Path]:
    """Every figure of ``paper_figures`` under ``out_dir``; returns the paths written."""
    draw: dict[str, Callable[[Artefact, Path], list[Path]]] = {
        "metrics": lambda f, stem: metric_bars(frame, f.split, f.prompt, stem, variants),
        "loco_per_line": lambda f, stem: loco_per_line(frame, f.prompt, stem, variants),
        "composition_ladder": lambda f, stem: composition_ladder(frame, f.prompt, stem, variants),
        "cot_vs_nocot": lambda f, stem: cot_vs_nocot(frame, stem, variants),
    }
    written: list[Path] = []
    for figure in paper_figures(splits, prompts):
        written += draw[figure.kind](figure, Path(out_dir) / figure.stem)
    return written


# --- learning curves ---------------------------------------------------------------------------

FORMAT_REWARD = "format"  # the format reward's name (rbio.rewards.format): its own panel
NO_WINDOW = "no logging window"  # the stage ran but logged no point (fewer steps than a window)
NO_SFT = "no SFT stage"
NOT_LOGGED = "not logged"  # points exist, none with this quantity
NOT_REWARDED = "not rewarded"
NOT_ANSWERED = "no held-out answers\n(heldout_every_steps 0 or no validation rows)"
GRPO_STARTS = "GRPO starts"
STAGE_COLOURS = {"sft": "#ff7f0e", "grpo": "#1f77b4"}
HELDOUT_ACCURACY = "heldout/accuracy"  # rbio.training.heldout


@dataclass(frozen=True)
class CurvePanel:
    """One quantity of a training summary's curve against step."""

    title: str
    ylabel: str
    stage: str  # "sft" (its loss_curve), "grpo" (its reward_curve) or "both" (held-out answers)
    key: str  # the field of a curve point
    limits: tuple[float, float | None]  # fixed y range (None: the data's maximum), widened to fit
    absent: str = ""  # the mark when the quantity is not expected at all ("" when it is)


def curve_panels(grpo: Mapping[str, Any], sft: Mapping[str, Any] | None) -> list[CurvePanel]:
    """The weighted total reward, each verifier's reward, the format reward, completion length,
    the SFT loss and the held-out accuracy (SFT then GRPO); rewards on [0, 1] (the total on
    [0, sum of weights])."""
    weights = dict(grpo.get("rewards") or {})
    total = float(sum(weights.values())) or 1.0
    panels = [CurvePanel("total reward (weighted sum)", "reward", "grpo", "reward", (0.0, total))]
    panels += [
        CurvePanel(
            f"{name} reward (weight {weight:g})",
            "mean reward",
            "grpo",
            f"rewards/{name}/mean",
            (0.0, 1.0),
        )
        for name, weight in weights.items()
        if name != FORMAT_REWARD
    ]
    format_absent = "" if FORMAT_REWARD in weights else NOT_REWARDED
    return [
        *panels,
        CurvePanel(
            "format reward",
            "mean reward",
            "grpo",
            f"rewards/{FORMAT_REWARD}/mean",
            (0.0, 1.0),
            format_absent,
        ),
        CurvePanel(
            "completion length", "mean tokens", "grpo", "completions/mean_length", (0.0, None)
        ),
        CurvePanel(
            "SFT loss",
            "cross-entropy (answer turn)",
            "sft",
            "loss",
            (0.0, None),
            "" if sft else NO_SFT,
        ),
        CurvePanel(
            "held-out answer accuracy",
            "share correct (validation rows)",
            "both",
            HELDOUT_ACCURACY,
            (0.0, 1.0),
            "" if _heldout_points(grpo) or _heldout_points(sft) else NOT_ANSWERED,
        ),
    ]


def _heldout_points(summary: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((summary or {}).get("heldout_curve") or [])


def _curve_points(
    panel: CurvePanel, stage: str, grpo: Mapping[str, Any], sft: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(steps on the shared axis, values, the mark when there is nothing to draw) of one stage."""
    if panel.absent:
        return np.array([]), np.array([]), panel.absent
    summary = sft if stage == "sft" else grpo
    if panel.key == HELDOUT_ACCURACY:
        curve = _heldout_points(summary)
    else:
        curve = (summary or {}).get("loss_curve" if stage == "sft" else "reward_curve") or []
    offset = 0 if stage == "sft" else int((sft or {}).get("steps") or 0)  # GRPO follows SFT
    points = [
        (p["step"] + offset, float(p[panel.key]))
        for p in curve
        if p.get(panel.key) is not None and math.isfinite(float(p[panel.key]))
    ]
    if not points:
        return np.array([]), np.array([]), NOT_LOGGED if curve else NO_WINDOW
    steps, values = zip(*points, strict=True)
    return np.array(steps), np.array(values), ""


def _curve_panel(ax, panel: CurvePanel, grpo, sft, end: int) -> None:
    """One quantity against step on fixed axes; its mark where there is no point to draw."""
    stages = [stage for stage in ("sft", "grpo") if panel.stage in (stage, "both")]
    drawn = [(stage, *_curve_points(panel, stage, grpo, sft)) for stage in stages]
    lower, upper = panel.limits
    values = np.concatenate([points for _, _, points, _ in drawn])
    if not len(values):
        mark = next(mark for *_, mark in drawn if mark)
        ax.text(0.5, 0.5, mark, transform=ax.transAxes, ha="center", va="center", fontsize=9,
                color="#b00000")  # fmt: skip
    else:
        for stage, steps, points, _ in drawn:
            ax.plot(steps, points, marker="o", markersize=3, color=STAGE_COLOURS[stage])
        lower = min(lower, float(values.min()))  # widened, never cut, by data off the range
        top = float(values.max())
        upper = top * 1.05 if upper is None else max(upper, top)
    ax.set_ylim(lower, upper or 1.0)  # no data and no fixed top: an empty [0, 1]
    ax.set_xlim(0, end)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole
    if sft:
        ax.axvline(int(sft.get("steps") or 0), color="black", linestyle="--", linewidth=1,
                   label=GRPO_STARTS)  # fmt: skip
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel("step (SFT, then GRPO)" if sft else "GRPO step")
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)


def learning_curve_figure(grpo: Mapping[str, Any], sft: Mapping[str, Any] | None, title: str):
    """The figure of one trained model: a panel per ``curve_panels``, one step axis from 0 to
    the SFT steps plus the GRPO steps."""
    panels = curve_panels(grpo, sft)
    end = max(int((sft or {}).get("steps") or 0) + int(grpo.get("steps") or 0), 1)
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        _curve_panel(ax, panel, grpo, sft, end)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    if sft:
        axes.flat[0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_learning_curves(entries: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Every figure of ``learning_curve_figures`` under ``out_dir``; an entry is a trained model:
    ``variant``, ``split``, ``grpo`` (its training_summary.json), ``sft`` (SFT's, or None) and
    ``run`` (its run.json, read by :func:`log_learning_curves`)."""
    by_model = {(e["variant"], e["split"]): e for e in entries}
    written: list[Path] = []
    for figure in learning_curve_figures(list(by_model)):
        entry = by_model[(figure.variant, figure.split)]
        grpo = json.loads(Path(entry["grpo"]).read_text())
        sft = json.loads(Path(entry["sft"]).read_text()) if entry.get("sft") else None
        title = f"Training curves — {figure.variant}, {figure.split}"
        written += _save(learning_curve_figure(grpo, sft, title), Path(out_dir) / figure.stem)
    return written


def log_learning_curves(
    entries: Sequence[Mapping[str, Any]], out_dir: str | Path, tracking_uri: str
) -> list[str]:
    """Log each model's learning-curve files (:func:`write_learning_curves`) as artifacts of its
    MLflow training run (``learning_curves/``), the run its ``run.json`` names; returns the run
    ids. The store is the jobs' (``$MLFLOW_TRACKING_URI``), not run.json's credential-free copy."""
    from rbio.tracking import log_run_files

    by_model = {(e["variant"], e["split"]): e for e in entries}
    run_ids = []
    for figure in learning_curve_figures(list(by_model)):
        run = json.loads(Path(by_model[(figure.variant, figure.split)]["run"]).read_text())
        run_id = run["run_id"]
        files = [Path(out_dir) / f"{figure.stem}.{fmt}" for fmt in FIGURE_FORMATS]
        log_run_files(run_id, files, tracking_uri=tracking_uri, folder="learning_curves")
        run_ids.append(run_id)
    return run_ids
