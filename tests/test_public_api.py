"""The public surface: exports, docstrings, and the typing marker."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pathlib

import pytest

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
