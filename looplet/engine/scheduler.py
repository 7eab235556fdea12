"""The scheduler: the run queue and `tick()`, one iteration of the loop.

The invariant this module owns: `Scheduler.tick` is the only place callbacks are
called; everything else (call_soon, fd watches, timers, other threads) only appends to
`ready`. A tick polls the reactor (not blocking if work is ready or the loop is
stopping, else until the next timer), lets the reactor queue the watches of ready fds, moves due
timers onto the queue, and then runs exactly the entries queued at that point:
work queued by those callbacks waits for the next tick, after another poll, so I/O is
never starved by a callback that keeps rescheduling itself. FIFO order is asyncio's
contract and is kept.
"""

from __future__ import annotations

import logging
import time
from asyncio import Handle, TimerHandle
from collections import deque
from collections.abc import Callable
from contextvars import Context
from typing import Any, Final

from looplet.engine.clock import Clock
from looplet.engine.handles import Handle as OwnHandle
from looplet.engine.handles import TimerHandle as OwnTimerHandle
from looplet.engine.handles import report_callback_error
from looplet.engine.reactor import Reactor, pick_reactor
from looplet.engine.reactor.base import MAX_POLL_TIMEOUT
from looplet.engine.timers import TimerQueue
from looplet.engine.watch import Watch

logger: Final = logging.getLogger("asyncio")

_perf: Final = time.perf_counter

#: What tick() leaves in its typed handle variable when it is done: a handle that holds
#: nothing (no callback, no task, no loop).
_EMPTY_HANDLE: Final = OwnHandle(None, (), None, Context())
#: Likewise for its typed watch variable.
_EMPTY_WATCH: Final = Watch(_EMPTY_HANDLE, deque())

# observe()'s "leave it as it is".
_KEEP: Final = object()


def _format_handle(handle: object) -> str:
    # asyncio's base_events._format_handle: name the task, not Task.__step.
    handle = getattr(handle, "_handle", handle)  # a Watch: report what it runs
    cb = getattr(handle, "_callback", None)
    task = getattr(cb, "__self__", None)
    if task is not None and type(task).__name__.endswith("Task"):
        return repr(task)
    return str(handle)


