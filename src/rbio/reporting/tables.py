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

import html
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
    METRIC_COLUMNS,
    PROTOCOLS,
    read_metrics,
    undefined_reason,
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
    columns = ["model", "kind", "split", "prompt", *METRIC_COLUMNS]
    return pd.concat(frames, ignore_index=True)[columns]


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


COUNTS: tuple[str, ...] = ("tp", "fp", "tn", "fn")
# What the tables need beside the shown metrics: the confusion counts (prevalence, n/a reasons)
# and how many genes per-gene AUROC averaged.
SUPPORT_METRICS: tuple[str, ...] = (*COUNTS, "auroc_per_gene_genes")
STRATUM_LABELS: dict[str, str] = {
    "all": "all rows",
    "pert_seen_elsewhere=True": "perturbation seen in training lines",
    "pert_seen_elsewhere=False": "perturbation unseen",
    "pair_seen_elsewhere=True": "pair seen in training lines",
    "pair_seen_elsewhere=False": "pair unseen",
}
# Tables lead with the strata: what a split tests (seen perturbation or not) comes first.
STRATA_SHOWN: tuple[str, ...] = (
    "pert_seen_elsewhere=True",
    "pert_seen_elsewhere=False",
    "pair_seen_elsewhere=True",
    "pair_seen_elsewhere=False",
    "all",
)
THRESHOLD_RULE = (
    "Hard metrics (F1, MCC, TPR, TNR, balanced accuracy) use each model's yes/no answer (the "
    "greedy answer, or the majority of the samples); baselines cut their score at the threshold "
    "that maximises MCC on training rows (MLP verifier: its own 0.5; majority: always no)."
)


def split_counts(frame: pd.DataFrame, split: str, stratum: str = "all") -> dict[str, int]:
    """Test rows of a split (or one stratum): ``rows``, ``positives`` (DE), from any model's
    confusion counts under the conservative protocol (every model of a split scores the same
    rows there); zeros when no counts are stored."""
    rows = for_protocol(frame[(frame["split"] == split) & (frame["stratum"] == stratum)])
    counts = rows[rows["metric"].isin(COUNTS)]
    if counts.empty:
        return {"rows": 0, "positives": 0}
    model, prompt = counts[["model", "prompt"]].iloc[0]  # one evaluation's counts
    first = counts[(counts["model"] == model) & (counts["prompt"] == prompt)]
    first = first.set_index("metric")["value"].fillna(0)
    return {"rows": int(first.sum()), "positives": int(first["tp"] + first["fn"])}


def split_prevalence(frame: pd.DataFrame, split: str) -> float:
    """Share of DE rows among a split's test rows."""
    counts = split_counts(frame, split)
    return counts["positives"] / counts["rows"] if counts["rows"] else math.nan


def prevalence_text(frame: pd.DataFrame, split: str) -> str:
    """``DE prevalence 0.153 (46 of 300 test rows)``, for captions."""
    counts = split_counts(frame, split)
    return (
        f"DE prevalence {_fmt(split_prevalence(frame, split))} "
        f"({counts['positives']} DE of {counts['rows']} test rows)"
    )


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _with_ci(value: float, low: float, high: float) -> str:
    if _missing(low) or _missing(high):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(low, 2)}, {_fmt(high, 2)}]"


def metric_cell(metric: str, record: Mapping, with_ci: bool = True) -> str:
    """One metric of a wide-table record as text: ``value [low, high]``, the bootstrap
    resamples where it was undefined when there were any, or ``n/a (reason)``."""
    value = record.get(metric, math.nan)
    defined, splits = record.get(f"{metric}_splits_defined"), record.get("splits")
    if defined is not None:  # a mean over splits (loco_mean_table)
        if _missing(value):
            return "n/a (undefined in every split)"
        if defined < splits:
            return f"{_fmt(value)} ({int(defined)} of {int(splits)} splits)"
    if _missing(value):
        return f"n/a ({undefined_reason(metric, record)})"
    if not with_ci:
        return _fmt(value)
    text = _with_ci(value, record.get(f"{metric}_ci_low"), record.get(f"{metric}_ci_high"))
    undefined = record.get(f"{metric}_undefined_resamples", 0)
    if not _missing(undefined) and undefined > 0:
        text += f" ({int(undefined)} of {int(record['resamples'])} resamples n/a)"
    return text


