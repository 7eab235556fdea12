"""Observer and Tracer: what the scheduler's observed path records about each step.

The scheduler runs its fast path unless a tool is on (debug mode, an observer, a
shuffle); then each step goes through `Scheduler._run_observed`, which times it and
hands it here. An `Observer` keeps the timed statistics (time in callbacks, the
slowest callbacks by name, loop lag as a histogram) and forwards to a `Tracer`, which
keeps trace events in Chrome's trace-event format (what Perfetto and chrome://tracing
open). The invariant owned here: observing never changes what runs or in which
order; it only reads the handle it is given, after it ran.

A tracer on a virtual clock stamps events with a logical time (one microsecond per
event) and records the loop time in each event's arguments, so the same program
gives the same file run after run; on a real clock it records real time.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import time
import weakref
from asyncio import Task
from typing import Any, Final

#: Upper bounds (seconds) of the loop-lag histogram's buckets; one more bucket
#: counts what is over the last.
LAG_BOUNDS: Final = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0)
#: How many of the slowest callbacks statistics() names.
SLOWEST_KEPT: Final = 10
#: The process id of a trace's loop: a constant, so traces of one program compare
#: equal. (A `LOOPLET_TRACE` file numbers its loops 1, 2, ... instead.)
TRACE_PID: Final = 1
#: Track of the reactor (polls, wakes) and of callbacks that are not task steps.
LOOP_TRACK: Final = 0


def callback_name(handle: Any) -> str:
    """A readable name for what `handle` runs: the task and its coroutine, or the callable."""
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, Task):
        return f"{owner.get_name()} {_coro_name(owner)}"
    while isinstance(callback, functools.partial):
        callback = callback.func
    if callback is None:
        return "<cancelled>"
    return getattr(callback, "__qualname__", None) or type(callback).__qualname__


def _coro_name(task: Task[Any]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or type(coro).__qualname__


class Observer:
    """Timed statistics of the steps the loop runs, and the tracer they go to."""

    __slots__ = ("_seq", "busy", "lag_counts", "lag_max", "lag_sum", "slowest", "steps", "timing", "tracer")

    def __init__(self, timing: bool, tracer: Tracer | None = None) -> None:
        #: Whether the statistics below are kept (a tracer alone does not need them).
        self.timing: bool = timing
        self.tracer: Tracer | None = tracer
        #: Steps timed and the seconds they took.
        self.steps: int = 0
        self.busy: float = 0.0
        #: A min-heap of (seconds, order, name): the slowest steps seen.
        self.slowest: list[tuple[float, int, str]] = []
        self._seq: int = 0
        #: Loop lag of timers: counts per LAG_BOUNDS bucket (+1 overflow), max, sum.
        self.lag_counts: list[int] = [0] * (len(LAG_BOUNDS) + 1)
        self.lag_max: float = 0.0
        self.lag_sum: float = 0.0

    def step(self, handle: Any, start: float, duration: float, lag: float | None) -> None:
        """`handle` ran for `duration` seconds from `start`; a timer ran `lag` late."""
        if self.timing:
            self.steps += 1
            self.busy += duration
            slowest = self.slowest
            if len(slowest) < SLOWEST_KEPT or duration > slowest[0][0]:
                # Named only when it makes the list: naming is the costly part.
                self._seq += 1
                entry = (duration, self._seq, callback_name(handle))
                if len(slowest) < SLOWEST_KEPT:
                    heapq.heappush(slowest, entry)
                else:
                    heapq.heapreplace(slowest, entry)
            if lag is not None:
                lag = max(lag, 0.0)
                self.lag_counts[bisect.bisect_left(LAG_BOUNDS, lag)] += 1
                self.lag_sum += lag
                if lag > self.lag_max:
                    self.lag_max = lag
        if self.tracer is not None:
            self.tracer.step(handle, start, duration, lag)

    def polled(self, events: list[tuple[int, int]] | None, start: float, reactor: Any) -> None:
        """The tick's poll returned `events`; it started blocking at `start` (0.0: it did not block)."""
        if self.tracer is not None:
            self.tracer.polled(events, start, reactor)


