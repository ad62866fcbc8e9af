"""Rewards for GRPO: format, mention, answer and the Gene Ontology rewards.

Import-light on purpose (the Snakefile imports :mod:`rbio.rewards.registry` while parsing): the
names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "parse_answer": "rbio.rewards.parsing",
    "completion_text": "rbio.rewards.parsing",
    "get_reward": "rbio.rewards.registry",
    "build_reward_functions": "rbio.rewards.registry",
    "threshold_centred": "rbio.rewards.normalise",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rbio.rewards' has no attribute {name!r}")
