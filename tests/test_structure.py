"""The package's shape: its import graph has no cycle, and no function runs past 60 lines.

Both are read from the source with ``ast``, so they hold for code no test executes: an import
inside a function (the usual way to defer a heavy library) is an edge like one at the top, and
an import under ``if TYPE_CHECKING:`` is one too (a cycle that only type checkers see is still
two modules that cannot be understood apart).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

SRC = REPO / "src"
MAX_FUNCTION_LINES = 60
# Functions allowed to stay longer for now, each with the reason; the test fails when one of them
# becomes short enough, so that the exception is dropped with it.
LONG_FUNCTIONS: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "rbio").rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every rbio module ``path`` imports, anywhere in the file, with the packages it passes."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from rbio.data import prompts` imports the module rbio.data.prompts
            found.update(f"{base}.{alias.name}" for alias in node.names)
    imported = {module for module in found if module in modules}
    for module in list(imported):  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = module.split(".")
        imported.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {module for module in imported if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert "rbio.sources" in graph["rbio.config_file"]  # the walk sees imports at all
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def functions(path: Path) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from ``def`` to the last line) of every function in a file."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}.{child.name}"
                yield name, child.end_lineno - child.lineno + 1
                yield from walk(child, name)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}.{child.name}")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(path.read_text(), str(path)), module_name(path))


def test_no_function_is_longer_than_60_lines() -> None:
    lengths = {
        name: lines for path in package_modules().values() for name, lines in functions(path)
    }
    too_long = {
        name: lines
        for name, lines in lengths.items()
        if lines > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS
    }
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"
    fixed = [name for name in LONG_FUNCTIONS if lengths.get(name, 0) <= MAX_FUNCTION_LINES]
    assert not fixed, f"no longer over {MAX_FUNCTION_LINES} lines, drop the exception: {fixed}"
