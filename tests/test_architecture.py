"""The package's shape: no import circles, no import from a lower layer up to a higher one, a short top level.

Every ``import`` and ``from ... import`` of alignbench's own modules counts, also those inside a
function or under ``TYPE_CHECKING``: a late import hides a circle from Python, not from a reader.
``from package import name`` counts as an import of the submodule ``package.name`` when there is one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "alignbench"

# Lowest first. A module may import from its own layer's units and from lower layers only; the
# architecture page of the docs walks these layers.
LAYERS: list[list[str]] = [
    ["alignbench", "errors", "types", "registry", "paths", "config", "hub", "jsonl", "redact"],  # what everything uses
    ["stats"],
    ["records"],  # a run folder's files and records, as every reader sees them
    ["backends"],
    ["trust"],
    ["trace"],  # a corpus index and the spans of a response found in it (the trace_shield judge's engine)
    ["judges"],
    ["scorers"],
    ["tasks"],
    ["run"],  # one evaluation
    ["scale", "drift", "compare", "gate", "track", "results"],  # built on runs
    ["report", "integrations"],
    ["commands"],
    ["cli", "__main__"],
]
TOP_LEVEL_LIMIT = 12


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``root`` (a package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's own modules it imports."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def unit(module: str) -> str:
    """The layer unit of a module: its top-level package or module below alignbench (``alignbench`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    rank = {u: i for i, layer in enumerate(layers) for u in layer}
    return sorted(f"{m} -> {t} ({unit(m)} is below {unit(t)})" for m, targets in graph.items() for t in targets
                  if unit(m) != unit(t) and rank[unit(t)] > rank[unit(m)])


def test_no_import_circles() -> None:
    assert circles(import_graph(PACKAGE)) == []


def test_no_import_from_a_lower_layer_up() -> None:
    assert upward_imports(import_graph(PACKAGE), LAYERS) == []


def test_every_package_and_top_level_module_has_a_layer() -> None:
    placed = {u for layer in LAYERS for u in layer}
    units = {unit(m) for m in modules(PACKAGE)}
    assert units - placed == set(), "give the new package or module a place in LAYERS (and on the docs' architecture page)"


def test_the_top_level_is_short() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= TOP_LEVEL_LIMIT, top


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_walk_finds_circles_late_imports_and_relative_ones(tmp_path: Path) -> None:
    pkg = _write_tree(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import x\n",
        "b.py": "def x():\n    from . import c\n",  # a late, relative import still counts
        "c.py": "import pkg.a\n",
        "d.py": "from pkg import a\n",  # imports the submodule a, not the package
        "sub/__init__.py": "from .e import y\n",
        "sub/e.py": "from ..d import a\ny = 1\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.d"] == {"pkg.a"} and graph["pkg.sub"] == {"pkg.sub.e"}
    assert graph["pkg.sub.e"] == {"pkg.d"}
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_an_upward_import_is_named(tmp_path: Path) -> None:
    pkg = _write_tree(tmp_path, {"__init__.py": "", "low/__init__.py": "", "low/m.py": "from pkg.high.n import z\n",
                                 "high/__init__.py": "", "high/n.py": "z = 1\n"})
    found = upward_imports(import_graph(pkg), [["pkg"], ["low"], ["high"]])
    assert found == ["pkg.low.m -> pkg.high.n (low is below high)"]
    assert upward_imports(import_graph(pkg), [["pkg"], ["high"], ["low"]]) == []


@pytest.mark.parametrize("module", ["alignbench.results"])
def test_the_documented_loaders_stay_where_they_are(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    assert all(callable(getattr(mod, name)) for name in ("load_runs", "load_samples", "load_compare"))
