"""The epoll backend (Linux): the default where it exists.

# Facts about epoll
- Registrations belong to the open file description, not to the fd number: closing
  an fd removes its registration only if no dup of it is open anywhere (a forked
  child, `socket.dup`, `pass_fds`). Otherwise epoll keeps reporting events under the
  old number, and EPOLL_CTL_DEL on that number then fails (EBADF, or ENOENT once the
  number is reused), so the registration can never be removed.
- Level-triggered (the default) matches asyncio's add_reader contract: the callback
  runs on every tick while the fd stays ready. We do not use EPOLLONESHOT (trio does),
  because it would cost an EPOLL_CTL_MOD per event on every long-lived transport.
- EPOLLHUP and EPOLLERR are always reported, whatever the mask; we wake both the reader
  and the writer on them, as `selectors.EpollSelector` does, so the owner's own recv or
  send sees the error.
- EINTR is retried by Python itself (PEP 475), with the remaining timeout.
- Regular files cannot be registered (EPERM), as with asyncio's selector.

What this file chooses: level-triggered, one epoll_ctl per interest change (see
reactor/base.py), and, for the orphaned registrations above, a rebuild of the whole
epoll set: rare, O(n), and the only cure short of EPOLLONESHOT.
"""

from __future__ import annotations

import select

from looplet.engine.reactor.base import MAX_POLL_TIMEOUT, READ, WRITE, Reactor

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_HUP_ERR = select.EPOLLHUP | select.EPOLLERR


def _native(mask: int) -> int:
    return (_IN if mask & READ else 0) | (_OUT if mask & WRITE else 0)


class EpollReactor(Reactor):
    """Readiness through one `select.epoll` object."""

    name = "epoll"

    def _open_os(self) -> None:
        self._epoll: select.epoll = select.epoll()
        self.read_bits = _IN | _HUP_ERR
        self.write_bits = _OUT | _HUP_ERR
        # The maximum number of events per epoll_wait: what one tick can take in. More
        # ready fds are simply reported by the next poll (level-triggered).
        self._max_events: int = 1024

    def fileno(self) -> int:
        return self._epoll.fileno()

    def _register(self, fd: int, mask: int) -> None:
        self._epoll.register(fd, _native(mask))

    def _modify(self, fd: int, old: int, mask: int) -> None:
        self._epoll.modify(fd, _native(mask))

    def _unregister(self, fd: int, old: int) -> None:
        self._epoll.unregister(fd)

    def _orphaned(self, fd: int) -> None:
        # A new epoll object knows only what we register in it: the orphan is gone.
        old = self._epoll
        self._epoll = select.epoll()
        old.close()
        self._register(self._wakeup_fd, READ)
        for src in list(self._sources.values()):
            mask = src.wanted()
            if not mask:
                del self._sources[src.fd]
                continue
            try:
                self._epoll.register(src.fd, _native(mask))
                src.kmask = mask
            except OSError:
                # Closed while registered: wake its owners so they see the error.
                src.kmask = 0
                for watch in (src.reader, src.writer):
                    if watch is not None:
                        watch.wake()

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is None:
            timeout = -1
        elif timeout > MAX_POLL_TIMEOUT:
            timeout = MAX_POLL_TIMEOUT
        return self._epoll.poll(timeout, self._max_events)

    def _close_os(self) -> None:
        self._epoll.close()
