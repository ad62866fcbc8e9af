"""The runnable examples in the docstrings of the rewards (and the score scaling they use) stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "rbio.rewards.parsing",
    "rbio.rewards.format",
    "rbio.rewards.answer",
    "rbio.rewards.mention",
    "rbio.rewards.rouge",
    "rbio.rewards.go",
    "rbio.rewards.registry",
    "rbio.verifiers.confidence",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
