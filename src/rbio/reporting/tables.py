"""Paper tables: every model and baseline, every metric with its 95% CI, as CSV, Markdown, LaTeX.

One code path for models and baselines (they share the metrics schema). Tables written:
- ``metrics_long.csv``: every computed row (model, kind, split, prompt, metric, value, CI,
  stratum, n);
- ``{split}_{prompt}.{csv,md,tex}``: one row per protocol, model and baseline (two labelled
  blocks: the conservative protocol, then the paper's strict one, each with its coverage),
  headline metrics with CIs (all test rows), plus in Markdown the MCC per stratum (seen/unseen
  pair and perturbation, conservative protocol);
- ``loco_mean_{prompt}.{csv,md,tex}``: the mean over leave-one-cell-line-out splits (how the
  paper reports), per protocol; no CI (a mean of per-split values);
- ``reported.{csv,md,tex}``: numbers quoted from publications, clearly apart from computed ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rbio.evaluation.baselines import BASELINES
from rbio.evaluation.metrics import (
    COVERAGE,
    HEADLINE_METRICS,
    HEADLINE_PROTOCOL,
    LIKELIHOOD_METRICS,
    PROTOCOLS,
    STRATA,
    read_metrics,
)
from rbio.io import atomic_path
from rbio.reporting.artefacts import METRICS_LONG, TABLE_FORMATS, Artefact, paper_tables
from rbio.reporting.reported import reported_wide

KINDS: tuple[str, ...] = ("trained", "published", "base", "baseline")
METRIC_LABELS: dict[str, str] = {
    "f1": "F1",
    "mcc": "MCC",
    "tpr": "TPR",
    "tnr": "TNR",
    "balanced_accuracy": "Bal. acc.",
    "auroc": "AUROC",
    "auroc_per_gene": "AUROC/gene",
    "auroc_likelihood": "AUROC (likelihood)",
    "auroc_per_gene_likelihood": "AUROC/gene (likelihood)",
    "precision": "Precision",
    "accuracy": "Accuracy",
    "unparseable": "Unparseable",
    COVERAGE: "Coverage",
}
# How P(yes), the score the AUROCs rank by, is obtained under each protocol (see
# rbio.evaluation.generate); said in every caption.
P_YES_RULE = (
    'P(yes) is the share of "yes" among the sampled answers (conservative: all samples, an '
    "unreadable one counting as no; strict: the readable samples), or the greedy answer as 1/0 "
    "without samples. The likelihood AUROCs rank by the model's own P(yes) after <answer> "
    "(next-token probabilities of yes vs no, teacher-forced after each sampled answer, averaged)."
)
KIND_LABELS = {
    "trained": "trained here",
    "published": "released rbio1 checkpoint",
    "base": "untrained base model",
    "baseline": "baseline",
}


@dataclass(frozen=True)
class MetricsEntry:
    """One metrics.parquet and what it describes."""

    model: str
    kind: str  # one of KINDS
    split: str
    prompt: str  # "" for baselines (no prompt)
    path: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.path}: kind '{self.kind}' is not one of {KINDS}")


def collect_metrics(entries: Iterable[MetricsEntry | Mapping]) -> pd.DataFrame:
    """All metrics files in one long frame, with model/kind/split/prompt columns."""
    frames = []
    for entry in entries:
        entry = entry if isinstance(entry, MetricsEntry) else MetricsEntry(**entry)
        table = read_metrics(entry.path)
        frames.append(
            table.assign(model=entry.model, kind=entry.kind, split=entry.split, prompt=entry.prompt)
        )
    if not frames:
        raise ValueError("no metrics files to tabulate")
    columns = ["model", "kind", "split", "prompt", "metric", "value", "ci_low", "ci_high"]
    return pd.concat(frames, ignore_index=True)[[*columns, "stratum", "n", "protocol"]]


def model_order(frame: pd.DataFrame, variants: Sequence[str] = ()) -> list[str]:
    """Trained variants in config order, then published, base, baselines."""
    rank = {kind: i for i, kind in enumerate(KINDS)}
    seen = frame[["model", "kind"]].drop_duplicates()
    position = {name: i for i, name in enumerate([*variants, *BASELINES])}
    seen = seen.assign(
        kind_rank=seen["kind"].map(rank),
        position=seen["model"].map(lambda m: position.get(m, len(position))),
    )
    return seen.sort_values(["kind_rank", "position", "model"])["model"].tolist()


def for_prompt(frame: pd.DataFrame, prompt: str) -> pd.DataFrame:
    """Rows of one prompt style; baselines (no prompt) belong to every style."""
    return frame[(frame["prompt"] == prompt) | (frame["kind"] == "baseline")]


def for_protocol(frame: pd.DataFrame, protocol: str = HEADLINE_PROTOCOL) -> pd.DataFrame:
    """Rows of one evaluation protocol (``rbio.evaluation.metrics.PROTOCOLS``)."""
    return frame[frame["protocol"] == protocol]


def split_prevalence(frame: pd.DataFrame, split: str) -> float:
    """Share of DE rows among a split's test rows (from any model's confusion counts: every
    model of a split is scored on the same rows under the conservative protocol)."""
    rows = for_protocol(frame[(frame["split"] == split) & (frame["stratum"] == "all")])
    counts = rows[rows["metric"].isin(["tp", "fp", "tn", "fn"])]
    if counts.empty:
        return math.nan
    model, prompt = counts[["model", "prompt"]].iloc[0]  # one evaluation's counts
    first = counts[(counts["model"] == model) & (counts["prompt"] == prompt)]
    first = first.set_index("metric")["value"]
    return float((first["tp"] + first["fn"]) / first.sum())


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _with_ci(value: float, low: float, high: float) -> str:
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(low, 2)}, {_fmt(high, 2)}]"


def split_table(
    frame: pd.DataFrame,
    split: str,
    prompt: str,
    metrics: Sequence[str] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE),
    variants: Sequence[str] = (),
    protocol: str = HEADLINE_PROTOCOL,
) -> pd.DataFrame:
    """Wide numeric table of one protocol: one row per model, ``<metric>``,
    ``<metric>_ci_low/_ci_high``, n (the rows scored) and the protocol."""
    rows = for_protocol(for_prompt(frame, prompt), protocol)
    rows = rows[(rows["split"] == split) & (rows["stratum"] == "all")]
    records = []
    for model in model_order(rows, variants):
        mine = rows[rows["model"] == model].set_index("metric")
        record = {
            "protocol": protocol,
            "model": model,
            "kind": mine["kind"].iloc[0],
            "n": int(mine["n"].iloc[0]),
        }
        for metric in metrics:
            found = metric in mine.index
            record[metric] = mine.at[metric, "value"] if found else math.nan
            record[f"{metric}_ci_low"] = mine.at[metric, "ci_low"] if found else math.nan
            record[f"{metric}_ci_high"] = mine.at[metric, "ci_high"] if found else math.nan
        records.append(record)
    return pd.DataFrame.from_records(records)


def display_table(wide: pd.DataFrame, metrics: Sequence[str], with_ci: bool = True) -> pd.DataFrame:
    """Strings for Markdown/LaTeX: ``value [low, high]`` per metric, the protocol first."""
    shown = pd.DataFrame(
        {"Model": wide["model"], "Kind": wide["kind"].map(KIND_LABELS), "n": wide["n"]}
    )
    if "protocol" in wide:
        shown.insert(0, "Protocol", wide["protocol"])
    for metric in metrics:
        if metric not in wide or wide[metric].isna().all():
            continue
        label = METRIC_LABELS.get(metric, metric)
        if with_ci and f"{metric}_ci_low" in wide:
            shown[label] = [
                _with_ci(v, lo, hi)
                for v, lo, hi in zip(
                    wide[metric], wide[f"{metric}_ci_low"], wide[f"{metric}_ci_high"], strict=True
                )
            ]
        else:
            shown[label] = wide[metric].map(_fmt)
    return shown


def strata_table(frame: pd.DataFrame, split: str, prompt: str, metric: str = "mcc") -> pd.DataFrame:
    """One metric per stratum and model (the memorisation-vs-transfer view), conservative
    protocol (every row scored, so all models share each stratum's n)."""
    rows = for_protocol(for_prompt(frame, prompt))
    rows = rows[(rows["split"] == split) & (rows["metric"] == metric)]
    table = rows.pivot_table(index="model", columns="stratum", values="value", sort=False)
    counts = rows.drop_duplicates("stratum").set_index("stratum")["n"]
    table = table[[s for s in STRATA if s in table.columns]]
    table.columns = [f"{s} (n={int(counts[s])})" for s in table.columns]
    order = [m for m in model_order(rows) if m in table.index]
    return table.loc[order].map(_fmt).reset_index().rename(columns={"model": "Model"})


def loco_mean_table(
    frame: pd.DataFrame,
    prompt: str,
    metrics: Sequence[str] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE),
    variants: Sequence[str] = (),
    protocol: str = HEADLINE_PROTOCOL,
) -> pd.DataFrame:
    """Mean over the ``loco_*`` splits of each model's all-rows metrics under one protocol."""
    rows = for_protocol(for_prompt(frame, prompt), protocol)
    rows = rows[rows["split"].str.startswith("loco_") & (rows["stratum"] == "all")]
    if rows.empty:
        return pd.DataFrame(columns=["protocol", "model", "kind", "splits", *metrics])
    means = rows.pivot_table(
        index=["model", "kind"], columns="metric", values="value"
    ).reset_index()
    splits = rows.groupby("model")["split"].nunique().rename("splits").reset_index()
    means = means.merge(splits, on="model")
    order = {m: i for i, m in enumerate(model_order(rows, variants))}
    means = means.sort_values("model", key=lambda s: s.map(order)).reset_index(drop=True)
    means.insert(0, "protocol", protocol)
    return means[["protocol", "model", "kind", "splits", *[m for m in metrics if m in means]]]


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                          ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):  # fmt: skip
        text = text.replace(char, escaped)
    return text.replace("—", "--").replace("–", "--")


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (no jinja2 needed, unlike ``DataFrame.to_latex``)."""
    columns = [str(c) for c in table.columns]
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        f"\\caption{{{_latex_escape(caption)}}}",
        f"\\label{{{label}}}",
        r"\begin{tabular}{" + "l" * 2 + "r" * (len(columns) - 2) + "}",
        r"\toprule",
        " & ".join(_latex_escape(c) for c in columns) + r" \\",
        r"\midrule",
    ]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(str(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub Markdown (no tabulate needed, unlike ``DataFrame.to_markdown``)."""
    columns = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


