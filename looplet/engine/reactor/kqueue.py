"""The kqueue backend (BSD, macOS): designed in, exercised only where kqueue exists.

# Facts about kqueue
- Interest is one knote per (fd, filter): EVFILT_READ and EVFILT_WRITE are added and
  deleted separately, so a "modify" is a changelist of adds and deletes.
- Unlike epoll, knotes belong to the fd number and are dropped when that fd is closed,
  so a dup elsewhere cannot orphan a registration; a delete on a closed fd fails with
  EBADF or ENOENT, which we ignore.
- EV_EOF is reported in `flags` with the filter that saw it; it wakes that direction.
- One kevent is returned per (fd, filter), so an fd ready both ways comes back twice;
  dispatch is per event and each watch coalesces, so that is harmless.
- EINTR is retried by Python (PEP 475).
"""

from __future__ import annotations

import select

from looplet.engine.reactor.base import MAX_POLL_TIMEOUT, READ, STALE_ERRNOS, WRITE, Reactor

_KQ_READ = 1
_KQ_WRITE = 2


class KqueueReactor(Reactor):
    """Readiness through one `select.kqueue` object (only where `select.kqueue` exists)."""

    name = "kqueue"

    def _open_os(self) -> None:
        self._kq = select.kqueue()  # type: ignore[attr-defined,unused-ignore]
        self.read_bits = _KQ_READ
        self.write_bits = _KQ_WRITE

    def fileno(self) -> int:
        return int(self._kq.fileno())

    def _change(self, fd: int, old: int, mask: int) -> None:
        kevent = select.kevent  # type: ignore[attr-defined,unused-ignore]
        changes = []
        for bit, filt in ((READ, select.KQ_FILTER_READ), (WRITE, select.KQ_FILTER_WRITE)):  # type: ignore[attr-defined,unused-ignore]
            if mask & bit and not old & bit:
                changes.append(kevent(fd, filt, select.KQ_EV_ADD))  # type: ignore[attr-defined,unused-ignore]
            elif old & bit and not mask & bit:
                changes.append(kevent(fd, filt, select.KQ_EV_DELETE))  # type: ignore[attr-defined,unused-ignore]
        for change in changes:
            try:
                self._kq.control([change], 0, 0)
            except OSError as exc:
                if change.flags & select.KQ_EV_DELETE and exc.errno in STALE_ERRNOS:  # type: ignore[attr-defined,unused-ignore]
                    continue
                raise

    def _register(self, fd: int, mask: int) -> None:
        self._change(fd, 0, mask)

    def _modify(self, fd: int, old: int, mask: int) -> None:
        self._change(fd, old, mask)

    def _unregister(self, fd: int, old: int) -> None:
        self._change(fd, old, 0)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if timeout is not None:
            timeout = min(max(timeout, 0.0), MAX_POLL_TIMEOUT)
        kevents = self._kq.control(None, len(self._sources) + 1, timeout)
        out = []
        for kev in kevents:
            if kev.filter == select.KQ_FILTER_READ:  # type: ignore[attr-defined,unused-ignore]
                out.append((int(kev.ident), _KQ_READ))
            elif kev.filter == select.KQ_FILTER_WRITE:  # type: ignore[attr-defined,unused-ignore]
                out.append((int(kev.ident), _KQ_WRITE))
        return out

    def _close_os(self) -> None:
        self._kq.close()
