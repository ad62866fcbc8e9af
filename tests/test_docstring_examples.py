"""The runnable examples in the package's docstrings stay true."""

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
    "rbio.sources",
    "rbio.reporting.artefacts",
    "rbio.tracking",
    "rbio.evaluation.generate",
    "rbio.progress",
    "rbio.training.progress",
    "rbio.training.sft",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
