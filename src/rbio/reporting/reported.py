"""Numbers reported in publications, quoted (never recomputed, never mixed with our rows).

Sources: rbio1 (Istrate et al., bioRxiv 10.1101/2025.08.18.670981, 2025; secondary sources, see
METHOD.md "Evaluation and reported numbers") and PerturbQA (Wu et al., ICLR 2025: per-gene DE
AUROC of SUMMER and GEARS). A range such as "0.65–0.66" is kept as text.
"""

from __future__ import annotations

import pandas as pd

REPORTED_COLUMNS: tuple[str, ...] = ("model", "setting", "metric", "value", "source")

_RBIO = "rbio1 preprint (LOCO unless noted)"
_PERTURBQA = "PerturbQA (Wu et al. 2025), auc_per_gene"

# (model, setting, metric, value as quoted, source)
_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("rbio-EXP", "LOCO", "f1", "0.67", _RBIO),
    ("rbio-EXP", "LOCO", "mcc", "0.61", _RBIO),
    ("rbio-EXP", "LOCO", "tpr", "0.68", _RBIO),
    ("rbio-MLP", "LOCO", "f1", "0.65–0.66", _RBIO),
    ("rbio-MLP", "LOCO", "mcc", "0.60", _RBIO),
    ("rbio-MLP", "LOCO", "tpr", "0.76–0.77", _RBIO),
    ("rbio-TF (off-task only)", "LOCO", "f1", "0.29", _RBIO),
    ("rbio-TF (off-task only)", "LOCO", "mcc", "0.21", _RBIO),
    ("rbio-TF (off-task only)", "LOCO", "tnr", "0.94", _RBIO),
    ("rbio-TF (off-task only)", "LOCO", "balanced_accuracy", "0.59", _RBIO),
    ("rbio-TF+GO+MLP", "LOCO", "f1", "0.68", _RBIO),
    ("rbio-TF+GO+MLP", "LOCO", "mcc", "0.64", _RBIO),
    ("rbio-TF+GO+MLP, CoT prompt", "LOCO", "f1", "0.74", _RBIO),
    ("rbio-TF+GO+MLP, CoT prompt", "LOCO", "balanced_accuracy", "0.83", _RBIO),
    ("rbio-EXP, CoT (preprint v4)", "LOCO", "f1", "0.786", _RBIO),
    ("rbio-EXP, CoT (preprint v4)", "LOCO", "mcc", "0.752", _RBIO),
    ("rbio-EXP, CoT (preprint v4)", "LOCO", "balanced_accuracy", "0.907", _RBIO),
    ("SUMMER", "LOCO (v4)", "f1", "0.695", _RBIO),
    ("SUMMER", "LOCO", "tpr", "0.63", _RBIO),
    ("Qwen2.5-3B-Instruct (base)", "LOCO", "mcc", "0.03", _RBIO),
    ("Qwen2.5-3B-Instruct (base)", "LOCO", "tnr", "0.55", _RBIO),
    ("Qwen2.5-3B-Instruct (base)", "LOCO", "balanced_accuracy", "0.52", _RBIO),
    ("SUMMER", "single_k562", "auroc_per_gene", "0.62", _PERTURBQA),
    ("SUMMER", "single_rpe1", "auroc_per_gene", "0.59", _PERTURBQA),
    ("SUMMER", "single_hepg2", "auroc_per_gene", "0.62", _PERTURBQA),
    ("SUMMER", "single_jurkat", "auroc_per_gene", "0.59", _PERTURBQA),
    ("GEARS", "single_k562", "auroc_per_gene", "0.55", _PERTURBQA),
    ("GEARS", "single_rpe1", "auroc_per_gene", "0.49", _PERTURBQA),
    ("GEARS", "single_hepg2", "auroc_per_gene", "0.48", _PERTURBQA),
    ("GEARS", "single_jurkat", "auroc_per_gene", "0.51", _PERTURBQA),
)


def reported_long() -> pd.DataFrame:
    """One row per quoted number."""
    return pd.DataFrame(list(_ROWS), columns=list(REPORTED_COLUMNS))


def reported_wide() -> pd.DataFrame:
    """Models x metrics, values as quoted ("" where a number was not reported)."""
    long = reported_long()
    wide = long.pivot_table(
        index=["model", "setting"], columns="metric", values="value", aggfunc="first", sort=False
    )
    order = [
        m for m in ("f1", "mcc", "tpr", "tnr", "balanced_accuracy", "auroc_per_gene") if m in wide
    ]
    return wide[order].fillna("").reset_index()
