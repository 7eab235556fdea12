"""Seeing and steering the loop: `statistics()`, timings, the trace, the clock, the shuffle.

Role: the loop's looplet-only API for tools (`LoopTools`, one per loop, to which
`EventLoop`'s `statistics()`, `enable_timing()`, `set_clock()`, `set_shuffle()` and
`trace()` delegate), and the frozen `Statistics` it reports. The counters behind
`statistics()` live where the work happens (the scheduler counts ticks, callbacks
and polls, the reactor wakes, the timer queue timers) as plain integer adds;
everything that needs a clock read per callback (time in callbacks, the slowest
callbacks, loop lag, the trace) is off until asked for, and then runs on the
scheduler's observed path (`looplet/tools/observer.py`).

The invariant owned here: turning a tool off restores the fast path exactly; a
`trace()` block's file is written once, when the block ends, and is valid
trace-event JSON. `LOOPLET_TRACE` traces every loop of the process into one file, a
trace-event process per loop (numbered 1, 2, ... in the order the loops were made):
the file is made, as an empty valid trace, when the first loop is made, so a path
that cannot be written is reported then, naming the variable, and the process runs
untraced; each loop's events are appended when it closes, and the file is valid JSON
after every append. A write that fails at close is reported on stderr, never raised
into the code that closed the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from looplet._asyncio import get_running_loop_or_none
from looplet.engine.clock import Clock
from looplet.tools.observer import LAG_BOUNDS, Observer, Tracer

if TYPE_CHECKING:
    from looplet.engine.scheduler import Scheduler

#: Tracers of `with looplet.trace(...)` blocks entered outside a loop, and the loops
#: made inside them that they record.
_pending_tracers: dict[Tracer, weakref.WeakSet[LoopTools]] = {}
#: Each looplet loop's tools by id(loop), for `trace()` inside a running loop. Weak
#: values: the loop holds its tools, and an entry goes when they do.
_tools_of: weakref.WeakValueDictionary[int, LoopTools] = weakref.WeakValueDictionary()


#: The tail every `LOOPLET_TRACE` file ends with: its events list is the last member, so
#: a loop's events go in just before it.
_ENV_TAIL = b"]}"


class EnvTrace:
    """The `LOOPLET_TRACE` file of this process: every loop's events, a process each."""

    def __init__(self, given: str, path: str) -> None:
        #: The variable's value, and the file written (another for a forked child).
        self.given = given
        self.path = path
        self.pid = os.getpid()
        #: Set when the file could not be made: this process runs untraced.
        self.failed = False
        self._loops = 0
        self._empty = True
        self._lock = threading.Lock()

    def start(self) -> None:
        """Make the file, an empty trace; warn, naming the variable, if it cannot be made."""
        head = {"displayTimeUnit": "ms", "otherData": {"producer": "looplet", "tracks": "a process per loop"}}
        text = json.dumps(head)[:-1] + ', "traceEvents": []}'
        try:
            with open(self.path, "wb") as f:
                f.write(text.encode())
        except OSError as exc:
            self.failed = True
            warnings.warn(
                f"LOOPLET_TRACE={self.given!r}: cannot write the trace file ({exc}); this process runs untraced",
                RuntimeWarning,
                stacklevel=5,
            )

    def new_loop(self) -> int:
        """The number of the next loop's process in the trace."""
        with self._lock:
            self._loops += 1
            return self._loops

    def append(self, tracer: Tracer) -> None:
        """Add a closed loop's events; report a failure on stderr instead of raising."""
        body = json.dumps(tracer.trace_events())[1:-1].encode()
        if not body:
            return
        with self._lock:
            try:
                with open(self.path, "r+b") as f:
                    f.seek(-len(_ENV_TAIL), os.SEEK_END)
                    if f.read() != _ENV_TAIL:
                        raise OSError(f"{self.path} no longer ends as looplet left it")
                    f.seek(-len(_ENV_TAIL), os.SEEK_END)
                    f.write((b"" if self._empty else b", ") + body + _ENV_TAIL)
                self._empty = False
            except OSError as exc:
                print(
                    f"looplet: LOOPLET_TRACE={self.given!r}: could not add loop {tracer.pid}'s trace: {exc}",
                    file=sys.stderr,
                    flush=True,
                )


_env_trace: EnvTrace | None = None
_env_trace_lock = threading.Lock()


def env_trace(given: str) -> EnvTrace:
    """This process's `LOOPLET_TRACE` file for the value `given`, made on first use.

    A child forked from a process that traced to the same value writes a file of its
    own beside it, `<name>.<pid><ext>`, instead of interleaving with its parent's.
    """
    global _env_trace
    with _env_trace_lock:
        current = _env_trace
        if current is not None and current.given == given and current.pid == os.getpid():
            return current
        path = given
        if current is not None and current.given == given:
            root, ext = os.path.splitext(given)
            path = f"{root}.{os.getpid()}{ext}"
        current = _env_trace = EnvTrace(given, path)
        current.start()
        return current


