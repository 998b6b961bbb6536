"""The package's modules import one another in one direction: no circle, not even through type-only imports."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "cryptopredict"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports outside any function (at the top or under TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    deferred = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    for node in ast.walk(tree):
        if id(node) in deferred:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started (each circle once, from its smallest name)."""
    circles: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph[path[-1]]):
            if nxt == path[0]:
                circles.append([*path, nxt])
            elif nxt > path[0] and nxt not in path:
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return circles


def test_no_module_imports_itself_in_a_circle() -> None:
    """No module reaches itself again through module-level imports (a package's own submodules aside)."""
    paths = {_module(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {
        name: {dep for dep in _imports(path, modules) if dep != name and not dep.startswith(f"{name}.")}
        for name, path in paths.items()
    }
    assert _circles(graph) == []


def test_the_circle_finder_sees_a_circle() -> None:
    """The check above can fail: two modules importing each other are reported as one circle."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert _circles(graph) == [["a", "b", "a"]]