def split_table(
    frame: pd.DataFrame,
    split: str,
    prompt: str,
    metrics: Sequence[str] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE),
    variants: Sequence[str] = (),
    protocol: str = HEADLINE_PROTOCOL,
    stratum: str = "all",
) -> pd.DataFrame:
    """Wide numeric table of one protocol and stratum: one row per model, ``<metric>``,
    ``<metric>_ci_low/_ci_high/_undefined_resamples``, the confusion counts, the genes behind
    per-gene AUROC, n (the rows scored), ``resamples`` (bootstrap draws) and the protocol."""
    rows = for_protocol(for_prompt(frame, prompt), protocol)
    rows = rows[(rows["split"] == split) & (rows["stratum"] == stratum)]
    records = []
    for model in model_order(rows, variants):
        mine = rows[rows["model"] == model].set_index("metric")
        record = {
            "protocol": protocol,
            "model": model,
            "kind": mine["kind"].iloc[0],
            "n": int(mine["n"].iloc[0]),
            "resamples": mine["resamples"].max(),
        }
        for metric in SUPPORT_METRICS:
            record[metric] = mine.at[metric, "value"] if metric in mine.index else math.nan
        for metric in metrics:
            found = metric in mine.index
            for column, suffix in (("value", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high"),
                                   ("undefined_resamples", "_undefined_resamples")):  # fmt: skip
                record[f"{metric}{suffix}"] = mine.at[metric, column] if found else math.nan
        records.append(record)
    return pd.DataFrame.from_records(records)


def display_table(wide: pd.DataFrame, metrics: Sequence[str], with_ci: bool = True) -> pd.DataFrame:
    """Strings for Markdown/LaTeX/HTML: ``value [low, high]`` per metric, ``n/a (reason)`` where
    undefined (never a dropped column), the DE rows scored and the genes behind per-gene AUROC;
    the protocol first."""
    shown = pd.DataFrame(
        {"Model": wide["model"], "Kind": wide["kind"].map(KIND_LABELS), "n": wide["n"]}
    )
    if "protocol" in wide:
        shown.insert(0, "Protocol", wide["protocol"])
    if {"tp", "fn"} <= set(wide):
        shown["DE rows"] = [_count(tp + fn) for tp, fn in zip(wide["tp"], wide["fn"], strict=True)]
    records = wide.to_dict("records")
    for metric in metrics:
        label = METRIC_LABELS.get(metric, metric)
        shown[label] = [metric_cell(metric, record, with_ci) for record in records]
        if metric == "auroc_per_gene" and "auroc_per_gene_genes" in wide:
            shown["Genes (AUROC/gene)"] = wide["auroc_per_gene_genes"].map(_count)
    return shown


def _count(value) -> str:
    return "—" if _missing(value) else str(int(value))


def strata_table(frame: pd.DataFrame, split: str, prompt: str, metric: str = "mcc") -> pd.DataFrame:
    """One metric per stratum and model (the memorisation-vs-transfer view, perturbation seen in
    the training lines or not first), conservative protocol (every row scored, so all models
    share each stratum's n); ``n/a (reason)`` where undefined."""
    table = pd.DataFrame()
    for stratum in STRATA_SHOWN:
        wide = split_table(frame, split, prompt, metrics=(metric,), stratum=stratum)
        if wide.empty:
            continue
        counts = split_counts(frame, split, stratum)
        header = f"{STRATUM_LABELS[stratum]} (n={counts['rows']}, DE {counts['positives']})"
        cells = [metric_cell(metric, r, with_ci=False) for r in wide.to_dict("records")]
        table[header] = pd.Series(cells, index=wide["model"])
    return table.rename_axis("Model").reset_index()


def seen_perturbation_share(frame: pd.DataFrame, split: str) -> str:
    """``243 of 300 test rows (81%)``: the test rows whose perturbation the training rows also
    perturb (leave-one-cell-line-out is mostly "seen perturbation, unseen context")."""
    seen = split_counts(frame, split, "pert_seen_elsewhere=True")["rows"]
    total = split_counts(frame, split)["rows"]
    return f"{seen} of {total} test rows ({seen / total:.0%})" if total else "no test rows"


def loco_mean_table(
    frame: pd.DataFrame,
    prompt: str,
    metrics: Sequence[str] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE),
    variants: Sequence[str] = (),
    protocol: str = HEADLINE_PROTOCOL,
) -> pd.DataFrame:
    """Mean over the ``loco_*`` splits of each model's all-rows metrics under one protocol;
    ``<metric>_splits_defined`` counts the splits where the metric is defined (the mean is over
    those, NaN when none), ``splits`` the splits evaluated."""
    rows = for_protocol(for_prompt(frame, prompt), protocol)
    rows = rows[rows["split"].str.startswith("loco_") & (rows["stratum"] == "all")]
    if rows.empty:
        return pd.DataFrame(columns=["protocol", "model", "kind", "splits", *metrics])
    rows = rows[rows["metric"].isin(metrics)]
    grouped = rows.groupby(["model", "kind", "metric"])["value"]
    means = grouped.mean().unstack("metric")
    defined = grouped.count().unstack("metric").add_suffix("_splits_defined")
    means = means.join(defined).reset_index()
    splits = rows.groupby("model")["split"].nunique().rename("splits").reset_index()
    means = means.merge(splits, on="model")
    order = {m: i for i, m in enumerate(model_order(rows, variants))}
    means = means.sort_values("model", key=lambda s: s.map(order)).reset_index(drop=True)
    means.insert(0, "protocol", protocol)
    shown = [m for m in metrics if m in means]
    return means[
        ["protocol", "model", "kind", "splits", *shown, *[f"{m}_splits_defined" for m in shown]]
    ]


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
    """A paper table's contents: numbers for the CSV, strings for Markdown, LaTeX and HTML, and
    the tables shown before it (``lead``: title and table, e.g. the strata)."""

    numeric: pd.DataFrame
    shown: pd.DataFrame
    caption: str
    lead: tuple[tuple[str, pd.DataFrame], ...] = ()


