"""The public surface: exports, docstrings, the typing marker, and a bad-input case for every public loop method."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pathlib

import pytest
from bad_input import CASES, PY312

import looplet

PUBLIC_MODULES = [
    "looplet",
    "looplet.loop",
    "looplet.testing",
    "looplet.policy",
    "looplet.runner",
    "looplet.tools.observe",
]


def public_objects() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        found.append((modname, mod))
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != modname:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.append((f"{modname}.{name}", obj))
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                        found.append((f"{modname}.{name}.{attr}", member))
    return found


@pytest.mark.parametrize(("name", "obj"), public_objects(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_object_has_a_docstring(name: str, obj: object) -> None:
    doc = obj.__doc__ if not isinstance(obj, property) else (obj.fget.__doc__ if obj.fget else None)
    if doc is None and inspect.isfunction(obj):
        # A method overriding asyncio's abstract one inherits its contract and its doc.
        doc = inspect.getdoc(getattr(asyncio.AbstractEventLoop, obj.__name__, None))
    assert doc and doc.strip(), f"{name} has no docstring"


def test_exports() -> None:
    assert set(looplet.__all__) <= set(dir(looplet))
    loop = looplet.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(loop, looplet.EventLoop)
        assert not isinstance(loop, asyncio.BaseEventLoop)  # a loop of its own
    finally:
        loop.close()


def test_package_is_typed() -> None:
    assert (pathlib.Path(looplet.__file__).parent / "py.typed").exists()


def test_every_public_method_has_a_case() -> None:
    """The table has a case for each public method of asyncio's loop API that looplet has."""
    # No argument to get wrong, or a flag any value of which is accepted.
    no_bad_input = {
        "create_future",
        "default_exception_handler",
        "get_debug",
        "get_exception_handler",
        "get_task_factory",
        "is_closed",
        "is_running",
        "set_debug",
        "shutdown_asyncgens",
        "stop",
        "time",
    }
    if not PY312:
        no_bad_input.add("shutdown_default_executor")  # no timeout argument before 3.12
    covered = {case.id.split("-")[0] for case in CASES}
    public = {name for name in dir(asyncio.AbstractEventLoop) if not name.startswith("_")}
    missing = sorted(name for name in public - no_bad_input - covered if hasattr(looplet.EventLoop, name))
    assert not missing, f"no bad-input case for: {missing}"
