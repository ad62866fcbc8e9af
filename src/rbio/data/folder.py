"""Where the acquired inputs lie in the data folder (config ``data.local_dir``).

Standard library only: the workflow reads these paths while Snakemake parses it, and a plain
Snakemake (``--software-deployment-method conda``) has neither numpy nor pandas
(tests/workflow/test_parse_light.py).

>>> local_table(table_name("k562", "de"))
'perturbqa/k562-de.csv'
"""

from __future__ import annotations

HGNC_ALIAS_TABLE = "hgnc_aliases/hgnc_alias_to_approved.tsv.gz"


def table_name(line: str, task: str) -> str:
    """The PerturbQA table of one cell line and task (``de`` or ``dir``), as upstream names it."""
    return f"{line}-{task}.csv"


def local_table(name: str) -> str:
    """Where a PerturbQA table lies in the data folder (data.origin local)."""
    return f"perturbqa/{name}"