@dataclass(frozen=True, slots=True)
class LagHistogram:
    """How late timers ran: counts per bucket of `bounds` (seconds), plus one over the last."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    max: float
    mean: float

    @property
    def count(self) -> int:
        """Timers measured."""
        return sum(self.counts)

    def percentile(self, p: float) -> float:
        """An upper bound of the `p`th percentile of lag (the bucket edge it falls under).

        Raises:
            ValueError: `p` is not within 0..100.
        """
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be within 0..100, not {p!r}")
        total = self.count
        if not total:
            return 0.0
        rank = p / 100 * total
        seen = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            seen += n
            if seen >= rank and n:
                return min(bound, self.max)
        return self.max


@dataclass(frozen=True, slots=True)
class Statistics:
    """A snapshot of what a looplet loop has done since it was made.

    The counters are always kept. `busy_seconds`, `slowest_callbacks` and `lag` are
    kept only while timing is on (`loop.enable_timing()`); otherwise they are 0, ()
    and None.
    """

    #: Loop iterations: a poll, the wakes, due timers, the run of what was ready.
    ticks: int
    #: Callbacks and task steps run (cancelled handles skipped are not counted).
    callbacks_run: int
    #: Readiness wakes of fd watches, and those coalesced (the watch was queued already).
    wakes: int
    coalesced_wakes: int
    #: Reactor polls, and the seconds spent in those that could block.
    polls: int
    blocked_seconds: float
    #: Timers (call_later / call_at) made, cancelled while scheduled, and still pending.
    timers_scheduled: int
    timers_cancelled: int
    timers_pending: int
    #: fds with a reader or writer now (the loop's own wake-up fd is not one).
    registered_fds: int
    #: Tasks of this loop not yet done.
    tasks_alive: int
    #: Timing: whether the next three fields are being kept.
    timing: bool
    busy_seconds: float
    #: (name, seconds) of the slowest steps seen, slowest first.
    slowest_callbacks: tuple[tuple[str, float], ...]
    lag: LagHistogram | None


class LoopTools:
    """One loop's tools: statistics, timings and tracing, and the steering (its
    clock, the shuffle of its ready work)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, scheduler: Scheduler, shuffle_seed: int | None) -> None:
        # Weak: the registry of tools by loop holds this object, and must not hold the loop.
        self._loop = weakref.ref(loop)
        self._scheduler = scheduler
        self._observer: Observer | None = None
        self._tracers: list[Tracer] = []
        self._timing = False
        if shuffle_seed is not None:
            self.set_shuffle(shuffle_seed)
        for tracer, loops in _pending_tracers.items():
            # The block did not know the loop's clock: stamp as this loop's clock says.
            tracer.bind(self._scheduler._now, self._scheduler.clock.virtual)
            loops.add(self)
            self.attach_tracer(tracer)
        self._env_trace: tuple[EnvTrace, Tracer] | None = None
        given = os.environ.get("LOOPLET_TRACE")
        if given:
            env = env_trace(given)
            if not env.failed:
                tracer = self.new_tracer()
                tracer.pid = env.new_loop()
                tracer.name_process(f"looplet loop {tracer.pid} (clock: {tracer.clock})")
                self._env_trace = (env, tracer)
                self.attach_tracer(tracer)
        _tools_of[id(loop)] = self

    def new_tracer(self) -> Tracer:
        """A tracer stamping with this loop's clock (logical stamps on a virtual one)."""
        return Tracer(self._scheduler._now, self._scheduler.clock.virtual)

    def close(self) -> None:
        """The loop is closing: add its events to the `LOOPLET_TRACE` file."""
        if self._env_trace is not None:
            env, tracer = self._env_trace
            self._env_trace = None
            env.append(tracer)

    # -- statistics ------------------------------------------------------------------

    def statistics(self) -> Statistics:
        """What the loop has done so far (see `looplet.Statistics`)."""
        sched = self._scheduler
        timers = sched.timers
        obs = self._observer
        timing = obs is not None and obs.timing
        lag = None
        slowest: tuple[tuple[str, float], ...] = ()
        if obs is not None and timing:
            measured = sum(obs.lag_counts)
            mean = obs.lag_sum / measured if measured else 0.0
            lag = LagHistogram(LAG_BOUNDS, tuple(obs.lag_counts), obs.lag_max, mean)
            slowest = tuple((name, seconds) for seconds, _, name in sorted(obs.slowest, reverse=True))
        return Statistics(
            ticks=sched.ticks,
            callbacks_run=sched.callbacks_run,
            wakes=sched.reactor.wakes,
            coalesced_wakes=sched.reactor.coalesced_wakes,
            polls=sched.polls,
            blocked_seconds=sched.blocked,
            timers_scheduled=timers.scheduled_total,
            timers_cancelled=timers.cancelled_total,
            timers_pending=len(timers),
            registered_fds=0 if sched.reactor.closed else len(sched.reactor.registered_fds()),
            tasks_alive=len(asyncio.all_tasks(self._loop())),
            timing=timing,
            busy_seconds=obs.busy if obs is not None and timing else 0.0,
            slowest_callbacks=slowest,
            lag=lag,
        )

    def enable_timing(self, enabled: bool = True) -> None:
        """Time every callback: fills `statistics()`'s busy time, slowest callbacks and lag.

        Off by default: it costs two clock reads per callback. Turning it on again
        starts from zero.
        """
        self._timing = bool(enabled)
        self._rebuild_observer(fresh=True)

    # -- the clock -----------------------------------------------------------------------

    def get_clock(self) -> Clock:
        """The clock `time()` reads (looplet's own; not part of asyncio's loop API)."""
        return self._scheduler.clock

    def set_clock(self, clock: Clock) -> None:
        """Read time from `clock` from now on (looplet's own; not in asyncio's loop API).

        Timers keep their deadlines, which are loop times: give a virtual clock the
        current `time()` as its start (`VirtualClock(start=loop.time())`) and pending
        timers fire when they would have. Raises `TypeError` for anything not a
        `looplet.Clock`.
        """
        if not isinstance(clock, Clock):
            raise TypeError(f"clock must be a looplet.Clock, not {type(clock).__name__}")
        self._scheduler.set_clock(clock)

    # -- tracing and the shuffle -------------------------------------------------------

    def attach_tracer(self, tracer: Tracer) -> None:
        """Record into `tracer` from now on (the latest attached records)."""
        self._tracers.append(tracer)
        self._rebuild_observer(fresh=False)

    def detach_tracer(self, tracer: Tracer) -> None:
        """Stop recording into `tracer`."""
        if tracer in self._tracers:
            self._tracers.remove(tracer)
            self._rebuild_observer(fresh=False)

    def _rebuild_observer(self, fresh: bool) -> None:
        old = self._observer
        if not self._timing and not self._tracers:
            self._observer = None
        else:
            # One tracer at a time records; more than one (nested trace blocks) would
            # record the same steps twice, so the innermost wins until it ends.
            tracer = self._tracers[-1] if self._tracers else None
            if old is not None and not fresh and old.timing == self._timing:
                old.tracer = tracer
            else:
                self._observer = Observer(self._timing, tracer)
        self._scheduler.observe(observer=self._observer)

    def set_shuffle(self, seed: int | None) -> None:
        """Run each tick's ready work in a seeded random order, or (None) in FIFO order.

        For tests that want to shake out code relying on an ordering asyncio does not
        promise between independent callbacks; the same seed gives the same order run
        after run. Off by default: FIFO is asyncio's contract.
        """
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, not {type(seed).__name__}")
        self._scheduler.observe(shuffle=None if seed is None else random.Random(seed))


