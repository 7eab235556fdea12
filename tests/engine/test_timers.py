"""TimerQueue: deadline order, lazy cancellation, compaction (no loop, no clock)."""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections import deque
from typing import Any

import pytest

from looplet.engine.handles import TimerHandle as OwnTimerHandle
from looplet.engine.timers import TimerQueue


class FakeLoop:
    def __init__(self, native: bool) -> None:
        self.timers = TimerQueue(native=native)

    def get_debug(self) -> bool:
        return False

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.timers.cancelled(handle)


# The queue holds looplet's own handles (which report a cancel to it directly) and,
# in debug mode, asyncio's (which report through the loop); looplet's go to a native
# heap in the compiled build and to heapq's entries in the pure one, and a queue of
# either kind can be made in either build: every test runs on each combination, and
# on the two kinds of handle in one queue.
@pytest.fixture(params=["own", "asyncio", "mixed"], ids=["own_handle", "asyncio_handle", "mixed_handles"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[True, False], ids=["native_heap", "entries_heap"])
def fake(request: pytest.FixtureRequest) -> FakeLoop:
    return FakeLoop(native=request.param)


_made = 0


def make(loop: FakeLoop, kind: str, when: float, callback: Any, args: tuple[Any, ...]) -> Any:
    global _made
    _made += 1
    if kind == "mixed":
        kind = "own" if _made % 3 else "asyncio"
    if kind == "own":
        own = OwnTimerHandle(when, callback, args, loop, contextvars.copy_context())
        loop.timers.push(own)
        return own
    theirs = asyncio.TimerHandle(when, callback, args, loop, None)  # type: ignore[arg-type]
    loop.timers.push_other(theirs)
    return theirs


def timer(loop: FakeLoop, when: float, out: list[float], kind: str) -> Any:
    return make(loop, kind, when, out.append, (when,))


def run(ready: deque[object]) -> None:
    while ready:
        h = ready.popleft()
        h._run()  # type: ignore[attr-defined]


def test_due_timers_run_in_deadline_order(kind: str, fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    for when in (3.0, 1.0, 2.0, 5.0):
        timer(loop, when, out, kind)
    ready: deque[object] = deque()
    loop.timers.pop_due(3.0, ready)
    run(ready)
    assert out == [1.0, 2.0, 3.0]
    assert loop.timers.next_deadline() == 5.0
    assert len(loop.timers) == 1


def test_equal_deadlines_run_in_scheduling_order(kind: str, fake: FakeLoop) -> None:
    # asyncio leaves this order undefined (its heap compares deadlines only);
    # looplet's heap entries carry a sequence number, so it is FIFO.
    loop = fake
    out: list[int] = []
    for n in range(50):
        make(loop, kind, 1.0, out.append, (n,))
    ready: deque[object] = deque()
    loop.timers.pop_due(1.0, ready)
    run(ready)
    assert out == list(range(50))


def test_cancelled_timers_never_run_and_are_skipped_for_the_deadline(kind: str, fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    first = timer(loop, 1.0, out, kind)
    timer(loop, 2.0, out, kind)
    first.cancel()
    assert loop.timers.next_deadline() == 2.0
    assert not first._scheduled
    ready: deque[object] = deque()
    loop.timers.pop_due(10.0, ready)
    run(ready)
    assert out == [2.0]


def test_mass_cancellation_compacts_the_heap(kind: str, fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    handles = [timer(loop, float(i), out, kind) for i in range(10_000)]
    for h in handles[:9_000]:
        h.cancel()
    assert len(loop.timers) == 1_000
    assert loop.timers.cancelled_total == 9_000
    # The next tick rebuilds the heap without them: garbage stays bounded.
    ready: deque[object] = deque()
    loop.timers.pop_due(0.0, ready)
    assert loop.timers.stored() == 1_000 and not ready
    assert all(not h._scheduled for h in handles[:9_000])
    loop.timers.pop_due(1e9, ready)
    run(ready)
    assert out == [float(i) for i in range(9_000, 10_000)]
    assert loop.timers.stored() == 0


def test_cancel_after_fire_is_not_counted(kind: str, fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    h = timer(loop, 1.0, out, kind)
    ready: deque[object] = deque()
    loop.timers.pop_due(1.0, ready)
    h.cancel()
    assert loop.timers._cancelled_count == 0


def test_clear_drops_everything(kind: str, fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    hs = [timer(loop, float(i), out, kind) for i in range(5)]
    loop.timers.clear()
    assert loop.timers.next_deadline() is None
    assert not any(h._scheduled for h in hs)


def test_own_handles_report_a_cancel_once_and_only_while_scheduled(fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    h = timer(loop, 1.0, out, "own")
    h.cancel()
    h.cancel()
    assert loop.timers.cancelled_total == 1 and len(loop.timers) == 0
    unscheduled = OwnTimerHandle(2.0, out.append, (2.0,), loop, contextvars.copy_context())
    unscheduled.cancel()
    assert unscheduled.cancelled() and loop.timers.cancelled_total == 1


def test_an_own_handle_cancelled_in_debug_mode_keeps_its_repr(fake: FakeLoop) -> None:
    loop = fake
    out: list[float] = []
    quiet = timer(loop, 1.0, out, "own")
    kept = timer(loop, 2.0, out, "own")
    quiet.cancel()
    loop.timers.debug = True
    kept.cancel()
    # asyncio's Handle.cancel keeps repr(self) in debug mode, so that a late report
    # still names the callback it dropped.
    assert "append" in repr(kept) and "cancelled" in repr(kept)
    assert "append" not in repr(quiet) and "cancelled" in repr(quiet)


def test_deadlines_that_are_not_floats_order_with_the_rest(kind: str, fake: FakeLoop) -> None:
    # asyncio takes any comparable deadline: ints (exact or past a double's precision)
    # and other numbers order with floats, whichever heap each lands in.
    loop = fake
    out: list[Any] = []
    whens: list[Any] = [3, 2.5, 2**60 + 1, 2**60, -1, 0.0, 1.5, True, 2**60 + 3]
    for when in whens:
        make(loop, kind, when, out.append, (when,))
    assert loop.timers.next_deadline() == -1
    ready: deque[object] = deque()
    loop.timers.pop_due(2.0**61, ready)
    run(ready)
    assert out == sorted(whens)


def test_many_timers_leave_in_order_through_pushes_pops_and_cancels(kind: str, fake: FakeLoop) -> None:
    # A fixed pseudo-random mix, checked against sorting: each pop_due runs exactly the
    # live timers due by then, in (deadline, scheduling) order. In the native heap the
    # sift code is looplet's own.
    loop = fake
    rng = random.Random(7)
    out: list[tuple[float, int]] = []
    live: dict[int, tuple[float, int]] = {}
    handles: dict[int, Any] = {}

    def pop_due(end: float) -> None:
        due = sorted(v for v in live.values() if v[0] <= end)
        out.clear()
        ready: deque[object] = deque()
        loop.timers.pop_due(end, ready)
        run(ready)
        assert out == due
        for _, n in due:
            del live[n]

    for n in range(3_000):
        when = float(rng.randrange(500))
        handles[n] = make(loop, kind, when, out.append, ((when, n),))
        live[n] = (when, n)
        if rng.random() < 0.4:
            victim = rng.choice(list(live))
            handles[victim].cancel()
            del live[victim]
        if n % 700 == 699:
            pop_due(float(n // 10))
    pop_due(1e9)
    assert not live and len(loop.timers) == 0 and loop.timers.stored() == 0