SHOWN_METRICS: tuple[str, ...] = (*HEADLINE_METRICS, *LIKELIHOOD_METRICS, "unparseable", COVERAGE)
PROTOCOLS_CAPTION = (
    "Two protocols, one block each. conservative (this project's): lenient answer parse, an "
    'unreadable answer counts as "no" in the hard metrics and in P(yes), every row scored (a '
    "model that never answers scores like the majority baseline; see Unparseable). strict (the "
    "paper benchmark's): only a bare yes/no in the first answer block is read, rows without one "
    "are dropped and metrics are on the kept rows (n); Coverage is the share kept. Baselines "
    "read no answer: same values, coverage 1, under both. "
) + " ".join((P_YES_RULE, THRESHOLD_RULE))
UNDEFINED_NOTE = (
    'An undefined value shows as "n/a (reason)"; "k of N resamples n/a": the bootstrap draws '
    "where the metric was undefined, left out of its interval. AUROC/gene averages the genes "
    "with both classes (their number beside it)."
)


def _split_table(frame: pd.DataFrame, table: Artefact, variants: Sequence[str]) -> Table:
    split, prompt = table.split, table.prompt
    wide = pd.concat(
        [split_table(frame, split, prompt, variants=variants, protocol=p) for p in PROTOCOLS],
        ignore_index=True,
    )
    caption = (
        f"Split {split}, prompt {prompt}: all test rows, {prevalence_text(frame, split)}; 95% CI "
        "from a bootstrap over perturbations. Baselines use no prompt. "
        + " ".join((PROTOCOLS_CAPTION, UNDEFINED_NOTE))
    )
    strata_title = (
        f"MCC by stratum, conservative protocol. {seen_perturbation_share(frame, split)} have a "
        "perturbation that the training rows also perturb: there the split tests a seen "
        "perturbation in an unseen context."
    )
    lead = ((strata_title, strata_table(frame, split, prompt)),)
    return Table(wide, display_table(wide, SHOWN_METRICS), caption, lead)


def _loco_mean_table(frame: pd.DataFrame, table: Artefact, variants: Sequence[str]) -> Table:
    means = pd.concat(
        [loco_mean_table(frame, table.prompt, variants=variants, protocol=p) for p in PROTOCOLS],
        ignore_index=True,
    )
    shown = display_table(
        means.assign(n=means.get("splits", 0)), SHOWN_METRICS, with_ci=False
    ).rename(columns={"n": "LOCO splits"})
    loco_splits = sorted(s for s in frame["split"].unique() if s.startswith("loco_"))
    prevalence = "; ".join(f"{s}: {prevalence_text(frame, s)}" for s in loco_splits)
    seen = "; ".join(f"{s}: {seen_perturbation_share(frame, s)}" for s in loco_splits)
    caption = (
        f"Mean over leave-one-cell-line-out splits, prompt {table.prompt} (computed here; "
        f"{prevalence or 'no LOCO split'}). Leave-one-cell-line-out mostly tests a seen "
        f"perturbation in an unseen context; test rows whose perturbation the training rows "
        f"also perturb: {seen or '—'}. A mean over fewer splits than "
        "evaluated says so (k of K splits). " + PROTOCOLS_CAPTION
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


HTML_STYLE = (
    "body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse;margin:6px 0}"
    " th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    " th{background:#f0f0f0} td:nth-child(-n+3){text-align:left}"
)


def html_page(title: str, blocks: Sequence[str]) -> str:
    """A standalone HTML page (the Snakemake report shows it inline) of HTML ``blocks``."""
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{HTML_STYLE}</style></head><body>\n<h2>{html.escape(title)}</h2>\n"
        + "\n".join(blocks)
        + "\n</body></html>\n"
    )


def to_html(table: Table, title: str) -> str:
    """A table's page: caption, lead tables, the table. Plain ``DataFrame.to_html`` (no
    jinja2), cells escaped."""
    blocks = [f"<p>{html.escape(table.caption)}</p>"]
    for heading, lead in table.lead:
        blocks += [f"<h3>{html.escape(heading)}</h3>", lead.to_html(index=False, border=0)]
    if table.lead:
        blocks.append("<h3>All test rows</h3>")
    return html_page(title, [*blocks, table.shown.to_html(index=False, border=0)])


def _markdown(table: Table) -> str:
    lead = "".join(f"**{heading}**\n\n" + to_markdown(t) + "\n" for heading, t in table.lead)
    return f"**{table.caption}**\n\n" + lead + to_markdown(table.shown)


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
        files = dict(
            zip(TABLE_FORMATS, (out / n for n in artefact.files(TABLE_FORMATS)), strict=True)
        )
        _write_csv(table.numeric, files["csv"])
        _write_text(files["md"], _markdown(table))
        _write_text(files["tex"], to_latex(table.shown, table.caption, f"tab:{artefact.stem}"))
        _write_text(files["html"], to_html(table, artefact.stem))
        written += list(files.values())
    return written
