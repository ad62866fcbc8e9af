"""The report's "Run" page: which configuration, code and lock made these results.

The front page of ``snakemake --report`` (``workflow/report/workflow.rst``) can only read config
values; the digests are computed here, by a job, and shown as the first report item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from rbio.io import atomic_path
from rbio.provenance import canonical_digest, code_version, lock_digest
from rbio.reporting.tables import html_page


def run_settings(config: Mapping, configfiles: Sequence[str]) -> pd.DataFrame:
    """Setting / value rows: the preset, the resolved config's digest and files, code version,
    lock digest, and the settings that distinguish one run from another."""
    evaluation = config.get("evaluation", {})
    decoding = (
        f"greedy {evaluation.get('greedy')}, {evaluation.get('num_samples')} samples at "
        f"temperature {evaluation.get('temperature')}"
    )
    rows = [
        ("Preset", config.get("preset", "(unnamed)")),
        ("Config digest (sha256 of the resolved config)", canonical_digest(dict(config))),
        ("Config files (later ones override)", ", ".join(configfiles) or "—"),
        ("Code version (git describe)", code_version()),
        ("Lock digest", lock_digest()),
        ("Base model", config.get("model", {}).get("base", "—")),
        ("Variants", ", ".join(config.get("variants", {})) or "—"),
        ("Variant splits", ", ".join(config.get("variant_splits", [])) or "—"),
        ("Prompt styles", ", ".join(evaluation.get("prompt_styles", [])) or "—"),
        ("Decoding", decoding),
        ("Bootstrap resamples", str(evaluation.get("bootstrap", "—"))),
        ("Seed", str(config.get("seed", "—"))),
    ]
    return pd.DataFrame(rows, columns=["Setting", "Value"])


def write_run_page(path: str | Path, config: Mapping, configfiles: Sequence[str]) -> None:
    """The run summary as a standalone HTML page."""
    table = run_settings(config, configfiles)
    page = html_page("Run summary", [table.to_html(index=False, border=0)])
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(page)
