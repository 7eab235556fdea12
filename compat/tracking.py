"""Observe which event loop types actually run while a test executes.

Role: wrap asyncio's running-loop accessors so the worker can tell, for every
test, whether the loop under test ran, some other loop ran (CPython's
``test_utils.TestLoop``, a mock-selector ``BaseEventLoop``, a stock loop a
test builds by hand), or none at all.

Invariant owned here: the hooks are installed before the loop module is
imported.  uvloop (and any loop doing ``from asyncio import
_set_running_loop``) captures the function object at import time, so a hook
installed later would be blind to it and every test would look loop-free.

Two kinds of evidence are kept apart: ``set`` (the loop announced itself
through ``_set_running_loop``, what every asyncio-compatible loop must do for
``get_running_loop()`` to work) and ``seen`` (``get_running_loop()`` returned
it, a fallback for loops that reach the C accessor directly).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import threading
from collections.abc import Callable
from typing import Any

_SET_NAMES = ("_set_running_loop",)
_GET_NAMES = ("_get_running_loop", "get_running_loop")


class LoopTracker:
    """Collects loop types seen running since the last :meth:`reset`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set_types: set[type] = set()
        self._seen_types: set[type] = set()
        self._installed = False

    # Hooks run on every loop entry and on every get_running_loop() call, so
    # they only add to a set; classification happens once per test.
    def _note_set(self, loop: object) -> None:
        if loop is not None:
            with self._lock:
                self._set_types.add(type(loop))

    def _note_seen(self, loop: object) -> None:
        if loop is not None:
            with self._lock:
                self._seen_types.add(type(loop))

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        modules: list[Any] = [asyncio.events, asyncio]
        try:
            import _asyncio
        except ImportError:  # pragma: no cover - interpreters without the C accelerator
            pass
        else:
            modules.append(_asyncio)
        for name in _SET_NAMES:
            original = getattr(asyncio.events, name)
            setter = _wrap_setter(original, self._note_set)
            for module in modules:
                if hasattr(module, name):
                    setattr(module, name, setter)
        for name in _GET_NAMES:
            original = getattr(asyncio.events, name)
            getter = _wrap_getter(original, self._note_seen)
            for module in modules:
                if hasattr(module, name):
                    setattr(module, name, getter)

    def reset(self) -> None:
        with self._lock:
            self._set_types.clear()
            self._seen_types.clear()

    def snapshot(self) -> tuple[set[type], set[type]]:
        """(types announced via _set_running_loop, types only seen running)."""
        with self._lock:
            announced = set(self._set_types)
            seen = set(self._seen_types) - announced
        return announced, seen


def _wrap_setter(original: Callable[[Any], None], note: Callable[[object], None]) -> Callable[[Any], None]:
    def _set_running_loop(loop: Any) -> None:
        note(loop)
        original(loop)

    _set_running_loop.__wrapped__ = original  # type: ignore[attr-defined]
    return _set_running_loop


def _wrap_getter(original: Callable[[], Any], note: Callable[[object], None]) -> Callable[[], Any]:
    def getter() -> Any:
        loop = original()
        note(loop)
        return loop

    getter.__name__ = getattr(original, "__name__", "get_running_loop")
    getter.__qualname__ = getter.__name__
    getter.__wrapped__ = original  # type: ignore[attr-defined]
    return getter


def type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


TRACKER = LoopTracker()
