"""TimerQueue: deadline order, lazy cancellation, compaction (no loop, no clock)."""

from __future__ import annotations

import asyncio
from collections import deque

from looplet.engine.timers import TimerQueue


class FakeLoop:
    def __init__(self) -> None:
        self.timers = TimerQueue()

    def get_debug(self) -> bool:
        return False

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.timers.cancelled(handle)


def timer(loop: FakeLoop, when: float, out: list[float]) -> asyncio.TimerHandle:
    h = asyncio.TimerHandle(when, out.append, (when,), loop, None)  # type: ignore[arg-type]
    loop.timers.push(h)
    return h


def run(ready: deque[object]) -> None:
    while ready:
        h = ready.popleft()
        h._run()  # type: ignore[attr-defined]


def test_due_timers_run_in_deadline_order() -> None:
    loop = FakeLoop()
    out: list[float] = []
    for when in (3.0, 1.0, 2.0, 5.0):
        timer(loop, when, out)
    ready: deque[object] = deque()
    loop.timers.pop_due(3.0, ready)
    run(ready)
    assert out == [1.0, 2.0, 3.0]
    assert loop.timers.next_deadline() == 5.0
    assert len(loop.timers) == 1


def test_equal_deadlines_run_in_scheduling_order() -> None:
    # asyncio leaves this order undefined (its heap compares deadlines only);
    # looplet's heap entries carry a sequence number, so it is FIFO.
    loop = FakeLoop()
    out: list[int] = []
    for n in range(50):
        h = asyncio.TimerHandle(1.0, out.append, (n,), loop, None)  # type: ignore[arg-type]
        loop.timers.push(h)
    ready: deque[object] = deque()
    loop.timers.pop_due(1.0, ready)
    run(ready)
    assert out == list(range(50))


def test_cancelled_timers_never_run_and_are_skipped_for_the_deadline() -> None:
    loop = FakeLoop()
    out: list[float] = []
    first = timer(loop, 1.0, out)
    timer(loop, 2.0, out)
    first.cancel()
    assert loop.timers.next_deadline() == 2.0
    assert not first._scheduled
    ready: deque[object] = deque()
    loop.timers.pop_due(10.0, ready)
    run(ready)
    assert out == [2.0]


def test_mass_cancellation_compacts_the_heap() -> None:
    loop = FakeLoop()
    out: list[float] = []
    handles = [timer(loop, float(i), out) for i in range(10_000)]
    for h in handles[:9_000]:
        h.cancel()
    assert len(loop.timers) == 1_000
    assert loop.timers.cancelled_total == 9_000
    # The next tick rebuilds the heap without them: garbage stays bounded.
    ready: deque[object] = deque()
    loop.timers.pop_due(0.0, ready)
    assert len(loop.timers.heap) == 1_000 and not ready
    assert all(not h._scheduled for h in handles[:9_000])
    loop.timers.pop_due(1e9, ready)
    run(ready)
    assert out == [float(i) for i in range(9_000, 10_000)]
    assert len(loop.timers.heap) == 0


def test_cancel_after_fire_is_not_counted() -> None:
    loop = FakeLoop()
    out: list[float] = []
    h = timer(loop, 1.0, out)
    ready: deque[object] = deque()
    loop.timers.pop_due(1.0, ready)
    h.cancel()
    assert loop.timers._cancelled_count == 0


def test_clear_drops_everything() -> None:
    loop = FakeLoop()
    out: list[float] = []
    hs = [timer(loop, float(i), out) for i in range(5)]
    loop.timers.clear()
    assert loop.timers.next_deadline() is None
    assert not any(h._scheduled for h in hs)
