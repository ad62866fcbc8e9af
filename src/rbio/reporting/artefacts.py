"""The paper's tables and figures: their names, formats and report captions, declared once.

The paper rules declare their outputs from these lists and the writers (``rbio.reporting.tables``,
``rbio.reporting.figures``) write exactly these files, so a new table or figure is one entry here
and its drawing code. Its caption in ``snakemake --report`` is ``workflow/report/<kind>.rst``
(tables: ``table_<kind>.rst``), its subcategory there its ``group``.

>>> [table.stem for table in paper_tables(["loco_k562"], ["nocot"])]
['loco_k562_nocot', 'loco_mean_nocot', 'reported']
>>> [figure.stem for figure in paper_figures(["loco_k562"], ["nocot", "cot"])][-3:]
['loco_per_line_cot', 'composition_ladder_cot', 'cot_vs_nocot']
>>> sorted({figure.group for figure in paper_figures(["loco_k562"], ["nocot", "cot"])})
['CoT vs no CoT', 'Composition ladder', 'Held-out cell lines', 'Metrics, loco_k562']
>>> [(f.stem, f.group) for f in learning_curve_figures([("TF+GO", "loco_k562")])]
[('learning_curves_TF+GO_loco_k562', 'Learning curves, loco_k562')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TABLE_FORMATS: tuple[str, ...] = ("csv", "md", "tex", "html")  # html: shown in the report
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")
METRICS_LONG = "metrics_long.csv"  # every computed metric row, beside the tables
MLFLOW_RUNS = "mlflow_runs.csv"  # the MLflow runs of the artefacts on disk
TABLE_KINDS: tuple[str, ...] = ("split", "loco_mean", "reported")
# Report subcategory titles per kind (tables and figures live in separate categories).
KIND_TITLES: dict[str, str] = {
    "split": "Split",
    "loco_mean": "LOCO mean",
    "reported": "Quoted from publications",
    "metrics": "Metrics",
    "loco_per_line": "Held-out cell lines",
    "composition_ladder": "Composition ladder",
    "cot_vs_nocot": "CoT vs no CoT",
    "learning_curves": "Learning curves",
}


@dataclass(frozen=True)
class Artefact:
    """One table or figure: its file name and what it shows, for which split, prompt style and
    trained variant."""

    stem: str  # the file name without its extension
    kind: str  # what it shows (the drawing or table it is)
    split: str | None = None
    prompt: str | None = None
    variant: str | None = None  # the one trained model it shows (learning curves)

    @property
    def group(self) -> str:
        """Its subcategory in the report: what it shows (and for which split), every prompt
        style together; a title, never a fragment of the file name."""
        title = KIND_TITLES[self.kind]
        return f"{title}, {self.split}" if self.split else title

    @property
    def caption(self) -> str:
        """Its report caption file, under ``workflow/report/``: one per kind."""
        return f"table_{self.kind}.rst" if self.kind in TABLE_KINDS else f"{self.kind}.rst"

    def files(self, formats: Sequence[str]) -> list[str]:
        return [f"{self.stem}.{extension}" for extension in formats]


def paper_tables(splits: Sequence[str], prompts: Sequence[str]) -> list[Artefact]:
    """Per split and prompt style, the leave-one-cell-line-out means per prompt style, and the
    numbers quoted from publications."""
    return [
        *(Artefact(f"{s}_{p}", "split", s, p) for s in splits for p in prompts),
        *(Artefact(f"loco_mean_{p}", "loco_mean", prompt=p) for p in prompts),
        Artefact("reported", "reported"),
    ]


def paper_figures(splits: Sequence[str], prompts: Sequence[str]) -> list[Artefact]:
    """Metric bars per split and prompt style; per prompt style the held-out lines and the
    composition ladder; nocot against cot."""
    figures = [Artefact(f"metrics_{s}_{p}", "metrics", s, p) for s in splits for p in prompts]
    for p in prompts:
        figures.append(Artefact(f"loco_per_line_{p}", "loco_per_line", prompt=p))
        figures.append(Artefact(f"composition_ladder_{p}", "composition_ladder", prompt=p))
    return [*figures, Artefact("cot_vs_nocot", "cot_vs_nocot")]


def learning_curve_figures(variant_splits: Sequence[tuple[str, str]]) -> list[Artefact]:
    """Per trained (variant, split): its training curves, SFT then GRPO (drawn from the training
    summaries, not the metrics files: a rule of their own, rerun when a model is retrained)."""
    return [
        Artefact(f"learning_curves_{v}_{s}", "learning_curves", split=s, variant=v)
        for v, s in variant_splits
    ]
