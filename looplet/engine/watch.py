"""Watches: what the run queue holds for an fd that is ready.

A `Watch` is one fd's interest in one direction (the reactor's `Source` has a reader
and a writer slot) and holds the handle to run when it is ready. `wake()`
appends the watch itself to the run queue unless it is already there, so however
often readiness is reported before it runs, it runs once (the coalescing is counted,
for `statistics()`). The scheduler clears the flag just before running the handle,
so readiness reported while the handle runs queues it again. Timers and
`call_soon` put their handles on the run queue directly; only readiness goes
through a watch, because only readiness repeats.
"""

from __future__ import annotations

from collections import deque

from looplet.engine.handles import AnyHandle


class Watch:
    """One fd's interest in one direction, and the handle that readiness runs."""

    __slots__ = ("_cancelled", "_handle", "_queued", "_ready")

    def __init__(self, handle: AnyHandle, ready: deque[object]) -> None:
        #: The callback to run; replaced in place when a reader/writer is re-added.
        self._handle: AnyHandle = handle
        #: The run queue this watch appends itself to.
        self._ready: deque[object] = ready
        #: True while the watch sits in the run queue; the coalescing flag.
        self._queued: bool = False
        #: The scheduler skips cancelled entries; a watch is never cancelled, its handle is.
        self._cancelled: bool = False

    def wake(self) -> bool:
        """Queue the handle to run; return False if it was queued already (a coalesced wake)."""
        if self._queued:
            return False
        self._queued = True
        self._ready.append(self)
        return True

    def _run(self) -> None:
        self._queued = False
        handle = self._handle
        if not handle._cancelled:
            handle._run()

    def __repr__(self) -> str:
        return f"<Watch queued={self._queued} {self._handle!r}>"
