"""Unix signal handlers for the loop (`add_signal_handler` / `remove_signal_handler`).

How a signal reaches the run queue: CPython's C-level handler writes the signal
number into the fd given to `signal.set_wakeup_fd`; the reactor sees that fd readable
and `_dispatch` queues the signal's handler once per byte read: once per delivery, as
asyncio does. The invariant owned here: while any handler is installed, the process's
wakeup fd is this loop's socketpair, and when the last one is removed (or the loop
closes) it is reset to -1.

Why not the loop's eventfd: CPython writes one byte per signal, and an eventfd accepts
only 8-byte writes (EINVAL), so signals get a socketpair of their own, created only
when the first handler is added. As with asyncio, only the main thread can install
handlers. Not a `Watch` per signal: a watch runs once however often it is woken
before it runs, which would merge deliveries read in one tick into one call. Only the
kernel coalesces (a standard signal sent again while still pending is one delivery);
real-time signals queue, and each is a call.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import warnings
from asyncio import Handle, iscoroutine
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looplet._asyncio import iscoroutinefunction
from looplet.engine.reactor import READ

if TYPE_CHECKING:
    from looplet.engine.io import Io


def _noop(signum: int, frame: object) -> None:
    """The Python-level handler: the work is done by the wakeup fd write in C."""


def check_signal(sig: object) -> None:
    """Raise TypeError/ValueError for a signal number asyncio would reject."""
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class SignalHandlers:
    """The signal handlers of one loop, and the socketpair their numbers arrive on."""

    def __init__(self, io: Io) -> None:
        self._io = io
        self._loop = io.loop
        #: Signal number -> the handle of its handler.
        self._handlers: dict[int, Handle] = {}
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None

    def __len__(self) -> int:
        return len(self._handlers)

    def add(self, sig: int, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        """Install `callback(*args)` for `sig` (asyncio's add_signal_handler)."""
        if iscoroutine(callback) or iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        check_signal(sig)
        if self._loop.is_closed():
            raise RuntimeError("Event loop is closed")
        self._open()
        assert self._wsock is not None
        try:
            # Raises ValueError off the main thread: checked before anything changes.
            signal.set_wakeup_fd(self._wsock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        handle = Handle(callback, args, self._loop, None)
        old = self._handlers.get(sig)
        if old is not None:
            old.cancel()
        self._handlers[sig] = handle
        try:
            signal.signal(sig, _noop)
            # SA_RESTART: the loop does not need EINTR to notice, the fd tells it.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._handlers[sig]
            if not self._handlers:
                self._reset_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def remove(self, sig: int) -> bool:
        """Remove the handler for `sig`; return True if there was one."""
        check_signal(sig)
        handle = self._handlers.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        if not self._handlers:
            self._reset_wakeup_fd()
        return True

    def _open(self) -> None:
        if self._rsock is not None:
            return
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self._rsock, self._wsock = rsock, wsock
        self._io.add(rsock.fileno(), READ, self._dispatch)

    def _dispatch(self) -> None:
        assert self._rsock is not None
        while True:
            try:
                data = self._rsock.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            schedule = self._io.schedule
            for signum in data:
                handle = self._handlers.get(signum)
                if handle is None:
                    continue  # removed after it was delivered
                # A handler removed or replaced before it runs is cancelled: tick() skips it.
                schedule(handle)

    def _reset_wakeup_fd(self) -> None:
        try:
            previous = signal.set_wakeup_fd(-1)
            if self._wsock is not None and previous not in (-1, self._wsock.fileno()):
                # Someone installed theirs after us: it is theirs to reset, not ours.
                signal.set_wakeup_fd(previous)
        except (ValueError, OSError):
            pass  # not the main thread: nothing of ours can be installed there

    def close(self) -> None:
        """Remove every handler and close the socketpair (the loop is closing)."""
        if sys.is_finalizing():
            if self._handlers:
                warnings.warn(
                    f"Closing the loop {self._loop!r} on interpreter shutdown stage, skipping signal handlers removal",
                    ResourceWarning,
                    source=self._loop,
                    stacklevel=2,
                )
            self._handlers.clear()
        else:
            for sig in list(self._handlers):
                self.remove(sig)
        if self._rsock is not None and self._wsock is not None:
            self._io.forget(self._rsock.fileno())
            self._rsock.close()
            self._wsock.close()
            self._rsock = self._wsock = None
