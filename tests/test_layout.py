"""The package's layout: layers import downwards only, only loop.py knows the loop, and tests/ mirrors it.

Read from the source (ast), not by importing: an import inside a function counts as
much as one at the top; imports under `if TYPE_CHECKING:` count too, since they say
what a module depends on. The tests' folders are read from the file system.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "looplet"
TESTS = pathlib.Path(__file__).resolve().parent
#: Folders of tests/ that mirror the repository's own top-level folders, not looplet's.
REPOSITORY_FOLDERS = {"compat", "benchmarks", "downstream"}

#: Each layer and the layers it may import (itself included). The ways in sit on top.
LAYERS: dict[str, set[str]] = {
    "_asyncio": {"_asyncio"},
    "_mypyc": {"_mypyc"},
    "engine": {"_asyncio", "_mypyc", "engine"},
    "services": {"_asyncio", "_mypyc", "engine", "services"},
    "transports": {"_asyncio", "_mypyc", "engine", "services", "transports"},
    "endpoints": {"_asyncio", "_mypyc", "engine", "services", "transports", "endpoints"},
    "tools": {"_asyncio", "_mypyc", "engine", "tools"},
    "loop": {"_asyncio", "_mypyc", "engine", "services", "transports", "endpoints", "tools", "loop"},
}
WAYS_IN = {"__init__", "__main__", "runner", "policy", "testing", "pytest_plugin", "sim"}


def modules() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def looplet_imports(path: pathlib.Path) -> set[str]:
    """The looplet modules `path` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("looplet"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("looplet"):
            found.add(node.module)
            # `from looplet.services import errors`: the submodule is the dependency.
            found.update(f"{node.module}.{a.name}" for a in node.names)
    known = {module_name(p) for p in modules()}
    return {name for name in found if name in known}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downwards(path: pathlib.Path) -> None:
    layer = layer_of(module_name(path))
    if layer in WAYS_IN:
        return
    allowed = LAYERS[layer]
    wrong = sorted(m for m in looplet_imports(path) if m != "looplet" and layer_of(m) not in allowed)
    assert not wrong, f"{module_name(path)} (layer {layer}) imports {wrong}"


def test_no_import_cycle() -> None:
    graph = {module_name(p): looplet_imports(p) - {"looplet"} for p in modules()}
    # A package's own __init__ importing its submodules is not a cycle between them.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_only_the_ways_in_import_the_loop_class() -> None:
    importers = sorted(
        module_name(p)
        for p in modules()
        if "looplet.loop" in looplet_imports(p) and layer_of(module_name(p)) not in WAYS_IN
    )
    assert importers == [], importers


#: Private names asyncio's own classes call on a loop, which looplet's classes of the
#: same role call too: a timer handle reports its cancellation to the loop that made it.
ASYNCIO_LOOP_HOOKS = {"_timer_handle_cancelled"}


class _PrivateLoopAttributes(ast.NodeVisitor):
    """`loop._x`, `self._loop._x`, `io.loop._x`: a private attribute read off a loop."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_Attribute(self, node: ast.Attribute) -> None:
        inner = node.value
        is_loop = (isinstance(inner, ast.Name) and inner.id == "loop") or (
            isinstance(inner, ast.Attribute) and inner.attr in {"loop", "_loop"}
        )
        if (
            is_loop
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in ASYNCIO_LOOP_HOOKS
        ):
            self.found.append(f"{ast.unparse(node)} (line {node.lineno})")
        self.generic_visit(node)


@pytest.mark.parametrize(
    "path", [p for p in modules() if p.name != "loop.py"], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_reads_a_private_attribute_of_the_loop(path: pathlib.Path) -> None:
    visitor = _PrivateLoopAttributes()
    visitor.visit(ast.parse(path.read_text(), str(path)))
    assert not visitor.found, visitor.found


def test_the_loop_has_no_mixins() -> None:
    import asyncio

    from looplet import EventLoop

    assert EventLoop.__bases__ == (asyncio.AbstractEventLoop,)


def test_tests_mirror_the_package() -> None:
    """Each folder under tests/ is a part of looplet: a subpackage (tests/engine/reactor/
    for looplet/engine/reactor/), or tests/loop/ for loop.py, the one big class, tested
    by area; tests/compat/, tests/benchmarks/ and tests/downstream/ mirror the
    repository's folders of those names. No folder sorts tests by kind."""
    assert not (TESTS / "reliability").exists(), "tests/reliability/: a test goes with the code it exercises"
    strays = []
    for folder in sorted(p for p in TESTS.rglob("*") if p.is_dir()):
        rel = folder.relative_to(TESTS)
        if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        if rel.parts[0] in REPOSITORY_FOLDERS:
            if len(rel.parts) == 1 and not (TESTS.parent / rel).is_dir():
                strays.append(f"{rel} (no {rel}/ in the repository)")
            continue
        mirrored = PACKAGE.joinpath(*rel.parts)
        if not (mirrored / "__init__.py").is_file() and not mirrored.with_suffix(".py").is_file():
            strays.append(f"{rel} (no looplet/{rel}/ package, no looplet/{rel}.py)")
    assert not strays, f"folders under tests/ that mirror no part of looplet: {strays}"
