"""What the end of a workflow run prints (the Snakefile's ``onsuccess``): where the results are,
how often each model gave no readable answer, and what to open next.

It reads only what is on disk (``results/eval/<model>/<split>/<prompt>/metrics.parquet``), so it
works after any target, including one that evaluated nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Imported where used: onsuccess also runs under a plain Snakemake without pandas (jobs in conda
# environments), where the summary leaves out what needs them.
BASELINES_FOLDER = "baselines"  # results/eval/baselines/<split>/<baseline>/: not a model
# The folders of results/ a user opens, and what each holds.
RESULT_FOLDERS: dict[str, str] = {
    "models": "trained models",
    "eval": "predictions and metrics per model, split and prompt",
    "tables": "paper tables, mlflow_runs.csv",
    "figures": "paper figures",
}


def unparseable_rates(results: str | Path) -> pd.DataFrame:
    """Per model: evaluations found, test questions scored, and the share of them with no
    readable answer (headline protocol, all rows, weighted by questions). The baselines (they
    always answer) are left out."""
    import pandas as pd

    from rbio.evaluation.metrics import HEADLINE_PROTOCOL

    rows = []
    for path in sorted(Path(results, "eval").glob("*/*/*/metrics.parquet")):
        metrics = pd.read_parquet(path)
        protocol = metrics.get("protocol", HEADLINE_PROTOCOL)
        mine = metrics[
            (metrics["metric"] == "unparseable")
            & (metrics["stratum"] == "all")
            & (protocol == HEADLINE_PROTOCOL)
        ]
        model = path.relative_to(Path(results, "eval")).parts[0]
        if len(mine) and model != BASELINES_FOLDER:
            row = mine.iloc[0]
            rows.append({"model": model, "n": int(row["n"]), "value": float(row["value"])})
    if not rows:
        return pd.DataFrame(columns=["model", "evaluations", "questions", "unparseable"])
    frame = pd.DataFrame(rows).assign(weighted=lambda f: f["n"] * f["value"])
    per_model = frame.groupby("model").agg(
        evaluations=("n", "size"), questions=("n", "sum"), weighted=("weighted", "sum")
    )
    per_model["unparseable"] = per_model["weighted"] / per_model["questions"]
    return per_model.drop(columns="weighted").reset_index()


def next_steps(tracking_uri: str | None, configfiles: Sequence[str | Path] = ()) -> list[str]:
    """The commands that open the results: the HTML report, the MLflow UI (a tracking server's
    address, or ``mlflow ui`` on a local store), the runs table. The store's address is shown
    without credentials; where that cannot be ensured (no rbio.tracking) it is left out."""
    overlays = "".join(f" --configfile {path}" for path in configfiles)
    steps = [f"report:  snakemake --report report.html{overlays}"]
    try:
        from rbio.tracking import public_uri
    except ImportError:
        return steps
    if tracking_uri:
        address = public_uri(tracking_uri)
        if address.startswith(("http://", "https://")):
            steps.append(f"MLflow:  open {address}")
        else:
            steps.append(f"MLflow:  .venv/bin/mlflow ui --backend-store-uri {address} --port 5000")
        steps.append(f"runs:    .venv/bin/rbio compare --tracking-uri {address} --tag stage=eval")
    return steps


def run_summary(
    results: str | Path = "results",
    *,
    tracking_uri: str | None = None,
    configfiles: Sequence[str | Path] = (),
) -> str:
    """The summary as text (several lines)."""
    results = Path(results)
    found = [name for name in RESULT_FOLDERS if (results / name).is_dir()]
    if not found:
        return f"rbio: nothing in {results}/ yet."
    lines = [f"rbio results in {results.resolve()}/:"]
    lines += [f"  {name + '/':<9} {RESULT_FOLDERS[name]}" for name in found]
    try:
        rates = unparseable_rates(results)
    except ImportError:  # a plain Snakemake: no pandas
        rates = ()
    if len(rates):
        lines.append("No readable answer (share of test questions, over each model's evaluations):")
        width = max(len(model) for model in rates["model"])
        for row in rates.itertuples(index=False):
            lines.append(
                f"  {row.model:<{width}}  {row.unparseable:6.1%}  "
                f"({row.questions} questions, {row.evaluations} "
                f"evaluation{'s' if row.evaluations != 1 else ''})"
            )
    lines.append("Next:")
    lines += [f"  {step}" for step in next_steps(tracking_uri, configfiles)]
    return "\n".join(lines)
