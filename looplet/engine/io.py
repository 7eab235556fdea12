"""The engine's face to the layers above it: `Io`, and `IoDriver`, the loop's one.

Services, transports and endpoints never touch the loop's private state: each gets
an `Io`, the handful of operations they need of the engine (watch an fd, stop
watching it, forget a closing fd, queue a handle, claim an fd for a transport, say
what work is in flight outside the loop), and
reaches asyncio's public API through `Io.loop`. The loop builds one `IoDriver` over
its scheduler and hands it down; a simulated engine can hand down another.

Reads go through one buffer per loop, `Io.read_buffer`: a transport or `sock_*` call
reads into it and copies out the bytes that arrived before anything else runs. A
`recv(256 KiB)` instead allocates 256 KiB per read, above malloc's mmap threshold,
so every message would map, fault in and unmap fresh pages, whatever its size.

The invariants owned here: a registration is a handle of the loop (looplet's, or asyncio's in debug mode),
queued by the reactor when its fd is ready; a registration replaced or removed is
cancelled, so a callback queued before its removal does not run; a closed loop
accepts no registration; and while a transport is open its fd is claimed, so
`add_reader` and the `sock_*` methods refuse that fd, as asyncio's selector loops do.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import Any, Final, Protocol

from looplet.engine.handles import AnyHandle, new_handle
from looplet.engine.scheduler import Scheduler

#: The read buffer's size: the most one read takes, asyncio's `max_size` for its
#: transports, so a large transfer moves as much per system call as there.
READ_BUFFER_SIZE: Final = 256 * 1024


def fileno_of(fileobj: Any) -> int:
    """`fileobj`'s fd, with selectors' error for an object that has none."""
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


def fd_of(fileobj: Any) -> int:
    """An fd number, or an object's `fileno()`; ValueError for a negative one."""
    fd = fileobj if isinstance(fileobj, int) else fileno_of(fileobj)
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class Io(Protocol):
    """What a service, transport or endpoint needs of the loop it serves."""

    #: The loop, for asyncio's public API (call_soon, create_future, ...).
    loop: asyncio.AbstractEventLoop
    #: asyncio's debug mode, kept equal to `loop.get_debug()`.
    debug: bool

    @property
    def read_buffer(self) -> memoryview:
        """The loop's scratch buffer for reads (`READ_BUFFER_SIZE` bytes): read into it
        and copy out what arrived, on the loop's thread, before anything else runs.
        Made on first use: a loop that never reads does not pay for it."""
        ...

    #: Work in flight outside the loop that will queue work on it when done (an
    #: executor job, a helper thread, a child being waited for): add a token when it
    #: starts; discard it on the loop's thread once its result is there (a discard
    #: from another thread would not wake a loop waiting for it). A virtual clock does
    #: not jump over time in which such work may finish.
    outside: set[object]

    def add(
        self, fd: Any, direction: int, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> AnyHandle:
        """Run `callback(*args)` whenever `fd` (a number or an object with fileno()) is
        ready in `direction`, replacing that direction's registration."""
        ...

    def remove(self, fd: Any, direction: int) -> bool:
        """Stop watching `fd` in `direction`; whether it was watched."""
        ...

    def forget(self, fd: int) -> None:
        """`fd` is about to be closed: drop every registration of it now."""
        ...

    def watching(self, fd: int, direction: int) -> bool:
        """Whether `fd` is watched in `direction`."""
        ...

    def schedule(self, handle: asyncio.Handle) -> None:
        """Queue `handle` to run on the next tick (a handle made elsewhere)."""
        ...

    def claim(self, fd: int, transport: asyncio.BaseTransport) -> None:
        """`transport` owns `fd` until it is collected or `release(fd)`."""
        ...

    def release(self, fd: int) -> None:
        """`fd` has no owning transport any more."""
        ...

    def check_unclaimed(self, fd: Any) -> None:
        """RuntimeError if an open transport owns `fd`."""
        ...

    @property
    def current_handle(self) -> object:
        """The handle running now, in debug mode (None otherwise)."""
        ...


class IoDriver:
    """`Io` over a loop's scheduler and reactor."""

    __slots__ = (
        "_closed",
        "_reactor",
        "_read_buffer",
        "_ready",
        "_scheduler",
        "_transports",
        "debug",
        "loop",
        "outside",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, scheduler: Scheduler) -> None:
        self.loop = loop
        self.debug = False
        self._scheduler = scheduler
        self._reactor = scheduler.reactor
        self._ready = scheduler.ready
        self.outside = scheduler.outside
        self._closed = False
        self._read_buffer: memoryview | None = None
        #: fd -> the transport that owns it.
        self._transports: weakref.WeakValueDictionary[int, asyncio.BaseTransport] = weakref.WeakValueDictionary()

    def close(self) -> None:
        """The loop closed: registrations are refused, removals are no-ops."""
        self._closed = True

    def add(
        self, fd: Any, direction: int, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> AnyHandle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle: AnyHandle
        if self.debug:
            handle = asyncio.Handle(callback, args, self.loop, context)
        else:
            handle = new_handle(callback, args, self.loop, copy_context() if context is None else context)
        old = self._reactor.add(fd_of(fd), direction, handle, fd)
        if old is not None:
            old.cancel()
        return handle

    def remove(self, fd: Any, direction: int) -> bool:
        if self._closed:
            return False
        reactor = self._reactor
        try:
            fileno = fd_of(fd)
        except ValueError:
            # Closed while registered (its fileno() is now -1): selectors find the
            # registration made for this very object, and so do we.
            found = reactor.registered_fd_of(fd)
            if found is None:
                raise
            fileno = found
        old = reactor.remove(fileno, direction)
        if old is None:
            return False
        old.cancel()
        return True

    @property
    def read_buffer(self) -> memoryview:
        buffer = self._read_buffer
        if buffer is None:
            # Made once per loop, when something first reads: making and freeing 256 KiB
            # would double the cost of a loop that never does. Its pages are mapped on
            # first touch, so a loop that reads small messages uses one or two.
            buffer = self._read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        return buffer

    def forget(self, fd: int) -> None:
        self._reactor.forget(fd)

    def watching(self, fd: int, direction: int) -> bool:
        return self._reactor.has(fd, direction)

    def schedule(self, handle: asyncio.Handle) -> None:
        self._ready.append(handle)

    def claim(self, fd: int, transport: asyncio.BaseTransport) -> None:
        self._transports[fd] = transport

    def release(self, fd: int) -> None:
        self._transports.pop(fd, None)

    def check_unclaimed(self, fd: Any) -> None:
        # No check of the sign: a closed socket (-1) may still be removed.
        fileno = fd if isinstance(fd, int) else fileno_of(fd)
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    @property
    def current_handle(self) -> object:
        return self._scheduler.current_handle
