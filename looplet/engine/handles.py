"""Handle and TimerHandle: looplet's own handles, with asyncio's whole public API.

What `call_soon`, `call_later`, `call_at` and the fd watches return outside debug
mode. They offer what a program may use of `asyncio.Handle` and
`asyncio.TimerHandle`: `cancel()`, `cancelled()`, `get_context()`, `when()`, timer
ordering, equality and hashing, and asyncio's `repr`; and what asyncio's own code
reads of a handle (`_callback`, `_args`, `_context`, `_loop`, `_cancelled`, `_repr`,
`_source_traceback`, `_when`, `_scheduled`, `_run()`). They are not subclasses of
asyncio's classes (`isinstance(h, asyncio.Handle)` is False), as uvloop's are not:
asyncio's classes are Python classes, and mypyc's compiled classes cannot derive
from them. Compiled, building one and running it cost no Python frame.

The invariants owned here: they are used only while the loop is not in debug mode; in
debug mode the loop builds asyncio's own classes, which record where they were made
(the `repr` then names it), and on 3.14+ `call_soon_threadsafe` returns asyncio's
thread-safe handle. A handle reports its callback's exception exactly as asyncio's
`Handle._run` does (`report_callback_error`, which the scheduler's inlined run uses too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Context
from typing import Any, Final, TypeAlias, Union

from looplet._asyncio import format_callback_source


def report_callback_error(handle: Any, exc: BaseException) -> None:
    """What asyncio's `Handle._run` reports when the callback raises, word for word."""
    cb = format_callback_source(handle._callback, handle._args, handle._loop.get_debug())
    context: dict[str, Any] = {"message": f"Exception in callback {cb}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class Handle:
    """A callback scheduled on the loop (asyncio's `Handle` API)."""

    __slots__ = ("_args", "_callback", "_cancelled", "_context", "_loop", "_repr", "_source_traceback")

    def __init__(self, callback: Any, args: Any, loop: Any, context: Context) -> None:
        self._callback: Any = callback
        self._args: Any = args
        self._loop: Any = loop
        self._context: Context = context
        self._cancelled: bool = False
        #: Kept by cancel() in debug mode, as asyncio does, so a late report names it.
        self._repr: str | None = None
        #: Where the handle was made: only asyncio's debug-mode handles have one.
        self._source_traceback: Any = None

    def get_context(self) -> Context:
        """The context the callback runs in."""
        return self._context

    def cancel(self) -> None:
        """Do not run the callback (if it has not run yet)."""
        if not self._cancelled:
            self._cancelled = True
            if self._loop.get_debug():
                self._repr = repr(self)
            # Drop the references: a cancelled timer may wait in the heap a while.
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._cancelled

    def _run(self) -> None:
        try:
            self._context.run(self._callback, *self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            report_callback_error(self, exc)

    def _repr_info(self) -> list[str]:
        info = [type(self).__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(format_callback_source(self._callback, self._args, self._loop.get_debug()))
        return info

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))


class Cancels:
    """What a timer handle reports its cancel to: the count of cancelled timers still in
    a heap. The timer queue (engine/timers.py) is one; it is defined here so that a
    handle can call it without importing the queue, which imports the handles."""

    __slots__ = ("_cancelled_count", "cancelled_total", "debug")

    def __init__(self) -> None:
        #: Cancelled handles still in the heap.
        self._cancelled_count: int = 0
        #: Lifetime count, read by statistics().
        self.cancelled_total: int = 0
        #: The loop's debug mode, mirrored by the scheduler: a cancelled handle keeps
        #: its repr then, as asyncio's do, without asking the loop.
        self.debug: bool = False

    def count_cancel(self) -> None:
        """A handle in the heap was cancelled."""
        self._cancelled_count += 1
        self.cancelled_total += 1


class TimerHandle(Handle):
    """A callback scheduled for a loop time (asyncio's `TimerHandle` API)."""

    __slots__ = ("_deadline", "_queue", "_scheduled", "_seq", "_when")

    def __init__(self, when: Any, callback: Any, args: Any, loop: Any, context: Context) -> None:
        # Handle.__init__'s stores repeated, not called: a call per timer is what it saves.
        self._callback = callback
        self._args = args
        self._loop = loop
        self._context = context
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        #: A loop time as the caller gave it (any number: compared, never converted).
        self._when: Any = when
        #: True while the handle is in the timer heap (engine/timers.py).
        self._scheduled: bool = False
        #: The heap it was pushed on, which counts it when it is cancelled there.
        self._queue: Cancels | None = None
        #: Its place in the compiled build's native heap: `_when` as a double, and the
        #: order it was pushed in (engine/timers.py sets both, and alone reads them).
        self._deadline: float = 0.0
        self._seq: int = 0

    def when(self) -> Any:
        """The loop time the callback is scheduled for."""
        return self._when

    def cancel(self) -> None:
        """Do not run the callback; the timer queue counts the cancelled entry."""
        if self._cancelled:
            return
        queue = self._queue
        if queue is None:
            # Never scheduled (made by hand): nothing counts it, as asyncio's loop does not.
            super().cancel()
            return
        # Handle.cancel, with the queue's copy of the debug flag and its count, read
        # directly: every timeout that is not reached ends here.
        if self._scheduled:
            queue.count_cancel()
        self._cancelled = True
        if queue.debug:
            self._repr = repr(self)
        self._callback = None
        self._args = None

    def _repr_info(self) -> list[str]:
        info = super()._repr_info()
        info.insert(2 if self._cancelled else 1, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when < other._when)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when < other._when) or self.__eq__(other) is True
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when > other._when)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(self._when > other._when) or self.__eq__(other) is True
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return bool(
                self._when == other._when
                and self._callback == other._callback
                and self._args == other._args
                and self._cancelled == other._cancelled
            )
        return NotImplemented


#: What the run queue and the fd watches hold: looplet's handles, or asyncio's (debug
#: mode, 3.14's thread-safe ones, handles made elsewhere and scheduled here).
AnyHandle: TypeAlias = Union[Handle, asyncio.Handle]  # noqa: UP007  # a runtime alias


# The pure build: calling a Python class runs `type.__call__` and `__init__` in a
# nested run of the interpreter; a plain function that fills the slots of a bare
# instance is run in the caller's, about 300 instructions less per handle (3.12). The
# compiled build calls the classes, whose constructors are C.
_new: Final = object.__new__


def _fill_handle(callback: Any, args: Any, loop: Any, context: Context) -> Handle:
    handle: Any = _new(Handle)
    handle._callback = callback
    handle._args = args
    handle._loop = loop
    handle._context = context
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = None
    return handle  # type: ignore[no-any-return]


def _fill_timer_handle(when: Any, callback: Any, args: Any, loop: Any, context: Context) -> TimerHandle:
    handle: Any = _new(TimerHandle)
    handle._callback = callback
    handle._args = args
    handle._loop = loop
    handle._context = context
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = None
    handle._when = when
    handle._scheduled = False
    handle._queue = None
    return handle  # type: ignore[no-any-return]


COMPILED: Final = not __file__.endswith(".py")
#: `Handle(callback, args, loop, context)`, made the fastest way this build has.
new_handle: Final[Callable[[Any, Any, Any, Context], Handle]] = Handle if COMPILED else _fill_handle
#: `TimerHandle(when, callback, args, loop, context)`, likewise.
new_timer_handle: Final[Callable[[Any, Any, Any, Any, Context], TimerHandle]] = (
    TimerHandle if COMPILED else _fill_timer_handle
)