class Tracer:
    """Trace events of one or more loops, in Chrome's trace-event format."""

    __slots__ = ("_logical", "_next_track", "_origin", "_seq", "_tracks", "events", "loop_time", "pid")

    def __init__(self, loop_time: Any, logical: bool) -> None:
        #: The loop's time(), recorded in each event's arguments.
        self.loop_time: Any = loop_time
        #: Logical stamps (virtual clock) instead of real ones.
        self._logical: bool = logical
        self._origin: float = time.perf_counter()
        self._seq: int = 0
        #: Task -> its track (a trace "thread"), numbered in order of first step. Weak,
        #: so a finished task does not live on; numbered by a counter, not by the size
        #: of this table, which shrinks when one is collected: a number is never reused.
        self._tracks: weakref.WeakKeyDictionary[Task[Any], int] = weakref.WeakKeyDictionary()
        self._next_track: int = LOOP_TRACK + 1
        #: The trace-event process of this tracer's events: the loop's track group.
        self.pid: int = TRACE_PID
        #: Events as flat tuples, (phase, name, category, ts, dur, track, arg1, arg2):
        #: a fifth of the memory of the JSON objects, which document() builds at the end.
        self.events: list[tuple[Any, ...]] = [
            ("M", "process_name", "looplet", 0.0, 0.0, LOOP_TRACK, None, None),
            ("M", "thread_name", "loop", 0.0, 0.0, LOOP_TRACK, None, None),
        ]

    def name_process(self, name: str) -> None:
        """Call this tracer's process track `name` in trace viewers (default: "looplet")."""
        self.events[0] = ("M", "process_name", name, 0.0, 0.0, LOOP_TRACK, None, None)

    def bind(self, loop_time: Any, logical: bool) -> None:
        """Record `loop_time()` from now on, with logical stamps if `logical` (a virtual clock)."""
        self.loop_time = loop_time
        self._logical = logical

    def _stamp(self, start: float, duration: float) -> tuple[float, float]:
        if self._logical:
            self._seq += 1
            return float(self._seq), 1.0 if duration else 0.0
        return (start - self._origin) * 1e6, duration * 1e6

    def _track(self, task: Task[Any]) -> int:
        track = self._tracks.get(task)
        if track is None:
            track = self._tracks[task] = self._next_track
            self._next_track += 1
            self.events.append(("M", "thread_name", f"task {track}: {_coro_name(task)}", 0.0, 0.0, track, None, None))
        return track

    def polled(self, events: list[tuple[int, int]] | None, start: float, reactor: Any) -> None:
        """A poll (blocking from `start`, or not if 0.0) and the wakes it caused."""
        now = time.perf_counter()
        ts, dur = self._stamp(start or now, now - start if start else 0.0)
        n = len(events) if events else 0
        record = self.events.append
        record(("X", "poll", "reactor", ts, dur, LOOP_TRACK, self.loop_time(), n))
        for fd, mask in events or ():
            ts, _ = self._stamp(now, 0.0)
            record(("i", fd, "wake", ts, 0.0, LOOP_TRACK, mask & reactor.read_bits, mask & reactor.write_bits))

    def step(self, handle: Any, start: float, duration: float, lag: float | None) -> None:
        """One callback or task step, on its task's track or the loop's."""
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, Task):
            track = self._track(owner)
            name, cat = _coro_name(owner), "task"
        else:
            track, name, cat = LOOP_TRACK, callback_name(handle), "callback"
        ts, dur = self._stamp(start, duration)
        self.events.append(("X", name, cat, ts, dur, track, self.loop_time(), lag))

    @property
    def clock(self) -> str:
        """What the stamps count: logical steps (a virtual clock) or real microseconds."""
        return "logical (virtual clock)" if self._logical else "real (perf_counter)"

    def trace_events(self) -> list[dict[str, Any]]:
        """The events, as trace-event JSON objects."""
        pid = self.pid
        return [_event(e, pid) for e in self.events]

    def document(self) -> dict[str, Any]:
        """The whole trace, as the JSON object trace viewers load."""
        other = {"producer": "looplet", "clock": self.clock}
        return {"traceEvents": self.trace_events(), "displayTimeUnit": "ms", "otherData": other}


def _event(e: tuple[Any, ...], pid: int) -> dict[str, Any]:
    # One recorded tuple as a trace-event JSON object (see Tracer.events).
    phase, name, cat, ts, dur, track, a1, a2 = e
    if phase == "M":
        return {"name": name, "ph": "M", "pid": pid, "tid": track, "args": {"name": cat}}
    if phase == "i":
        args = {"read": bool(a1), "write": bool(a2)}
        return {
            "name": f"wake fd {name}",
            "cat": cat,
            "ph": "i",
            "s": "t",
            "ts": ts,
            "pid": pid,
            "tid": track,
            "args": args,
        }
    args = {"loop_time": a1}
    if cat == "reactor":
        args["events"] = a2
    elif a2 is not None:
        args["lag"] = a2
    return {"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": dur, "pid": pid, "tid": track, "args": args}
