"""TimerQueue: the timer handles waiting for their deadline, earliest first.

It holds looplet's own `TimerHandle`s (`push`), and asyncio's, which the loop makes in
debug mode (`push_other`). The invariant this module owns: a handle is in the queue
exactly when its `_scheduled` flag is True, handles leave it in `(deadline, sequence)`
order (timers with one deadline run in the order they were scheduled), and a cancel is
counted here once, while the handle is in it: asyncio's `TimerHandle.cancel()` reports
through `loop._timer_handle_cancelled`, looplet's reports to the queue it was pushed on,
which it keeps (compiled, a native call instead of two Python ones, on the path of
every timeout not reached).

Cancelling is lazy: the handle stays in the queue and is counted; at the next tick
(`pop_due`), if cancelled handles are more than half of a queue of more than 100, it is
rebuilt without them, so a million cancelled timers cost no memory for long. Not at the
cancel itself: a loop that cancels 90% of 100,000 timers in one go would rebuild the
queue again and again as it crossed each half.

Two heaps, because the two builds are fast at different things:

- `entries`: `(deadline, sequence, handle)` tuples under `heapq`. Tuples of floats and
  ints compare in C, where `TimerHandle.__lt__` would be a Python call per comparison
  (about log2(n) of them per push and per pop). Every timer goes here in the pure
  build; in the compiled build, asyncio's handles and deadlines that are not plain
  numbers (asyncio takes anything comparable).
- `handles` (the compiled build's, `native=True`): looplet's own handles themselves,
  ordered by the `(deadline, sequence)` pair each keeps as a C double and a C integer,
  sifted by the functions below. Compiled, a comparison is two machine instructions
  where a tuple's is about a hundred, and no tuple is made, freed and traversed by the
  collector per timer. Interpreted, the same sift is Python code, slower than `heapq`.

`pop_due` and `next_deadline` take the earlier head of the two.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any, Final, Protocol, TypeAlias

from looplet.engine.handles import COMPILED, Cancels
from looplet.engine.handles import TimerHandle as OwnTimerHandle

#: A loop time as a caller gave it: asyncio takes any number (`call_at(5, ...)`, an int),
#: and a compiled build would turn a `float` annotation into a run-time check that
#: refuses one. Compared, never converted (but see `_EXACT`).
Deadline: TypeAlias = Any


class TimerHandle(Protocol):
    """The parts of a timer handle the queue uses (typeshed omits asyncio's private ones)."""

    _when: Deadline
    _scheduled: bool
    _cancelled: bool

    def __lt__(self, other: Any, /) -> bool: ...


# asyncio's thresholds (base_events._MIN_SCHEDULED_TIMER_HANDLES and
# _MIN_CANCELLED_TIMER_HANDLES_FRACTION): compaction is O(n), so it waits until at
# least half the queue is garbage, which keeps its amortised cost O(1) per cancel.
_MIN_HEAP_FOR_COMPACTION: Final = 100
_CANCELLED_FRACTION: Final = 0.5
# Bound once: compiled, a Final is a C static, where `heapq.heappush` is two lookups a call.
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
#: An int deadline is kept as a double only where the double is the int exactly, so
#: that two int deadlines order as the ints do.
_EXACT: Final = 2**53


def _before(a: OwnTimerHandle, b: OwnTimerHandle) -> bool:
    return a._deadline < b._deadline or (a._deadline == b._deadline and a._seq < b._seq)


# heapq's _siftdown and _siftup, over `handles` with `_before` as the order.


def _sift_down(heap: list[OwnTimerHandle], start: int, pos: int) -> None:
    item = heap[pos]
    while pos > start:
        parent_pos = (pos - 1) >> 1
        parent = heap[parent_pos]
        if not _before(item, parent):
            break
        heap[pos] = parent
        pos = parent_pos
    heap[pos] = item


def _sift_up(heap: list[OwnTimerHandle], pos: int) -> None:
    end = len(heap)
    start = pos
    item = heap[pos]
    child = 2 * pos + 1
    while child < end:
        right = child + 1
        if right < end and not _before(heap[child], heap[right]):
            child = right
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    heap[pos] = item
    _sift_down(heap, start, pos)


def _pop_handle(heap: list[OwnTimerHandle]) -> OwnTimerHandle:
    last = heap.pop()
    if not heap:
        return last
    top = heap[0]
    heap[0] = last
    _sift_up(heap, 0)
    return top


def _own_first(handle: OwnTimerHandle, entry: tuple[Deadline, int, TimerHandle]) -> bool:
    # Whether `handle` leaves before the entry. (A deadline that cannot be compared
    # with a number raises TypeError here, as it would in heapq.)
    when = entry[0]
    return bool(when > handle._deadline or (when == handle._deadline and entry[1] > handle._seq))


class TimerQueue(Cancels):
    """Timer handles ordered by `(deadline, sequence)`, with lazy cancellation.

    Args:
        native: keep looplet's own handles in the native heap (see the module's
            docstring); the default is whether this build is compiled.
    """

    __slots__ = ("_seq", "entries", "handles", "native", "scheduled_total")

    def __init__(self, native: bool = COMPILED) -> None:
        super().__init__()
        #: The native heap of looplet's own handles (empty unless `native`).
        self.handles: list[OwnTimerHandle] = []
        #: The heap of (deadline, sequence, handle) entries.
        self.entries: list[tuple[Deadline, int, TimerHandle]] = []
        self.native: bool = native
        self._seq: int = 0
        #: Lifetime count, read by statistics().
        self.scheduled_total: int = 0

    def __len__(self) -> int:
        return len(self.handles) + len(self.entries) - self._cancelled_count

    def stored(self) -> int:
        """Handles held, cancelled ones included."""
        return len(self.handles) + len(self.entries)

    def push(self, handle: OwnTimerHandle) -> None:
        """Schedule looplet's own `handle` at `handle.when()`; its cancel() reports here."""
        handle._scheduled = True
        handle._queue = self
        seq = self._seq = self._seq + 1
        self.scheduled_total += 1
        when = handle._when
        if self.native:
            kind = type(when)
            if kind is float or (kind is int and -_EXACT <= when <= _EXACT):
                handle._deadline = float(when)
                handle._seq = seq
                heap = self.handles
                heap.append(handle)
                _sift_down(heap, 0, len(heap) - 1)
                return
        _heappush(self.entries, (when, seq, handle))

    def push_other(self, handle: TimerHandle) -> None:
        """Schedule an `asyncio.TimerHandle` (debug mode's), which reports its cancel()
        through the loop's `_timer_handle_cancelled`."""
        handle._scheduled = True
        seq = self._seq = self._seq + 1
        self.scheduled_total += 1
        _heappush(self.entries, (handle._when, seq, handle))

    def cancelled(self, handle: Any) -> None:
        """Note that a scheduled handle was cancelled (asyncio's `_timer_handle_cancelled`)."""
        if handle._scheduled:
            self.count_cancel()

    def next_deadline(self) -> Deadline | None:
        """The deadline of the earliest live timer, dropping cancelled ones from the top."""
        handles = self.handles
        while handles and handles[0]._cancelled:
            _pop_handle(handles)._scheduled = False
            self._cancelled_count -= 1
        entries = self.entries
        while entries and entries[0][2]._cancelled:
            _heappop(entries)[2]._scheduled = False
            self._cancelled_count -= 1
        if handles:
            if entries and not _own_first(handles[0], entries[0]):
                return entries[0][0]
            return handles[0]._when
        if entries:
            return entries[0][0]
        return None

    def pop_due(self, end_time: float, ready: deque[object]) -> None:
        """Move every live timer due before `end_time` onto the run queue, in order.

        Called once a tick: first drops the cancelled handles if they are most of the queue.
        """
        stored = self.stored()
        if self._cancelled_count > _CANCELLED_FRACTION * stored and stored > _MIN_HEAP_FOR_COMPACTION:
            self._compact()
        # Due means "at or before end_time": a virtual clock jumps exactly onto a
        # deadline and has no resolution to add (asyncio's strict < would spin).
        # A cancelled head leaves without its deadline being compared, as in asyncio:
        # a deadline that cannot be compared (call_at("x")) stops hurting once cancelled.
        handles = self.handles
        entries = self.entries
        if not entries:
            # Only looplet's own handles, natively ordered: the compiled build's case.
            while handles:
                own = handles[0]
                if not own._cancelled and own._deadline > end_time:
                    break
                _pop_handle(handles)
                # _leave, with the handle's fields read natively.
                own._scheduled = False
                if own._cancelled:
                    self._cancelled_count -= 1
                else:
                    ready.append(own)
            return
        if not handles:
            # Only entries: the pure build's case, and debug mode's.
            while entries:
                when, _, top = entries[0]
                if not top._cancelled and when > end_time:
                    break
                _heappop(entries)
                # _leave, inlined: interpreted, a call per timer would cost a frame.
                top._scheduled = False
                if top._cancelled:
                    self._cancelled_count -= 1
                else:
                    ready.append(top)
            return
        # Both: debug mode was turned on or off with timers pending, or a deadline was
        # not a plain number. Whichever head is earlier leaves first.
        while handles or entries:
            first: Any
            if handles and (not entries or _own_first(handles[0], entries[0])):
                first = handles[0]
                if not first._cancelled and first._deadline > end_time:
                    break
                _pop_handle(handles)
            else:
                when, _, first = entries[0]
                if not first._cancelled and when > end_time:
                    break
                _heappop(entries)
            self._leave(first, ready)

    def _leave(self, handle: Any, ready: deque[object]) -> None:
        handle._scheduled = False
        if handle._cancelled:
            self._cancelled_count -= 1
        else:
            ready.append(handle)

    def _compact(self) -> None:
        handles: list[OwnTimerHandle] = []
        for own in self.handles:
            if own._cancelled:
                own._scheduled = False
            else:
                handles.append(own)
        # heapq.heapify's order of sifts: bottom-up from the last parent.
        for pos in range(len(handles) // 2 - 1, -1, -1):
            _sift_up(handles, pos)
        self.handles = handles
        entries = []
        for entry in self.entries:
            handle = entry[2]
            if handle._cancelled:
                handle._scheduled = False
            else:
                entries.append(entry)
        heapq.heapify(entries)
        self.entries = entries
        self._cancelled_count = 0

    def clear(self) -> None:
        """Drop every timer without running it (the loop is closing), as asyncio does."""
        for own in self.handles:
            own._scheduled = False
        for entry in self.entries:
            entry[2]._scheduled = False
        self.handles.clear()
        self.entries.clear()
        self._cancelled_count = 0
