"""The package's dependency direction, checked on its source: data → (specification, utility,
numerics, evaluation) → bayes | maxent → fit → diagnostics → plots → model / workflow → cli.

No module imports from a layer above its own, the two estimators do not import each other, no
import cycle exists (imports inside functions count too), and no module imports a package
module inside a function (the way cycles used to be hidden).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pymc_maxent"

#: Layers, lowest first: a module may import from its own layer and those below.
LAYERS = [
    ("pymc_maxent._version", "pymc_maxent.exceptions", "pymc_maxent.arguments", "pymc_maxent.compilation"),
    ("pymc_maxent.data",),
    ("pymc_maxent.specification", "pymc_maxent.utility", "pymc_maxent.numerics", "pymc_maxent.evaluation"),
    ("pymc_maxent.simulate", "pymc_maxent.bayes", "pymc_maxent.maxent"),
    ("pymc_maxent.fit",),
    ("pymc_maxent.diagnostics", "pymc_maxent.calibration"),
    ("pymc_maxent.plots",),
    ("pymc_maxent.model", "pymc_maxent.workflow", "pymc_maxent.report", "pymc_maxent.notebook"),
    ("pymc_maxent.cli", "pymc_maxent.demo", "pymc_maxent"),
]
#: Same-layer packages that must not import each other: the two estimators.
SIBLINGS = ("pymc_maxent.bayes", "pymc_maxent.maxent")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = modules()


def owner(name: str) -> str | None:
    """The longest package module that ``name`` (an import target) is or lies in."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in MODULES:
            return ".".join(parts[:i])
    return None


def imports(name: str) -> list[tuple[str, bool]]:
    """``(imported package module, inside a function)`` for every import in module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(sub) for sub in ast.walk(node) if sub is not node}
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base]).strip(".")
            targets = [f"{base}.{a.name}" if owner(f"{base}.{a.name}") == f"{base}.{a.name}" else base
                       for a in node.names]
        for target in targets:
            module = owner(target) if target.startswith("pymc_maxent") else None
            if module and module != name:
                out.append((module, id(node) in inside))
    return out


def layer(name: str) -> tuple[int, str]:
    """The layer's rank and the entry of :data:`LAYERS` that holds ``name``."""
    best = None
    for rank, entries in enumerate(LAYERS):
        for entry in entries:
            inside = name == entry or name.startswith(entry + ".")
            if inside and (best is None or len(entry) > len(best[1])):
                best = (rank, entry)
    assert best is not None, f"{name} is in no layer of LAYERS: add it"
    return best


EDGES = {name: imports(name) for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_or_a_sibling_estimator(name):
    rank, entry = layer(name)
    for target, _ in EDGES[name]:
        target_rank, target_entry = layer(target)
        assert target_rank <= rank, f"{name} (layer {rank}) imports {target} (layer {target_rank})"
        if {entry, target_entry} == set(SIBLINGS):
            pytest.fail(f"{name} imports {target}: the two estimators must not depend on each other")


def test_no_import_cycle():
    graph = {name: {t for t, _ in edges} for name, edges in EDGES.items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_package_import_inside_a_function():
    hidden = sorted({(name, target) for name, edges in EDGES.items() for target, inside in edges if inside})
    assert not hidden, f"imports of package modules inside functions: {hidden}"


def test_the_checks_see_the_imports():
    """The walk finds what is there: a known edge in each direction of the flow."""
    assert ("pymc_maxent.data.choice_data", False) in EDGES["pymc_maxent.maxent.moments"]
    assert any(target.startswith("pymc_maxent.maxent") for target, _ in EDGES["pymc_maxent.model"])
    assert layer("pymc_maxent.maxent.estimator") == (3, "pymc_maxent.maxent")
    assert layer("pymc_maxent") == (8, "pymc_maxent")
