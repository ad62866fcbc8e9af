"""The runnable examples in the reward modules' docstrings stay true."""

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
    "rbio.rewards.normalise",
    "rbio.rewards.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
