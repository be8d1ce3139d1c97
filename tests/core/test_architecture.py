"""The core's layout is its architecture: layers point down, no cycles, small modules,
and the distributions in this repository use only the public API.

Runtime imports only: ``if TYPE_CHECKING:`` blocks are skipped (they never execute),
function-level imports count (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "core" / "src"

#: Lowest layer first. A module may import modules of its own layer or of a lower one.
#: Entries are module-name prefixes; the longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, ...]] = [
    ("rtbuild._version", "rtbuild._lazy", "rtbuild._masking", "rtbuild.errors", "rtbuild.markers"),
    (
        "rtbuild._framework.paths",
        "rtbuild._framework.atomic",
        "rtbuild._framework.settings",
        "rtbuild._framework.tomltext",
        "rtbuild._framework.interrupts",
        "rtbuild._framework.deadline",
    ),
    (
        "rtbuild._framework.config",
        "rtbuild._framework.progress",
        "rtbuild._framework.live",
        "rtbuild._framework.display",
        "rtbuild._framework.reporterguard",
    ),
    (
        "rtbuild.builder",
        "rtbuild.hookspecs",
        "rtbuild.runtime._plugin",
        "rtbuild._observe.prune",
        "rtbuild._observe.units",
    ),
    # Build locks sit with the engine kit, which hands them to backends (unless_building).
    (
        "rtbuild.context",
        "rtbuild.oci",
        "rtbuild.enginekit",
        "rtbuild._framework.locks",
        "rtbuild._framework.pushonce",
        "rtbuild._framework.outputmask",
    ),
    (
        "rtbuild._framework.entrypoints",
        "rtbuild._framework.iidfile",
        "rtbuild.default_plugins",
        "rtbuild._framework.plugins",
    ),
    ("rtbuild._framework.pipeline",),
    ("rtbuild.runtime", "rtbuild._framework.batch", "rtbuild._framework", "rtbuild._observe"),
    ("rtbuild.testing", "rtbuild.cli"),
    ("rtbuild", "rtbuild.__main__"),
]

MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The rtbuild modules ``path`` imports at run time."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names if alias.name in modules)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level or not node.module or node.module not in modules:
                return
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules)
            if len(submodules) < len(node.names):  # names from the module itself
                found.add(node.module)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(files)
    return {name: _imports(path, modules) - {name} for name, path in files.items()}


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The package itself ("rtbuild") matches exactly: it is not a catch-all prefix.
            below = module.startswith(prefix + ".") and prefix != "rtbuild"
            if (module == prefix or below) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{module} has no layer: add it to LAYERS in {__file__}"
    return best[0]


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        _layer(module)


def test_no_upward_imports() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})"
        for module, deps in sorted(_graph().items())
        for dep in sorted(deps)
        # A package's __init__ may re-export its own private modules.
        if _layer(dep) > _layer(module) and not dep.startswith(module + ".")
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = _graph()
    # Packages importing their own children are re-exports, not cycles.
    edges = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_graph_sees_real_imports() -> None:
    # Guard the guard: a known edge and a known TYPE_CHECKING-only non-edge.
    graph = _graph()
    assert "rtbuild._framework.plugins" in graph["rtbuild._framework.pipeline"]
    assert "rtbuild._framework.config" not in graph["rtbuild.builder"]


@pytest.mark.parametrize(
    "root", ["core/src", *(str(p.relative_to(REPO)) for p in sorted((REPO / "builders").glob("*/src")))]
)
def test_no_module_over_the_size_limit(root: str) -> None:
    big = [
        f"{path.relative_to(REPO)}: {n} lines"
        for path in sorted((REPO / root).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert big == []


_PRIVATE = re.compile(r"^\s*(?:from|import)\s+(rtbuild(?:\.\w+)*\._\w+)", re.MULTILINE)


def test_backends_and_plugins_import_only_the_public_api() -> None:
    roots = [*REPO.glob("builders/*/src"), *REPO.glob("contrib/*/src")]
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(1)}"
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for match in _PRIVATE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_public_subpackages_export_what_they_name() -> None:
    import importlib

    for name in ("rtbuild", "rtbuild.context", "rtbuild.oci", "rtbuild.runtime", "rtbuild.testing"):
        module = importlib.import_module(name)
        missing = [attr for attr in module.__all__ if not hasattr(module, attr)]
        assert missing == [], f"{name}.__all__ names what it lacks"
