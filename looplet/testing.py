"""Test support: a virtual clock, and helpers to step a loop by hand.

`VirtualClock` is the injectable clock of `EventLoop(clock=...)`: time stands still
while callbacks run, and when the loop has nothing ready and no fd is ready, the
clock jumps straight to the next timer instead of letting the reactor sleep (trio's
autojump MockClock, tokio's paused time). So `await asyncio.sleep(3600)` returns at
once while `loop.time()` advances by exactly 3600, and timeouts fire in deadline
order. It jumps only when nothing outside the loop can deliver first: while an
executor job or helper thread runs, a child is waited for, or any fd but the loop's
wake-up fd has a reader or writer, the scheduler waits for real up to the next timer
and moves the clock by the real time that passed, never past that timer (see
`Scheduler.tick`). The invariant owned here: virtual time only moves forward, and only
by the scheduler's `advance_to` (or a test's explicit `advance`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from looplet.engine.clock import Clock

T = TypeVar("T")


class VirtualClock(Clock):
    """A clock that jumps over idle time.

    Args:
        start: the initial `time()`; any float (asyncio only ever compares times).
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now: float = start
        # Virtual time has no granularity: a timer is due exactly at its deadline.
        self.resolution = 0.0
        self.virtual = True

    def time(self) -> float:
        """Return the current time, a float in seconds, on the virtual clock."""
        return self._now

    def advance_to(self, deadline: float) -> None:
        """Jump to `deadline` (never backwards)."""
        if deadline > self._now:
            self._now = deadline

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, as a test's explicit step.

        Raises:
            ValueError: `seconds` is negative.
        """
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (advance({seconds!r}))")
        self._now += seconds


def run(
    main: Coroutine[Any, Any, T],
    *,
    clock: Clock | None = None,
    debug: bool | None = None,
    shuffle_seed: int | None = None,
) -> T:
    """Run `main` on a new looplet loop driven by `clock` (a fresh VirtualClock by default).

    With the virtual clock and no I/O from outside the program, a run is deterministic:
    the same ready work in the same order, run after run. `shuffle_seed` shuffles each
    tick's ready work by that seed instead of keeping FIFO order (see `EventLoop.set_shuffle`).
    """
    import asyncio

    from looplet.loop import EventLoop

    the_clock = clock if clock is not None else VirtualClock()

    def factory() -> asyncio.AbstractEventLoop:
        return EventLoop(clock=the_clock, shuffle_seed=shuffle_seed)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
