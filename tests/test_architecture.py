"""The package's import graph: no cycles, and no upward imports from the foundation layers.

Layers (lowest first): ``models``, ``sim``, ``stats`` (the maths and the simulators) must not
import ``fit``, ``surrogate`` or ``population`` (the workflows built on them). Imports inside
functions count as much as those at module top: a deferred import hides a dependency, it
does not remove it. ``typing.TYPE_CHECKING`` blocks are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nmmfit"
FOUNDATION = ("models", "sim", "stats")
WORKFLOWS = ("fit", "surrogate", "population")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """nmmfit modules imported by the file at ``path`` (anywhere in it)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub" imports the submodule pkg.sub where one exists
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                     for a in node.names]
        else:
            continue
        out.update(n for n in names if n == "nmmfit" or n.startswith("nmmfit."))
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the nmmfit modules it imports (resolved to modules that exist)."""
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        deps = set()
        for dep in _imports(path, modules):
            while dep not in modules and "." in dep:  # a name imported from a module
                dep = dep.rsplit(".", 1)[0]
            if dep in modules and dep != name:
                deps.add(dep)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_edges(graph):
    """Imports between modules of different packages, ignoring package __init__ files (they
    re-export their own package's modules)."""
    return {(a, b) for a, deps in graph.items() for b in deps
            if not (b.count(".") == 1 and a.startswith(b + "."))}


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_graph_sees_known_imports(graph):
    # the walker finds top-level, relative and function-level imports (else the checks below
    # would pass on an empty graph)
    assert "nmmfit.sim.common" in graph["nmmfit.sim.api"]
    assert "nmmfit.fit.cmaes" in graph["nmmfit.fit.protocol"]
    assert len(graph) > 60 and sum(map(len, graph.values())) > 150


def test_no_import_cycles(graph):
    # package __init__ files import their own modules and are imported through them; a cycle
    # that runs only through an __init__ of the same package is the package's face, not a cycle
    plain = {a: {b for b in deps if not (a.startswith(b + ".") and b.count(".") >= 1)}
             for a, deps in graph.items()}
    cycles = _cycles(plain)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_no_upward_imports_from_foundation(graph):
    bad = sorted((a, b) for a, b in _package_edges(graph)
                 if len(a.split(".")) > 1 and a.split(".")[1] in FOUNDATION
                 and len(b.split(".")) > 1
                 and b.split(".")[1] in WORKFLOWS)
    assert not bad, "models/sim/stats import a workflow package:\n" + "\n".join(
        f"{a} -> {b}" for a, b in bad)


def test_cycle_finder_finds_a_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