@dataclass(frozen=True)
class Table:
    """A paper table's contents: numbers for the CSV, strings for Markdown and LaTeX."""

    numeric: pd.DataFrame
    shown: pd.DataFrame
    caption: str
    markdown_extra: str = ""


SHOWN_METRICS: tuple[str, ...] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE)
PROTOCOLS_CAPTION = (
    "Two protocols, one block each. conservative (this project's): lenient answer parse, an "
    'unreadable answer counts as "no" in the hard metrics and in P(yes), every row scored (a '
    "model that never answers scores like the majority baseline; see Unparseable). strict (the "
    "paper benchmark's): only a bare yes/no in the first answer block is read, rows without one "
    "are dropped and metrics are on the kept rows (n); Coverage is the share kept. Baselines "
    "read no answer: same values, coverage 1, under both. "
) + P_YES_RULE


def _split_table(frame: pd.DataFrame, table: Artefact, variants: Sequence[str]) -> Table:
    split, prompt = table.split, table.prompt
    wide = pd.concat(
        [split_table(frame, split, prompt, variants=variants, protocol=p) for p in PROTOCOLS],
        ignore_index=True,
    )
    caption = (
        f"Split {split}, prompt {prompt}: all test rows (DE prevalence "
        f"{_fmt(split_prevalence(frame, split))}); 95% CI from a bootstrap over perturbations. "
        "Baselines use no prompt. " + PROTOCOLS_CAPTION
    )
    strata = "\n**MCC by stratum (conservative protocol)**\n\n" + to_markdown(
        strata_table(frame, split, prompt)
    )
    return Table(wide, display_table(wide, SHOWN_METRICS), caption, strata)


