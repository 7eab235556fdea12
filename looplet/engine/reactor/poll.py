"""The poll(2) backend: the portable fallback, and the one to force when testing.

# Facts about poll
- The interest set lives in user space (`select.poll` keeps a dict and builds the
  pollfd array per call), so register/modify/unregister cost no syscall, and each poll
  costs O(registered fds).
- A closed fd in the set is reported as POLLNVAL on every call; we treat it as an
  error, wake both directions, and drop it when nobody wants it (reactor/base.py).
- POLLHUP and POLLERR are reported whatever the mask.
- The timeout is in milliseconds; asyncio rounds up so a timer is never polled for
  too short a time and spun on. We do the same.
"""

from __future__ import annotations

import contextlib
import math
import os
import select

from looplet.engine.reactor.base import MAX_POLL_TIMEOUT, READ, WRITE, Reactor

_IN = select.POLLIN | select.POLLPRI
_OUT = select.POLLOUT
_ERR = select.POLLHUP | select.POLLERR | select.POLLNVAL


def _native(mask: int) -> int:
    return (_IN if mask & READ else 0) | (_OUT if mask & WRITE else 0)


class PollReactor(Reactor):
    """Readiness through one `select.poll` object."""

    name = "poll"

    def _open_os(self) -> None:
        self._poll = select.poll()
        self.read_bits = _IN | _ERR
        self.write_bits = _OUT | _ERR

    def _register(self, fd: int, mask: int) -> None:
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")
        # poll() itself would accept a closed fd and report POLLNVAL forever; fail now,
        # with EBADF, as the kernel-side backends do.
        os.fstat(fd)
        self._poll.register(fd, _native(mask))

    def _modify(self, fd: int, old: int, mask: int) -> None:
        self._poll.modify(fd, _native(mask))

    def _unregister(self, fd: int, old: int) -> None:
        with contextlib.suppress(KeyError):
            self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is None:
            ms = None
        elif timeout <= 0:
            ms = 0
        else:
            ms = math.ceil(min(timeout, MAX_POLL_TIMEOUT) * 1e3)
        return self._poll.poll(ms)

    def _close_os(self) -> None:
        self._poll = select.poll()