class Scheduler:
    """Run queue, timers, reactor and clock, and the tick that drives them."""

    __slots__ = (
        "_now",
        "blocked",
        "callbacks_run",
        "clock",
        "clock_now",
        "clock_resolution",
        "clock_virtual",
        "current_handle",
        "debug",
        "observed",
        "observer",
        "outside",
        "polls",
        "reactor",
        "ready",
        "shuffle",
        "slow_callback_duration",
        "stopping",
        "ticks",
        "time_source",
        "timers",
    )

    def __init__(self, clock: Clock | None = None, reactor: str | None = None) -> None:
        #: The run queue: `Handle`s, and the `Watch`es of ready fds, run in FIFO order by tick().
        self.ready: deque[object] = deque()
        self.timers: TimerQueue = TimerQueue()
        self.clock: Clock = Clock()
        #: The clock's `virtual` and `resolution`, as they were when it was set.
        self.clock_virtual: bool = False
        self.clock_resolution: float = 0.0
        #: The clock's own reading: what loop.time() returns unless it was replaced.
        self.clock_now: Callable[[], float] = time.monotonic
        #: What replaced loop.time(), if anything (see read_time_from).
        self.time_source: Callable[[], float] | None = None
        #: "Now" for timers and timeouts: `time_source` if set, else `clock_now`.
        self._now: Callable[[], float] = time.monotonic
        self.set_clock(clock if clock is not None else self.clock)
        self.reactor: Reactor = pick_reactor(self.ready, reactor)
        #: Work in flight outside the loop that will queue work here when it is done
        #: (executor jobs, helper threads, children being waited for): a token each,
        #: added when it starts and discarded on the loop's thread once its result is
        #: here. While any is here, a virtual clock waits for real instead of jumping.
        self.outside: set[object] = set()
        #: Set by loop.stop(): the current tick completes, then run_forever returns.
        self.stopping: bool = False
        #: asyncio's debug mode: time every callback and report slow ones.
        self.debug: bool = False
        self.slow_callback_duration: float = 0.1
        #: The handle running now, in debug mode only (asyncio's `_current_handle`).
        self.current_handle: object = None
        #: Counters read by statistics(); plain ints so the hot path pays an add.
        self.ticks: int = 0
        self.callbacks_run: int = 0
        #: Reactor polls, and seconds spent in the ones that could block.
        self.polls: int = 0
        self.blocked: float = 0.0
        #: Tools on the slow path (see observe()); `observed` is True when any is on.
        self.observer: Any = None
        self.shuffle: Any = None
        self.observed: bool = False

    def set_clock(self, clock: Clock) -> None:
        """Take time from `clock` from now on (timer deadlines are kept as they are)."""
        self.clock = clock
        # Read once, here: the clock is an interpreted object (subclassed by users), and
        # the tick reads these on every poll.
        self.clock_virtual = clock.virtual
        self.clock_resolution = clock.resolution
        # The real clock's time() is a Python frame around time.monotonic; skip it.
        self.clock_now = time.monotonic if type(clock) is Clock else clock.time
        self._now = self.clock_now if self.time_source is None else self.time_source

    def read_time_from(self, time_source: Callable[[], float] | None) -> None:
        """Read "now" from `time_source` from now on; None: from the clock again.

        For a loop whose time() was replaced (a subclass's, or a test's patch on the
        instance): asyncio's loop reads self.time() for every timer decision, so the
        replacement decides which timers are due, as there.
        """
        self.time_source = time_source
        self._now = self.clock_now if time_source is None else time_source

    def _idle_timeout(self) -> float | None:
        # Nothing is ready: block until the next live timer, or indefinitely.
        deadline = self.timers.next_deadline()
        if deadline is None:
            return None
        timeout = deadline - self._now()
        if timeout > MAX_POLL_TIMEOUT:
            return MAX_POLL_TIMEOUT
        return timeout if timeout > 0.0 else 0.0

    def _outside_pending(self) -> bool:
        # Whether anything outside the loop may still queue work: a token in `outside`,
        # or any fd with a reader or writer (a socket, a pipe, a child's pidfd, the
        # signal socket; the reactor's own wake-up fd is not one). Read only when a
        # virtual clock would jump, so it may cost a scan of the registrations.
        return bool(self.outside) or bool(self.reactor.registered_fds())

    def tick(self) -> None:
        """Run one iteration: poll, wake, fire due timers, run what is ready."""
        ready = self.ready
        reactor = self.reactor
        events = None
        t_poll = 0.0
        if ready or self.stopping:
            # Work is ready: poll without blocking, unless no fd is watched. Then a poll
            # could only report other threads' wake-ups, whose work is queued already
            # (they append before they wake); the wake-up fd stays readable, so the
            # next blocking poll returns at once and drains it.
            if not reactor.idle():
                self.polls += 1
                events = reactor.poll(0.0)
        else:
            timeout = self._idle_timeout()
            self.polls += 1
            if self.clock_virtual and timeout != 0.0:
                events = reactor.poll(0.0)
                if not events:
                    if timeout is None:
                        # No timer to jump to: only real I/O or another thread can wake us.
                        self.polls += 1
                        t_poll = _perf()
                        events = reactor.poll(None)
                        self.blocked += _perf() - t_poll
                    elif self._outside_pending():
                        # A thread, a child or a peer may deliver before the next timer:
                        # wait for it for real, up to that timer, and let virtual time pass
                        # as much as real time did (trio's autojump and tokio's paused clock
                        # jump only when nothing but a timer can happen next, too).
                        start = self.clock_now()
                        self.polls += 1
                        t_poll = _perf()
                        events = reactor.poll(timeout)
                        waited = _perf() - t_poll
                        self.blocked += waited
                        deadline = self.timers.next_deadline()
                        if deadline is not None:
                            self.clock.advance_to(min(deadline, start + waited))
                    else:
                        # Nothing can happen before the next timer but the timer: jump
                        # onto its deadline itself (now + timeout could round off it).
                        deadline = self.timers.next_deadline()
                        if deadline is not None:
                            self.clock.advance_to(deadline)
            else:
                # Only a poll that may block is timed: two clock reads next to a sleep.
                t_poll = _perf()
                events = reactor.poll(timeout)
                self.blocked += _perf() - t_poll
        if events:
            reactor.dispatch(events)
        timers = self.timers
        if timers.handles or timers.entries:
            timers.pop_due(self._now() + self.clock_resolution, ready)

        ntodo = len(ready)
        self.ticks += 1
        self.callbacks_run += ntodo
        if self.observed:
            if self.debug or self.observer is not None:
                self._run_observed(ntodo, events, t_poll)
                return
            # Only the shuffle: reorder the batch where it waits, and run it as usual.
            if ntodo > 1:
                self._shuffle_batch(ntodo)
        popleft = ready.popleft
        own = _EMPTY_HANDLE
        watch = _EMPTY_WATCH
        context: Any
        callback: Any
        args: Any
        for _ in range(ntodo):
            handle: Any = popleft()
            kind = type(handle)
            if kind is Watch:
                # Watch._run, inlined: readiness runs the watch's handle. (A watch is
                # never cancelled, its handle is. `watch` and `own` are typed by their
                # first values, so compiled their reads are a struct's fields; a
                # typing.cast would be a call in the pure build.)
                watch = handle
                watch._queued = False
                handle = watch._handle
                kind = type(handle)
            if kind is OwnHandle or kind is OwnTimerHandle:
                own = handle
                if own._cancelled:
                    self.callbacks_run -= 1
                    continue
                context, callback, args = own._context, own._callback, own._args
            elif handle._cancelled:
                self.callbacks_run -= 1
                continue
            elif kind is Handle or kind is TimerHandle:
                context, callback, args = handle._context, handle._callback, handle._args
            else:
                # A handle with a _run() of its own (3.14's thread-safe one, a subclass).
                handle._run()
                continue
            # asyncio's Handle._run, inlined: a Python frame less per callback. Task
            # steps have no arguments, and a call without * builds no argument tuple.
            try:
                if args:
                    context.run(callback, *args)
                else:
                    context.run(callback)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                report_callback_error(handle, exc)
        # A frame object of this call may outlive it (a coroutine that raised links its
        # frame to its caller's, and that to this one): it must not keep the last
        # handle, and through it a finished task and its exception, alive. asyncio's
        # _run_once drops it too.
        handle = context = callback = args = None
        own = _EMPTY_HANDLE
        watch = _EMPTY_WATCH

    def observe(self, *, debug: bool | None = None, observer: Any = _KEEP, shuffle: Any = _KEEP) -> None:
        """Change what the slow path does; the fast path runs when none of it is on.

        `debug`: asyncio's debug mode (slow-callback warnings, `current_handle`).
        `observer`: an object with `step(handle, start, duration, lag)` and
        `polled(events, start, blocked, reactor)`, or None (see looplet/tools/observer.py).
        `shuffle`: a `random.Random` that shuffles each tick's batch, or None.
        """
        if debug is not None:
            self.debug = debug
            self.timers.debug = debug
        if observer is not _KEEP:
            self.observer = observer
        if shuffle is not _KEEP:
            self.shuffle = shuffle
        self.observed = self.debug or self.observer is not None or self.shuffle is not None

    def _shuffle_batch(self, ntodo: int) -> None:
        # The tick's first `ntodo` entries, reordered where they wait: with or without
        # the other tools on, a seed gives one order. (A batch of one has one order, and
        # random.shuffle draws nothing for it: callers skip it.)
        ready = self.ready
        batch: list[Any] = [ready.popleft() for _ in range(ntodo)]
        self.shuffle.shuffle(batch)
        ready.extendleft(reversed(batch))

    def _run_observed(self, ntodo: int, events: list[tuple[int, int]] | None, t_poll: float) -> None:
        # The tick's second half with everything a tool may want: debug mode's timing
        # and slow-callback warnings, the observer's per-step record, the shuffle.
        observer = self.observer
        if observer is not None and events is not None:
            # (None: this tick did not poll; see tick().)
            observer.polled(events, t_poll, self.reactor)
        if self.shuffle is not None and ntodo > 1:
            self._shuffle_batch(ntodo)
        popleft = self.ready.popleft
        debug = self.debug
        now = self._now
        for _ in range(ntodo):
            handle: Any = popleft()
            if handle._cancelled:
                self.callbacks_run -= 1
                continue
            inner = handle
            if type(handle) is Watch:
                inner = handle._handle
                if inner._cancelled:
                    handle._queued = False
                    self.callbacks_run -= 1
                    continue
            lag = None
            if observer is not None and isinstance(inner, (TimerHandle, OwnTimerHandle)):
                lag = now() - inner.when()
            t_loop = 0.0
            try:
                if debug:
                    # Debug mode times callbacks on the loop's clock, as asyncio does.
                    self.current_handle = handle
                    t_loop = now()
                t0 = _perf()
                handle._run()
                dt = _perf() - t0
            finally:
                self.current_handle = None
            if debug:
                slow = now() - t_loop
                if slow >= self.slow_callback_duration:
                    logger.warning("Executing %s took %.3f seconds", _format_handle(handle), slow)
            if observer is not None:
                observer.step(inner, t0, dt, lag)
        handle = inner = None  # as at the end of tick()

    def close(self) -> None:
        """Drop queued work and timers; close the reactor (and with it the wake-up fd)."""
        self.ready.clear()
        self.timers.clear()
        self.reactor.close()