def _loco_mean_table(frame: pd.DataFrame, table: Artefact, variants: Sequence[str]) -> Table:
    means = pd.concat(
        [loco_mean_table(frame, table.prompt, variants=variants, protocol=p) for p in PROTOCOLS],
        ignore_index=True,
    )
    shown = display_table(
        means.assign(n=means.get("splits", 0)), SHOWN_METRICS, with_ci=False
    ).rename(columns={"n": "LOCO splits"})
    loco_splits = sorted(s for s in frame["split"].unique() if s.startswith("loco_"))
    prevalence = ", ".join(f"{s} {_fmt(split_prevalence(frame, s))}" for s in loco_splits)
    caption = (
        f"Mean over leave-one-cell-line-out splits, prompt {table.prompt} (computed here; DE "
        f"prevalence per split: {prevalence or '—'}). " + PROTOCOLS_CAPTION
    )
    return Table(means, shown, caption)


def _reported_table(frame: pd.DataFrame, table: Artefact, variants: Sequence[str]) -> Table:
    reported = reported_wide().rename(columns=lambda c: METRIC_LABELS.get(c, c))
    reported = reported.rename(columns={"model": "Model (reported)", "setting": "Setting"})
    caption = (
        "QUOTED from publications, not computed here (rbio1 preprint via secondary sources; "
        "PerturbQA per-gene AUROC). Not comparable row-for-row with our test subsets."
    )
    return Table(reported_wide(), reported, caption)


TABLE_BUILDERS = {"split": _split_table, "loco_mean": _loco_mean_table, "reported": _reported_table}


def write_tables(
    entries: Iterable[MetricsEntry | Mapping],
    out_dir: str | Path,
    *,
    splits: Sequence[str],
    prompts: Sequence[str],
    variants: Sequence[str] = (),
) -> list[Path]:
    """``metrics_long.csv`` and every table of ``paper_tables`` under ``out_dir``; returns the
    paths written."""
    out = Path(out_dir)
    frame = collect_metrics(entries)
    _write_csv(frame, out / METRICS_LONG)
    written = [out / METRICS_LONG]
    for artefact in paper_tables(splits, prompts):
        table = TABLE_BUILDERS[artefact.kind](frame, artefact, variants)
        csv, markdown, latex = (out / name for name in artefact.files(TABLE_FORMATS))
        _write_csv(table.numeric, csv)
        text = f"**{table.caption}**\n\n" + to_markdown(table.shown) + table.markdown_extra
        _write_text(markdown, text)
        _write_text(latex, to_latex(table.shown, table.caption, f"tab:{artefact.stem}"))
        written += [csv, markdown, latex]
    return written