def write_trace(path: str | os.PathLike[str], tracer: Tracer) -> None:
    """Write `tracer`'s events to `path` as trace-event JSON."""
    # dumps, not dump: json.dump streams through the pure-Python encoder, dumps uses the
    # C one, several times faster on a trace of a million events.
    text = json.dumps(tracer.document())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@contextlib.contextmanager
def trace(path: str | os.PathLike[str]) -> Iterator[Tracer]:
    """Record every poll, wake and callback or task step to `path` (trace-event JSON).

    Inside a running looplet loop, traces that loop until the block ends; outside
    one, traces the looplet loops made inside the block (`looplet.run(...)`,
    `asyncio.run(..., loop_factory=looplet.new_event_loop)`). The file is written
    when the block ends; open it in https://ui.perfetto.dev or chrome://tracing.

    Raises:
        RuntimeError: the running loop is not a looplet loop.
    """
    running = get_running_loop_or_none()
    tools = None if running is None else _tools_of.get(id(running))
    if tools is not None and tools._loop() is not running:
        tools = None  # an id reused by a loop of another kind
    if running is not None and tools is None:
        raise RuntimeError(f"looplet.trace() needs a looplet loop, not {type(running).__name__}")
    if tools is not None:
        tracer = tools.new_tracer()
        tools.attach_tracer(tracer)
        try:
            yield tracer
        finally:
            tools.detach_tracer(tracer)
            write_trace(path, tracer)
        return
    tracer = Tracer(time.monotonic, logical=False)
    loops: weakref.WeakSet[LoopTools] = weakref.WeakSet()
    _pending_tracers[tracer] = loops
    try:
        yield tracer
    finally:
        del _pending_tracers[tracer]
        for tools in list(loops):
            tools.detach_tracer(tracer)
        write_trace(path, tracer)
