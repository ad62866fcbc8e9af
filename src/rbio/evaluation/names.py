"""The names the workflow builds its evaluation targets from.

Standard library only: Snakemake reads them while it parses the workflow, and a plain Snakemake
(``--software-deployment-method conda``) has neither numpy nor pandas
(tests/workflow/test_parse_light.py). What each baseline computes: ``rbio.evaluation.baselines``.
"""

from __future__ import annotations

# Every baseline scored beside the models, in the order the tables list them.
BASELINES: tuple[str, ...] = (
    "majority",
    "gene_prior",
    "pert_prior",
    "pair_prior",
    "mlp_verifier",
    "tf_pmi",
    "go_similarity",
)
