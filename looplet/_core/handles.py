"""Handle and TimerHandle: asyncio's own classes, built without the debug-mode probe.

`asyncio.Handle.__init__` asks `loop.get_debug()` on every handle it builds, to record
where it was created; the loop already knows. These subclasses add no state and no
behaviour: `isinstance(h, asyncio.Handle)`, `repr`, `cancel()`, `_run()`,
comparisons and hashing are asyncio's. The invariant owned here: they are used only
while the loop is not in debug mode; in debug mode the loop builds asyncio's classes,
which record the source traceback.
"""

from __future__ import annotations

from asyncio import events
from contextvars import Context
from typing import Any


class Handle(events.Handle):
    """An `asyncio.Handle` made for a loop that is not in debug mode."""

    __slots__ = ()

    def __init__(self, callback: Any, args: Any, loop: Any, context: Context) -> None:
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class TimerHandle(events.TimerHandle):
    """An `asyncio.TimerHandle` made for a loop that is not in debug mode."""

    __slots__ = ()

    def __init__(self, when: float, callback: Any, args: Any, loop: Any, context: Context) -> None:
        # Handle.__init__'s stores repeated, not called: a call is what this class saves.
        self._context = context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False
