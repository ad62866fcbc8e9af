"""Every benchmark script imports against the current package: they run by hand, so a renamed or
moved name in src/rbio would otherwise surface only when someone next measures."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_bench_script_imports(script, monkeypatch):
    # Their work is under `if __name__ == "__main__"`: another run name only imports.
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [str(script)])
    namespace = runpy.run_path(str(script), run_name="bench_import")
    assert namespace  # the module's top level ran to its end
