"""Reward names, the default rewards of each prompt source, and per-variant composition.

Names are what MLflow shows (``rewards/<name>/mean``). This module stays import-light: the
workflow reads it while parsing the Snakefile.
"""

from __future__ import annotations

from collections.abc import Mapping

REWARD_NAMES: tuple[str, ...] = (
    "format",
    "mention",
    "answer",
    "go_keyword",
    "go_rouge",
    "go_likelihood",
)

# The rbio code's composition: total = format + 2 x answer + mention for label-like sources; GO
# sources score what the model writes in <gene_info> instead of an answer.
_LABEL_REWARDS = {"format": 1.0, "mention": 1.0, "answer": 2.0}
_GO_REWARDS = {"format": 1.0, "mention": 1.0, "go_keyword": 1.0, "go_rouge": 1.0}
SOURCE_DEFAULT_REWARDS: dict[str, dict[str, float]] = {
    "exp": _LABEL_REWARDS,
    "mlp": _LABEL_REWARDS,
    "tf": _LABEL_REWARDS,
    "go_c": _GO_REWARDS,
    "go_f": _GO_REWARDS,
    "go_p": _GO_REWARDS,
    "go": _GO_REWARDS,
}


def default_rewards(sources: Mapping[str, float]) -> dict[str, float]:
    """Union of the sources' default rewards; a reward shared by sources keeps its largest weight."""
    weights: dict[str, float] = {}
    for source in sources:
        for name, weight in SOURCE_DEFAULT_REWARDS[source].items():
            weights[name] = max(weight, weights.get(name, weight))
    return weights
