"""The house's floors hold: no module imports a higher floor, and no import cycle exists.

Every module under ``src/receval`` is parsed with :mod:`ast` (not imported), and every import in it
counts: module-level ones and the lazy ones inside functions and methods alike, because a lazy import
is a dependency all the same, only a later one. Imports under ``if TYPE_CHECKING:`` are never executed:
they count for the floors (a type from a higher floor is still knowledge of it) but not for cycles.

Importing ``receval.a.b`` is a dependency on the module ``receval.a.b`` only; the packages above it
(``receval/__init__.py``, ``receval/a/__init__.py``) run as well, but each is a module of its own with
its own imports, checked like any other. A module named in a string (the algorithm registry's table for
:func:`importlib.import_module`) is looked up by name, not imported by the code that names it.

The floors, from the ground up; ``docs/architecture.md`` shows the same table (checked below). A module
may import its own floor and the floors below. Groups on one floor stand *beside* each other: neither
imports the other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "receval"

# (floor name, groups beside each other on that floor); a group is a tuple of module prefixes.
FLOORS: list[tuple[str, list[tuple[str, ...]]]] = [
    # what every floor may use: the version, the error types (exit codes) and the one name rule
    ("foundation", [("receval._version", "receval.errors", "receval.names")]),
    # column contracts, input validation, file formats, loaders, splits, the synthetic generator
    ("data", [("receval.data",)]),
    # pure metrics: no I/O, no serialisation format (they may use data's frame contracts)
    ("metrics", [("receval.metrics",)]),
    # one Store interface, local folder and S3; atomic publish, markers
    ("storage", [("receval.storage",)]),
    # fit / recommend / save to a Store / load
    ("recommenders", [("receval.recommenders",)]),
    # pydantic run configuration (validates algorithms, metrics and gate rules by the owners below)
    ("config", [("receval.config",)]),
    # run-folder layout, steps, partial-state encoding, `receval run`
    ("pipeline", [("receval.pipeline",)]),
    # reading runs back: tables, statistics, the gate, reports, exports
    ("results", [("receval.results", "receval.report")]),
    # the library surface (receval.evaluate and its facade), the paper's studies, the cluster client
    ("library", [("receval.api", "receval"), ("receval.experiments",), ("receval.cluster",)]),
    # the command line, on top
    ("cli", [("receval.cli", "receval.__main__")]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def placement(module: str) -> tuple[int, int]:
    """(floor, group) of ``module``: the longest matching prefix in :data:`FLOORS`."""
    best: tuple[int, int, int] | None = None
    for floor, (_, groups) in enumerate(FLOORS):
        for group, prefixes in enumerate(groups):
            for prefix in prefixes:
                if module == prefix or module.startswith(prefix + "."):
                    if best is None or len(prefix) > best[2]:
                        best = (floor, group, len(prefix))
    if best is None:
        raise AssertionError(f"{module}: on no floor of tests/test_layers.py's FLOORS; place it there")
    return best[0], best[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str) -> list[tuple[str, int, bool]]:
    """``(imported receval module, line, runtime)`` for every import in ``source``, at any depth."""
    is_package = MODULES[module].name == "__init__.py"
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "receval" or alias.name.startswith("receval."):
                    found.append((alias.name, node.lineno, runtime))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin == "receval" or origin.startswith("receval."):
                for alias in node.names:
                    submodule = f"{origin}.{alias.name}"
                    found.append((submodule if submodule in MODULES else origin, node.lineno, runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(ast.parse(source), True)
    return found


def import_graph(sources: dict[str, str]) -> dict[str, list[tuple[str, int, bool]]]:
    return {m: [i for i in imports_of(m, s) if i[0] != m] for m, s in sources.items()}


def upward_imports(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    """One line per import that climbs a floor or crosses to a group beside its own."""
    wrong = []
    for module, imports in sorted(graph.items()):
        floor, group = placement(module)
        for target, line, _ in imports:
            if target not in MODULES:
                wrong.append(f"{module}:{line} imports {target}, which does not exist")
                continue
            to_floor, to_group = placement(target)
            if to_floor > floor:
                wrong.append(f"{module}:{line} ({FLOORS[floor][0]}) imports {target} ({FLOORS[to_floor][0]}), a higher floor")
            elif to_floor == floor and to_group != group:
                wrong.append(f"{module}:{line} imports {target}, which stands beside it on the {FLOORS[floor][0]} floor")
    return wrong


def import_cycles(graph: dict[str, list[tuple[str, int, bool]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), over runtime imports."""
    edges = {m: sorted({t for t, _, runtime in imports if runtime and t in graph}) for m, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(components)


def _sources() -> dict[str, str]:
    return {m: p.read_text(encoding="utf-8") for m, p in MODULES.items()}


def test_the_architecture_page_shows_these_floors():
    rows = []
    for line in (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in {name for name, _ in FLOORS}:
            groups = [tuple(re.findall(r"`([\w.]+)`", group)) for group in cells[1].split("·")]
            rows.append((cells[0], groups))
    assert list(reversed(rows)) == FLOORS


def test_every_module_has_a_floor():
    for module in MODULES:
        placement(module)


def test_no_module_imports_a_higher_floor():
    wrong = upward_imports(import_graph(_sources()))
    assert not wrong, "imports that run up the house:\n" + "\n".join(wrong)


def test_no_import_cycle():
    cycles = import_cycles(import_graph(_sources()))
    assert not cycles, "import cycles (lazy imports included):\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module, line", [
    ("receval.metrics.engine", "from receval.cli._common import console"),
    ("receval.metrics.engine", "def later():\n    from receval.cli import app\n"),
    ("receval.data.loaders", "import receval.pipeline.layout"),
    ("receval.storage.local", "def f():\n    from receval.recommenders import make\n"),
    ("receval.results.read", "from receval.cluster import client"),
])
def test_the_checker_sees_an_import_up_a_floor(module, line):
    sources = _sources()
    sources[module] += "\n" + line
    assert any(w.startswith(module + ":") for w in upward_imports(import_graph(sources)))


def test_the_checker_sees_a_lazy_cycle_but_not_a_type_only_one():
    sources = _sources()
    sources["receval.data.schema"] += "\ndef later():\n    from receval.data import loaders\n"
    assert any({"receval.data.loaders", "receval.data.schema"} <= set(c) for c in import_cycles(import_graph(sources)))
    sources = _sources()
    sources["receval.data.schema"] += "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from receval.data import loaders\n"
    assert not any("receval.data.schema" in c for c in import_cycles(import_graph(sources)))
