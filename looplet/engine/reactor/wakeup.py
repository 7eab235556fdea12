"""The reactor's wake-up fd: how other threads make a blocked poll return.

`ThreadWakeup` is one eventfd (a socketpair where there is none) that the reactor
registers for reading when it opens and drains itself in `dispatch`, before the
run queue is read: it is never a `Source` and never puts anything on the run queue,
because the work a wake announces was appended to the queue before the wake.
It coalesces: one write per poll, not one per `call_soon_threadsafe`. Its invariant:
no write reaches the fd number after `close()` has closed it, whatever thread
writes, with or without the GIL.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Final

# Eventfd is one fd and one 8-byte counter: cheaper than a socketpair for a wake-up
# that carries no data. Signals cannot use it (see looplet/services/signals.py).
_HAVE_EVENTFD: Final = hasattr(os, "eventfd")


class ThreadWakeup:
    """The loop's wake-up fd: other threads make a blocked poll return through it.

    `wake()` may be called from any thread; `drain()` only from the loop's thread,
    after the reactor reported the fd readable and before the run queue is read.
    """

    __slots__ = ("_closed", "_lock", "_pending", "_rfd", "_rsock", "_wfd", "_wsock")

    def __init__(self, use_eventfd: bool = _HAVE_EVENTFD) -> None:
        #: Set by the first wake() after a drain; later wakes skip the syscall (and the lock).
        self._pending: bool = False
        #: Held around each write and around close(): a writer that read the fd number
        #: before close() must finish its write before that number is closed and, maybe,
        #: given to another file by some other thread's open().
        self._lock: threading.Lock = threading.Lock()
        self._closed: bool = False
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None
        if use_eventfd:
            fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._rfd: int = fd
            self._wfd: int = fd
        else:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            self._rsock, self._wsock = rsock, wsock
            self._rfd, self._wfd = rsock.fileno(), wsock.fileno()

    def fileno(self) -> int:
        """The fd the reactor watches for readability."""
        return self._rfd

    def wake(self) -> None:
        """Make the next (or current) poll return. Thread-safe; coalesced."""
        # Unlocked fast path: a wake-up is on its way already. Reading a stale False
        # only costs the lock below.
        if self._pending:
            return
        with self._lock:
            if self._pending or self._closed:
                return
            self._pending = True
            try:
                if self._wsock is None:
                    os.eventfd_write(self._wfd, 1)
                else:
                    self._wsock.send(b"\0")
            except OSError:
                # Full: the loop is far behind and will wake anyway. asyncio ignores
                # it too.
                pass

    def drain(self) -> None:
        """Consume pending wake-ups; called by the loop thread only."""
        # Read first, then clear: the read releases the GIL, and a wake() in that gap
        # would write into what we consume while seeing _pending still set; clearing
        # after the read means any wake() from then on writes again, so none is lost.
        # The work a wake() announces was appended to the run queue before its write.
        try:
            if self._rsock is None:
                os.eventfd_read(self._rfd)
            else:
                while self._rsock.recv(4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        self._pending = False

    def close(self) -> None:
        """Close the fd(s); later wake() calls are silently ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending = True
            if self._rsock is not None and self._wsock is not None:
                self._rsock.close()
                self._wsock.close()
            else:
                os.close(self._rfd)
            self._rfd = self._wfd = -1
