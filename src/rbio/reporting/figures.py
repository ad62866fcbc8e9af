"""Paper figures (PNG + PDF) from the long metrics frame (``tables.collect_metrics``).

- ``metrics_{split}_{prompt}``: per-model metric bars with 95% CIs; baselines as vertical lines;
- ``loco_per_line_{prompt}``: MCC and F1 per held-out cell line, models and baselines as rows;
- ``composition_ladder_{prompt}``: TF -> TF+GO -> TF+GO+MLP -> TF+GO+MLP+EXP (missing rungs
  marked "not trained"), one line per split, the gene prior as reference;
- ``cot_vs_nocot``: each model's LOCO-mean metrics with both system prompts side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on compute nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rbio.io import atomic_path  # noqa: E402
from rbio.reporting.artefacts import FIGURE_FORMATS, Artefact, paper_figures  # noqa: E402
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
    positions = np.arange(len(models))[::-1]
    for ax, metric in zip(axes, BAR_METRICS, strict=True):
        mine = rows[rows["metric"] == metric].set_index("model")
        values = np.array([mine.at[m, "value"] if m in mine.index else np.nan for m in models])
        low = np.array([mine.at[m, "ci_low"] if m in mine.index else np.nan for m in models])
        high = np.array([mine.at[m, "ci_high"] if m in mine.index else np.nan for m in models])
        colours = [
            KIND_COLOURS.get(mine.at[m, "kind"] if m in mine.index else "", "#1f77b4")
            for m in models
        ]
        errors = np.vstack([np.nan_to_num(values - low), np.nan_to_num(high - values)]).clip(0)
        ax.barh(positions, np.nan_to_num(values), xerr=errors, color=colours, capsize=2,
                error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
        for baseline, (colour, style) in REFERENCE_BASELINES.items():
            if baseline in mine.index and not np.isnan(mine.at[baseline, "value"]):
                ax.axvline(mine.at[baseline, "value"], color=colour, linestyle=style, linewidth=1.4,
                           label=baseline.replace("_", " "))  # fmt: skip
        lower = min(0.0, float(np.nanmin(np.r_[values, low, -0.05])) if len(values) else 0.0)
        ax.set_xlim(lower - 0.02, 1.0)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(axis="x", alpha=0.3)
        ax.axvline(0, color="black", linewidth=0.6)
    axes[0].set_yticks(positions, models)
    handles, labels = axes[0].get_legend_handles_labels()
    for kind, colour in KIND_COLOURS.items():
        if any(rows[rows.model == m].kind.iloc[0] == kind for m in models):
            handles.append(plt.Rectangle((0, 0), 1, 1, color=colour))
            labels.append(
                {"trained": "trained here", "published": "released rbio1", "base": "base model"}[
                    kind
                ]
            )
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


def composition_ladder(frame: pd.DataFrame, prompt: str, stem: Path) -> list[Path]:
    """Metrics along TF -> TF+GO -> TF+GO+MLP -> TF+GO+MLP+EXP, one line per split."""
    rows = _all_rows(for_prompt(frame, prompt))
    title = f"Verifier composition ladder, prompt {prompt}"
    trained = rows[(rows["kind"] == "trained") & rows["model"].isin(LADDER)]
    if trained.empty:
        return _no_data(stem, title, "none of the ladder variants (TF, TF+GO, ...) was evaluated")
    metrics = ("f1", "mcc", "balanced_accuracy")
    splits = sorted(trained["split"].unique())
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.6), sharey=True)
    x = np.arange(len(LADDER))
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes, metrics, strict=True):
        for i, split in enumerate(splits):
            mine = trained[(trained["split"] == split) & (trained["metric"] == metric)]
            mine = mine.set_index("model").reindex(LADDER)
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
        missing = [rung for rung in LADDER if rung not in set(trained["model"])]
        labels = [f"{rung}\n(not trained)" if rung in missing else rung for rung in LADDER]
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_title(METRIC_LABELS[metric])
        ax.set_ylim(
            min(0, float(np.nanmin(trained[trained.metric == metric]["value"])) - 0.05), 1.05
        )
        ax.grid(alpha=0.3)
    axes[0].legend(title="split (dashed: gene prior)", fontsize=8, title_fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, stem)


def cot_vs_nocot(frame: pd.DataFrame, stem: Path, variants=()) -> list[Path]:
    """Each model's metrics (mean over its splits) with the nocot and cot system prompts."""
    rows = _all_rows(frame)
    rows = rows[rows["kind"] != "baseline"]
    title = "Chain-of-thought system prompt vs the training prompt"
    prompts = [p for p in ("nocot", "cot") if p in set(rows["prompt"])]
    if len(prompts) < 2:
        return _no_data(stem, title, f"only prompt style(s) {prompts} evaluated")
    metrics = ("f1", "mcc", "balanced_accuracy")
    means = (
        rows[rows["metric"].isin(metrics)].groupby(["model", "prompt", "metric"])["value"].mean()
    )
    models = model_order(rows, variants)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 0.42 * len(models) + 1.5), sharey=True
    )
    positions = np.arange(len(models))[::-1]
    for ax, metric in zip(axes, metrics, strict=True):
        for offset, prompt, colour in ((0.2, "nocot", "#1f77b4"), (-0.2, "cot", "#ff7f0e")):
            values = [means.get((m, prompt, metric), np.nan) for m in models]
            ax.barh(
                positions + offset, np.nan_to_num(values), height=0.38, color=colour, label=prompt
            )
        ax.set_title(METRIC_LABELS[metric])
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, models)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title + " (mean over evaluated splits)")
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
        "composition_ladder": lambda f, stem: composition_ladder(frame, f.prompt, stem),
        "cot_vs_nocot": lambda f, stem: cot_vs_nocot(frame, stem, variants),
    }
    written: list[Path] = []
    for figure in paper_figures(splits, prompts):
        written += draw[figure.kind](figure, Path(out_dir) / figure.stem)
    return written
