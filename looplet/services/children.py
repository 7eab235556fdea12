"""Child exit watching: the loop hears that a child exited through its own reactor.

No SIGCHLD handler and no process-wide child watcher: each loop watches only the
children it started, so it never reaps a process someone else is waiting for.
Strategies, best first (`LOOPLET_CHILD_WATCHER=pidfd|kqueue|thread` forces one):

- pidfd (Linux 5.3+): `os.pidfd_open(pid)` polls readable when the child exits; the
  pidfd is just another fd on the reactor. Hundreds of children cost hundreds of fds,
  no threads.
- kqueue (BSD, macOS): one kqueue of the watcher's own, its fd on the reactor (a kqueue
  fd polls readable when it has events), each child an EVFILT_PROC/NOTE_EXIT filter.
  Works under any reactor backend.
- thread: a thread per child blocked in `waitpid`, handing the status back with
  `call_soon_threadsafe`. The last resort, for kernels without either.

The invariant owned here: for each watched pid, `callback(returncode)` runs exactly
once, on the loop's thread, after the child was reaped here; or `callback(None)` if
someone else reaped it first (the caller knows better what to report then); a watched
child is in the loop's `outside` set until then. After `close()` no pidfd or kqueue fd
of the watcher is open and no callback runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from looplet.engine.reactor import READ

if TYPE_CHECKING:
    from looplet.engine.io import Io

ExitCallback = Callable[[int | None], object]

STRATEGIES: Final = ("pidfd", "kqueue", "thread")


def _reap(pid: int) -> int | None:
    """The exit code of an exited child, reaping it; None if it was reaped elsewhere."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return None
        except InterruptedError:
            continue
        return os.waitstatus_to_exitcode(status)


def pidfd_works() -> bool:
    """True if this kernel and sandbox allow pidfd_open (seccomp policies may not)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid(), 0))
    except OSError:
        return False
    return True


def available_strategies() -> list[str]:
    """The strategies that work on this machine, best first."""
    found = []
    if pidfd_works():
        found.append("pidfd")
    if hasattr(select, "kqueue"):
        found.append("kqueue")
    found.append("thread")
    return found


def choose_strategy() -> str:
    """`LOOPLET_CHILD_WATCHER` if set, else the best available strategy."""
    forced = os.environ.get("LOOPLET_CHILD_WATCHER")
    available = available_strategies()
    if forced:
        if forced not in STRATEGIES:
            raise ValueError(f"LOOPLET_CHILD_WATCHER must be one of {', '.join(STRATEGIES)}, not {forced!r}")
        if forced not in available:
            raise RuntimeError(f"child watcher {forced!r} is not available here (available: {', '.join(available)})")
        return forced
    return available[0]


class ChildWatcher:
    """Watches the children one loop started; `watch(pid, callback)` per child."""

    def __init__(self, io: Io, strategy: str | None = None) -> None:
        self._io = io
        self._loop = io.loop
        self.strategy = strategy or choose_strategy()
        #: pid -> (pidfd or -1, callback) for the children not yet reported.
        self._children: dict[int, tuple[int, ExitCallback]] = {}
        self._kqueue: Any = None  # a select.kqueue, where it exists
        self._closed = False

    def __len__(self) -> int:
        return len(self._children)

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Call `callback(returncode)` on the loop's thread once child `pid` exits."""
        if self._closed:
            raise RuntimeError("the child watcher is closed")
        # Before the strategy: the thread one may report from its thread at once.
        self._io.outside.add((self, pid))
        if self.strategy == "pidfd":
            self._watch_pidfd(pid, callback)
        elif self.strategy == "kqueue":
            self._watch_kqueue(pid, callback)
        else:
            self._watch_thread(pid, callback)

    # -- pidfd ---------------------------------------------------------------------

    def _watch_pidfd(self, pid: int, callback: ExitCallback) -> None:
        try:
            pidfd = os.pidfd_open(pid, 0)
        except ProcessLookupError:
            # Reaped already (by Popen.poll(), say): nothing left to wait for.
            self._children[pid] = (-1, callback)
            self._loop.call_soon(self._report, pid, None)
            return
        self._children[pid] = (pidfd, callback)
        self._io.add(pidfd, READ, self._pidfd_ready, pid, pidfd)

    def _pidfd_ready(self, pid: int, pidfd: int) -> None:
        self._drop_pidfd(pidfd)
        self._report(pid, _reap(pid))

    def _drop_pidfd(self, pidfd: int) -> None:
        self._io.remove(pidfd, READ)
        self._io.forget(pidfd)
        os.close(pidfd)

    # -- kqueue --------------------------------------------------------------------

    def _watch_kqueue(self, pid: int, callback: ExitCallback) -> None:  # pragma: no cover - BSD/macOS
        kq = self._kqueue
        if kq is None:
            kq = self._kqueue = select.kqueue()  # type: ignore[attr-defined,unused-ignore]
            self._io.add(kq.fileno(), READ, self._kqueue_ready)
        self._children[pid] = (-1, callback)
        kq_select: Any = select  # the KQ_* names exist only where kqueue does
        event = kq_select.kevent(
            pid,
            filter=kq_select.KQ_FILTER_PROC,
            flags=kq_select.KQ_EV_ADD | kq_select.KQ_EV_ONESHOT,
            fflags=kq_select.KQ_NOTE_EXIT,
        )
        try:
            kq.control([event], 0, 0)
        except ProcessLookupError:
            # It exited before the filter went on: reap it now.
            self._loop.call_soon(self._reap_and_report, pid)

    def _kqueue_ready(self) -> None:  # pragma: no cover - BSD/macOS
        assert self._kqueue is not None
        for event in self._kqueue.control(None, max(1, len(self._children)), 0):
            self._reap_and_report(int(event.ident))

    def _reap_and_report(self, pid: int) -> None:  # pragma: no cover - BSD/macOS
        self._report(pid, _reap(pid))

    # -- thread --------------------------------------------------------------------

    def _watch_thread(self, pid: int, callback: ExitCallback) -> None:
        self._children[pid] = (-1, callback)
        thread = threading.Thread(target=self._wait_in_thread, args=(pid,), name=f"looplet-waitpid-{pid}", daemon=True)
        thread.start()

    def _wait_in_thread(self, pid: int) -> None:
        returncode = _reap(pid)
        # RuntimeError: the loop closed while the child ran; nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._report, pid, returncode)

    # -- common --------------------------------------------------------------------

    def _report(self, pid: int, returncode: int | None) -> None:
        self._io.outside.discard((self, pid))
        entry = self._children.pop(pid, None)
        if entry is None or self._closed:
            return
        entry[1](returncode)

    def close(self) -> None:
        """Stop watching: close every pidfd and the kqueue; no callback runs after this.

        A child still running is not waited for (that would block); it is reaped by
        whoever still holds its `Popen` (subprocess reaps abandoned children itself).
        """
        if self._closed:
            return
        self._closed = True
        for pid, (pidfd, _) in self._children.items():
            self._io.outside.discard((self, pid))
            if pidfd >= 0:
                self._drop_pidfd(pidfd)
        self._children.clear()
        if self._kqueue is not None:  # pragma: no cover - BSD/macOS
            self._io.remove(self._kqueue.fileno(), READ)
            self._io.forget(self._kqueue.fileno())
            self._kqueue.close()
            self._kqueue = None
