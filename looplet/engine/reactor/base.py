"""The reactor interface and the fd interest table every backend shares.

A reactor owns one OS readiness object (an epoll or kqueue fd, a poll set), the
table of `Source`s: one per fd, with at most one reader and one writer `Watch`, and
the wake-up fd through which other threads interrupt a poll (wakeup.py), which it
registers itself and which is never a `Source`. `poll(timeout)` is the blocking OS
wait and the only call that may block; `dispatch(events)` turns what it returned into
`Watch.wake()` calls, and drains the wake-up fd, and does nothing else.

The invariant owned here: the kernel is told about interest only when it grows.
When interest shrinks (a reader is removed) the kernel is not told at once; the first
event nobody wants for that fd makes the reactor drop it then (`_shrink`). So the
`sock_recv` pattern, remove the reader and add it back a tick later, costs one
`modify` per wait instead of an unregister and a register, and a reader removed and
re-added within one tick costs nothing. Re-arming a source that had no watches, or
replacing a watch's handler, always tells the kernel (`modify`, falling back to
`register`), because its fd may have been closed and reused meanwhile.
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Final

from looplet.engine.handles import AnyHandle
from looplet.engine.reactor.wakeup import ThreadWakeup
from looplet.engine.watch import Watch

#: Directions, with the values of `selectors.EVENT_READ` / `EVENT_WRITE`.
READ: Final = 1
WRITE: Final = 2

# asyncio's and trio's cap on one poll: a day keeps far-future timers from overflowing
# the backends' millisecond or timespec arithmetic.
MAX_POLL_TIMEOUT: Final = 24 * 3600.0

#: errnos meaning "this fd is not (or no longer) what the kernel has registered".
STALE_ERRNOS: Final = frozenset({errno.EBADF, errno.ENOENT, errno.EPERM})


class Source:
    """One registered fd: its watches and the interest mask the kernel has for it."""

    __slots__ = ("fd", "fileobj", "kmask", "reader", "writer")

    def __init__(self, fd: int) -> None:
        self.fd: int = fd
        #: What the last registration was given for this fd (a socket, a file, or the fd
        #: itself): a socket closed since then has fileno() -1, and is found by identity.
        self.fileobj: object = None
        #: What the kernel was last told (may exceed what the watches want; see module doc).
        self.kmask: int = 0
        self.reader: Watch | None = None
        self.writer: Watch | None = None

    def wanted(self) -> int:
        """The mask the current watches need."""
        return (READ if self.reader is not None else 0) | (WRITE if self.writer is not None else 0)


class Reactor:
    """Base class of the backends: the interest table, dispatch, and the kernel calls.

    Backends implement `_open_os`, `_register`, `_modify`, `_unregister`, `poll`
    and `_close_os`, set `name`, and set `read_bits`/`write_bits` to the bits of
    their native event masks that wake a reader or a writer (hang-ups and errors wake
    both, as asyncio's selectors do, so the callback sees the error from its own
    syscall).
    """

    name: str = "base"

    def __init__(self, ready: deque[object]) -> None:
        #: The scheduler's run queue; watches created here append to it.
        self._ready: deque[object] = ready
        self._sources: dict[int, Source] = {}
        self.read_bits: int = READ
        self.write_bits: int = WRITE
        self.closed: bool = False
        #: Wakes dispatched, and those that found their watch already queued.
        self.wakes: int = 0
        self.coalesced_wakes: int = 0
        self._open_os()
        #: Other threads' way in: `wakeup.wake()` makes the current or next poll return.
        self.wakeup: ThreadWakeup = ThreadWakeup()
        self._wakeup_fd: int = self.wakeup.fileno()
        try:
            self._register(self._wakeup_fd, READ)
        except BaseException:
            self.wakeup.close()
            self._close_os()
            raise

    # -- the OS calls, one set per backend -------------------------------------------

    def _open_os(self) -> None:
        raise NotImplementedError

    def _register(self, fd: int, mask: int) -> None:
        raise NotImplementedError

    def _modify(self, fd: int, old: int, mask: int) -> None:
        raise NotImplementedError

    def _unregister(self, fd: int, old: int) -> None:
        raise NotImplementedError

    def _close_os(self) -> None:
        raise NotImplementedError

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Block until some registered fd is ready or `timeout` seconds pass.

        Returns (fd, native mask) pairs for `dispatch`. EINTR is retried by Python
        (PEP 475); the timeout is capped at a day.
        """
        raise NotImplementedError

    def fileno(self) -> int:
        """The OS object's fd, or -1 for backends that have none."""
        return -1

    # -- interest ----------------------------------------------------------------------

    def add(self, fd: int, direction: int, handle: AnyHandle, fileobj: object = None) -> AnyHandle | None:
        """Make `handle` run whenever `fd` is ready in `direction` (level-triggered).

        `fileobj` is what the caller named the fd by, for `registered_fd_of`. Returns
        the handle it replaces, which the caller cancels, as asyncio does.
        """
        src = self._sources.get(fd)
        if src is None:
            src = Source(fd)
            old_watch = None
        else:
            old_watch = src.reader if direction == READ else src.writer
        if old_watch is not None:
            old = old_watch._handle
            old_watch._handle = handle
            # Replacing a handler tells the kernel again (one modify): if the fd was
            # closed behind our back and its number reused, the old registration died
            # with it, and the new owner, who had no reason to remove first, would
            # never be woken.
            self._arm(src, src.kmask | src.wanted())
            src.fileobj = fileobj
            return old
        was_idle = src.reader is None and src.writer is None
        watch = Watch(handle, self._ready)
        if direction == READ:
            src.reader = watch
        else:
            src.writer = watch
        want = src.wanted()
        if was_idle or (src.kmask & want) != want:
            try:
                self._arm(src, want | (0 if was_idle else src.kmask))
            except BaseException:
                if direction == READ:
                    src.reader = None
                else:
                    src.writer = None
                raise
        # The last registration's name wins, as in selectors, whose key it replaces.
        src.fileobj = fileobj
        self._sources[fd] = src
        return None

    def remove(self, fd: int, direction: int) -> AnyHandle | None:
        """Stop watching `fd` in `direction`; return the handle that was watching."""
        src = self._sources.get(fd)
        if src is None:
            return None
        watch = src.reader if direction == READ else src.writer
        if watch is None:
            return None
        if direction == READ:
            src.reader = None
        else:
            src.writer = None
        if src.reader is None and src.writer is None:
            # The idle source may linger (module doc); the object must not live on in it.
            src.fileobj = None
        # The kernel keeps its interest until an event for it arrives (module doc).
        return watch._handle

    def registered_fd_of(self, fileobj: object) -> int | None:
        """The fd of a registration (reader or writer) that was made for `fileobj`.

        For a file object that no longer knows its fd (a closed socket's fileno() is
        -1) but whose registration outlived it: selectors find it by identity too.
        A linear search, on that error path only.
        """
        for src in self._sources.values():
            if src.fileobj is fileobj and (src.reader is not None or src.writer is not None):
                return src.fd
        return None

    def has(self, fd: int, direction: int) -> bool:
        """True if a watch is registered for `fd` in `direction`."""
        src = self._sources.get(fd)
        if src is None:
            return False
        return (src.reader if direction == READ else src.writer) is not None

    def forget(self, fd: int) -> None:
        """Drop `fd` from the kernel now: it is about to be closed by its owner.

        The one eager path, for owners who know the fd is going away (transports),
        so that a dup of it elsewhere cannot keep a stale registration alive.
        """
        src = self._sources.pop(fd, None)
        if src is not None and src.kmask:
            self._unregister_quietly(fd, src.kmask)

    def _arm(self, src: Source, mask: int) -> None:
        if src.kmask:
            try:
                self._modify(src.fd, src.kmask, mask)
            except OSError as exc:
                if exc.errno not in STALE_ERRNOS or exc.errno == errno.EBADF:
                    raise
                # The old registration died with a closed fd; this is a new file.
                self._register(src.fd, mask)
        else:
            try:
                self._register(src.fd, mask)
            except FileExistsError:
                self._modify(src.fd, mask, mask)
        src.kmask = mask

    def _unregister_quietly(self, fd: int, mask: int) -> None:
        try:
            self._unregister(fd, mask)
        except OSError as exc:
            if exc.errno not in STALE_ERRNOS:
                raise
            self._orphaned(fd)

    def _orphaned(self, fd: int) -> None:
        """An fd the kernel reports but that cannot be unregistered (closed behind our back).

        Backends whose registrations outlive the fd number (epoll: they belong to the
        open file, which a dup may keep alive) override this to rebuild their set.
        """

    # -- dispatch ----------------------------------------------------------------------

    def dispatch(self, events: list[tuple[int, int]]) -> None:
        """Wake the watches for what `poll` returned; drop interest nobody has any more."""
        sources = self._sources
        rbits = self.read_bits
        wbits = self.write_bits
        for fd, ev in events:
            src = sources.get(fd)
            if src is None:
                if fd == self._wakeup_fd:
                    self.wakeup.drain()
                    continue
                # Reported but not ours: a stale registration of a closed or reused fd.
                self._unregister_quietly(fd, READ | WRITE)
                continue
            unwanted = False
            if ev & rbits:
                if src.reader is not None:
                    self.wakes += 1
                    if not src.reader.wake():
                        self.coalesced_wakes += 1
                else:
                    unwanted = True
            if ev & wbits:
                if src.writer is not None:
                    self.wakes += 1
                    if not src.writer.wake():
                        self.coalesced_wakes += 1
                else:
                    unwanted = True
            if unwanted:
                self._shrink(src)

    def _shrink(self, src: Source) -> None:
        want = src.wanted()
        if want == src.kmask:
            return
        if want:
            try:
                self._modify(src.fd, src.kmask, want)
                src.kmask = want
                return
            except OSError as exc:
                if exc.errno not in STALE_ERRNOS:
                    raise
        else:
            self._unregister_quietly(src.fd, src.kmask)
        # (an orphan rebuild may have dropped it already)
        self._sources.pop(src.fd, None)
        if want:
            # Still wanted but its registration was stale: wake the watches so their own
            # syscalls see the error (EBADF) instead of waiting forever.
            if src.reader is not None:
                src.reader.wake()
            if src.writer is not None:
                src.writer.wake()

    # -- lifecycle and introspection ---------------------------------------------------

    def idle(self) -> bool:
        """True if no fd has a registration (a watch, or interest the kernel still has).

        Then a poll could only report other threads' wake-ups, whose work is on the
        run queue already.
        """
        return not self._sources

    def registered_fds(self) -> list[int]:
        """The fds that currently have a reader or a writer."""
        return [fd for fd, s in self._sources.items() if s.reader is not None or s.writer is not None]

    def close(self) -> None:
        """Drop every registration and close the OS object. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for src in self._sources.values():
            for watch in (src.reader, src.writer):
                if watch is not None:
                    watch._handle.cancel()
        self._sources.clear()
        self._close_os()
        self.wakeup.close()
