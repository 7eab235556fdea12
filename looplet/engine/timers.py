"""TimerQueue: the heap of timer handles waiting for their deadline.

It holds looplet's own `TimerHandle`s (`push`), and asyncio's, which the loop makes in
debug mode (`push_other`). The invariant this module owns: a handle is in the heap
exactly when its `_scheduled` flag is True, and a cancel is counted here once, while it
is: asyncio's `TimerHandle.cancel()` reports through `loop._timer_handle_cancelled`,
looplet's reports to the queue it was pushed on, which it keeps (compiled, a native
call instead of two Python ones, on the path of every timeout not reached).

Cancelling is lazy: the handle stays in the heap and is counted; at the next tick
(`pop_due`), if cancelled handles are more than half of a heap of more than 100, the
heap is rebuilt without them, so a million cancelled timers cost no memory for long. Not
at the cancel itself: a loop that cancels 90% of 100,000 timers in one go would rebuild
the heap again and again as it crossed each half.

The heap holds `(deadline, sequence, handle)` entries, not the handles themselves:
tuples of floats and ints compare in C, where `TimerHandle.__lt__` is a Python call
per comparison (about log2(n) of them per push and per pop). The sequence number also
makes timers with the same deadline run in the order they were scheduled.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Final, Protocol, TypeAlias

from looplet.engine.handles import Cancels
from looplet.engine.handles import TimerHandle as OwnTimerHandle

#: A loop time as a caller gave it: asyncio takes any number (`call_at(5, ...)`, an int),
#: and a compiled build would turn a `float` annotation into a run-time check that
#: refuses one. Compared, never converted.
Deadline: TypeAlias = Any


class TimerHandle(Protocol):
    """The parts of a timer handle the queue uses (typeshed omits asyncio's private ones)."""

    _when: Deadline
    _scheduled: bool
    _cancelled: bool

    def __lt__(self, other: Any, /) -> bool: ...


# asyncio's thresholds (base_events._MIN_SCHEDULED_TIMER_HANDLES and
# _MIN_CANCELLED_TIMER_HANDLES_FRACTION): compaction is O(n), so it waits until at
# least half the heap is garbage, which keeps its amortised cost O(1) per cancel.
_MIN_HEAP_FOR_COMPACTION: Final = 100
_CANCELLED_FRACTION: Final = 0.5
# Bound once: compiled, a Final is a C static, where `heapq.heappush` is two lookups a call.
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop


class TimerQueue(Cancels):
    """A min-heap of timer handles ordered by deadline, with lazy cancellation."""

    __slots__ = ("_seq", "heap", "scheduled_total")

    def __init__(self) -> None:
        super().__init__()
        #: (deadline, sequence, handle) entries; the scheduler reads it only to skip an
        #: empty queue without a call.
        self.heap: list[tuple[Deadline, int, TimerHandle]] = []
        self._seq: int = 0
        #: Lifetime count, read by statistics().
        self.scheduled_total: int = 0

    def __len__(self) -> int:
        return len(self.heap) - self._cancelled_count

    def push(self, handle: OwnTimerHandle) -> None:
        """Schedule looplet's own `handle` at `handle.when()`; its cancel() reports here."""
        handle._scheduled = True
        handle._queue = self
        seq = self._seq = self._seq + 1
        _heappush(self.heap, (handle._when, seq, handle))
        self.scheduled_total += 1

    def push_other(self, handle: TimerHandle) -> None:
        """Schedule an `asyncio.TimerHandle` (debug mode's), which reports its cancel()
        through the loop's `_timer_handle_cancelled`."""
        handle._scheduled = True
        seq = self._seq = self._seq + 1
        _heappush(self.heap, (handle._when, seq, handle))
        self.scheduled_total += 1

    def cancelled(self, handle: Any) -> None:
        """Note that a scheduled handle was cancelled (asyncio's `_timer_handle_cancelled`)."""
        if handle._scheduled:
            self.count_cancel()

    def next_deadline(self) -> Deadline | None:
        """The deadline of the earliest live timer, dropping cancelled ones from the top."""
        heap = self.heap
        while heap:
            when, _, top = heap[0]
            if not top._cancelled:
                return when
            _heappop(heap)
            top._scheduled = False
            self._cancelled_count -= 1
        return None

    def pop_due(self, end_time: float, ready: deque[object]) -> None:
        """Move every live timer due before `end_time` onto the run queue, in deadline order.

        Called once a tick: first drops the cancelled handles if they are most of the heap.
        """
        if self._cancelled_count > _CANCELLED_FRACTION * len(self.heap) and len(self.heap) > _MIN_HEAP_FOR_COMPACTION:
            self._compact()
        heap = self.heap
        heappop = _heappop
        while heap:
            when, _, top = heap[0]
            # Due means "at or before end_time": a virtual clock jumps exactly onto a
            # deadline and has no resolution to add (asyncio's strict < would spin).
            # A cancelled head leaves without its deadline being compared, as in asyncio:
            # a deadline that cannot be compared (call_at("x")) stops hurting once cancelled.
            if not top._cancelled and when > end_time:
                break
            heappop(heap)
            top._scheduled = False
            if top._cancelled:
                self._cancelled_count -= 1
            else:
                ready.append(top)

    def _compact(self) -> None:
        live = []
        for entry in self.heap:
            handle = entry[2]
            if handle._cancelled:
                handle._scheduled = False
            else:
                live.append(entry)
        heapq.heapify(live)
        self.heap = live
        self._cancelled_count = 0

    def clear(self) -> None:
        """Drop every timer without running it (the loop is closing), as asyncio does."""
        for entry in self.heap:
            entry[2]._scheduled = False
        self.heap.clear()
        self._cancelled_count = 0
