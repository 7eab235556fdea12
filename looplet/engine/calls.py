"""Calls: the loop's busiest entry points, which the loop binds on itself as they are.

Every task step and every resolved future reaches the loop through `loop.call_soon`
(asyncio's Task and Future, C code, call it by name), every sleep and timeout through
`call_later` or `call_at`, most awaits make a `create_future`, every task a
`create_task`, every executor job and other thread a `call_soon_threadsafe`, and every
Future and Task asks `get_debug` as it is made. In the compiled
build `EventLoop` makes these methods of its `Calls` instance attributes of its own,
which attribute lookup finds before the class's methods: a call from C then runs no
Python frame at all (callgrind, 3.12: a third fewer instructions per `call_soon`
callback). The class's methods stay the API, and the slow path: debug mode's checks
and handles, a closed loop's error.

The invariant owned here: a call here has the outcome the class's method has, for
every argument. While the loop is open and not in debug mode, that is the non-debug
path's, done here; otherwise (`slow`, which the loop sets before it closes or enters
debug mode) the call goes to the class's method, so a bound method kept from before
still gets asyncio's checks and errors.
"""

from __future__ import annotations

import asyncio
import sys
from contextvars import copy_context
from typing import Any, Final

from looplet._asyncio import ThreadSafeHandle
from looplet.engine.handles import COMPILED, Handle, TimerHandle, new_handle, new_timer_handle
from looplet.engine.reactor.wakeup import ThreadWakeup
from looplet.engine.scheduler import Scheduler

_Future: Final = asyncio.Future
_Task: Final = asyncio.Task
#: The keywords create_task takes before 3.14 (from 3.14 on, whatever Task takes).
_TASK_KEYWORDS: Final = frozenset({"name", "context"})
#: Read once: compiled, `sys.version_info` is a module attribute looked up per call.
_BEFORE_3_14: Final = sys.version_info < (3, 14)


class Calls:
    """`call_soon`, `call_later`, `call_at` and `create_future` of one loop."""

    __slots__ = ("loop", "ready", "scheduler", "slow", "task_factory", "timers", "wakeup")

    #: The names the loop binds: each is also a method of the loop's class.
    NAMES: Final = (
        "call_soon",
        "call_soon_threadsafe",
        "call_later",
        "call_at",
        "create_future",
        "create_task",
        "get_debug",
    )
    #: Whether the loop binds them: in the compiled build only. Interpreted, a call
    #: through here costs what the class's method costs, plus a few attribute reads
    #: (callgrind, 3.12: 2-4% more instructions per callback).
    BIND: Final = COMPILED

    def __init__(self, loop: Any, scheduler: Scheduler) -> None:
        self.loop: Any = loop
        self.scheduler: Scheduler = scheduler
        self.ready = scheduler.ready
        self.timers = scheduler.timers
        # The object, not its bound `wake`: compiled, a call on it is a native call.
        self.wakeup: ThreadWakeup = scheduler.reactor.wakeup
        #: The loop is closed or in debug mode: its class's methods decide.
        self.slow: bool = True
        #: The loop's task factory, which set_task_factory keeps here: with one,
        #: create_task is the class's.
        self.task_factory: Any = None

    # The parameters are typed loosely on purpose: a wrong argument must meet the
    # check or the operation that rejects it on asyncio's loop, with asyncio's message,
    # not a compiled type check of its own.

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
        """The loop's `call_soon`."""
        if self.slow:
            return type(self.loop).call_soon(self.loop, callback, *args, context=context)
        handle = self._handle(callback, args, context)
        self.ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        """The loop's `call_soon_threadsafe` (any thread)."""
        if self.slow:
            return type(self.loop).call_soon_threadsafe(self.loop, callback, *args, context=context)
        handle: Any
        if ThreadSafeHandle is not None:
            # 3.14+: asyncio's, whose cancel() from another thread waits for the run.
            handle = ThreadSafeHandle(callback, args, self.loop, context)
        else:
            handle = self._handle(callback, args, context)
        # Append before waking: the wake-up must find the work already queued.
        self.ready.append(handle)
        self.wakeup.wake()
        return handle

    def call_later(self, delay: Any, callback: Any, *args: Any, context: Any = None) -> Any:
        """The loop's `call_later`."""
        if self.slow or delay is None:
            return type(self.loop).call_later(self.loop, delay, callback, *args, context=context)
        return self._timer(self.scheduler._now() + delay, callback, args, context)

    def call_at(self, when: Any, callback: Any, *args: Any, context: Any = None) -> Any:
        """The loop's `call_at`."""
        if self.slow or when is None:
            return type(self.loop).call_at(self.loop, when, callback, *args, context=context)
        return self._timer(when, callback, args, context)

    def _handle(self, callback: Any, args: tuple[Any, ...], context: Any) -> Handle:
        context = copy_context() if context is None else context
        # Compiled, calling the class itself is a C call; pure, new_handle is faster.
        return (
            Handle(callback, args, self.loop, context) if COMPILED else new_handle(callback, args, self.loop, context)
        )

    def _timer(self, when: Any, callback: Any, args: tuple[Any, ...], context: Any) -> TimerHandle:
        context = copy_context() if context is None else context
        timer = (
            TimerHandle(when, callback, args, self.loop, context)
            if COMPILED
            else new_timer_handle(when, callback, args, self.loop, context)
        )
        self.timers.push(timer)
        return timer

    def get_debug(self) -> Any:
        """The loop's `get_debug`: asyncio's C Future and Task ask it as each is made."""
        if self.slow:
            return type(self.loop).get_debug(self.loop)
        # Not slow: open and out of debug mode.
        return False

    def create_future(self) -> Any:
        """The loop's `create_future`."""
        return _Future(loop=self.loop)

    def create_task(self, coro: Any, **kwargs: Any) -> Any:
        """The loop's `create_task`."""
        if self.slow or self.task_factory is not None:
            return type(self.loop).create_task(self.loop, coro, **kwargs)
        if not kwargs:
            # How gather, ensure_future and TaskGroup call it: a call with no ** to
            # merge, which compiled is a vectorcall instead of a dict built and unpacked.
            return _Task(coro, loop=self.loop)
        if _BEFORE_3_14 and not kwargs.keys() <= _TASK_KEYWORDS:
            return type(self.loop).create_task(self.loop, coro, **kwargs)
        return _Task(coro, loop=self.loop, **kwargs)
