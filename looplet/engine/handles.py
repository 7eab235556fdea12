"""Handle and TimerHandle: asyncio's own classes, built without the debug-mode probe.

`asyncio.Handle.__init__` asks `loop.get_debug()` on every handle it builds, to record
where it was created; the loop already knows. These subclasses add no state and no
behaviour: `isinstance(h, asyncio.Handle)`, `repr`, `cancel()`, `_run()`,
comparisons and hashing are asyncio's. The invariant owned here: they are used only
while the loop is not in debug mode; in debug mode the loop builds asyncio's classes,
which record the source traceback.

`new_handle` and `new_timer_handle` are how the loop makes them. They fill the slots
of a bare instance (every slot asyncio's `__init__` fills: looplet/_asyncio.py checks
at import that asyncio's slots are exactly these) from a plain function: calling a class with a Python `__init__`
goes through `type.__call__` and a nested run of the interpreter, where a Python
function call is run in the caller's interpreter loop. Under callgrind that is about
300 instructions less per handle (3.12), on the path every `call_soon` and
`call_later` takes.
"""

from __future__ import annotations

import asyncio
from contextvars import Context
from typing import Any, Final


class Handle(asyncio.Handle):
    """An `asyncio.Handle` made for a loop that is not in debug mode."""

    __slots__ = ()


class TimerHandle(asyncio.TimerHandle):
    """An `asyncio.TimerHandle` made for a loop that is not in debug mode."""

    __slots__ = ()


_new: Final = object.__new__


def new_handle(callback: Any, args: Any, loop: Any, context: Context) -> Handle:
    """`Handle(callback, args, loop, context)`, with asyncio's `__init__` stores."""
    handle: Any = _new(Handle)
    handle._context = context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = None
    return handle  # type: ignore[no-any-return]


def new_timer_handle(when: float, callback: Any, args: Any, loop: Any, context: Context) -> TimerHandle:
    """`TimerHandle(when, callback, args, loop, context)`, with asyncio's `__init__` stores."""
    # new_handle's stores repeated, not called: a call is what this function saves.
    handle: Any = _new(TimerHandle)
    handle._context = context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = None
    handle._when = when
    handle._scheduled = False
    return handle  # type: ignore[no-any-return]
