"""ThreadWakeup, the reactor's wake-up fd: waking a blocked poll from another thread,
coalescing, and no write after close; and the reactor that owns it."""

from __future__ import annotations

import os
import select
import threading
from collections import deque

import pytest
from support import join, wait_for

from looplet.engine.reactor import available_reactors, pick_reactor
from looplet.engine.reactor import wakeup as wakeup_module
from looplet.engine.reactor.wakeup import ThreadWakeup


@pytest.mark.parametrize("use_eventfd", [True, False], ids=["eventfd", "socketpair"])
def test_thread_wakeup_unblocks_poll_and_coalesces(use_eventfd: bool) -> None:
    if use_eventfd and not hasattr(__import__("os"), "eventfd"):
        pytest.skip("no eventfd on this platform")
    wake = ThreadWakeup(use_eventfd=use_eventfd)
    p = select.poll()
    p.register(wake.fileno(), select.POLLIN)
    try:
        t = threading.Thread(target=wake.wake)
        t.start()
        assert p.poll(10_000)  # returns because of the other thread, not the timeout
        join(t)
        wake.wake()  # coalesced: still pending, no second write
        wake.drain()
        assert p.poll(0) == []
        wake.wake()
        assert p.poll(0)
        wake.drain()
    finally:
        wake.close()
    wake.wake()  # after close: ignored, no error


@pytest.mark.parametrize("use_eventfd", [True, False], ids=["eventfd", "socketpair"])
def test_no_wake_reaches_the_fd_number_after_close(use_eventfd: bool) -> None:
    """After close(), the wake-up's fd number may be given to another file: a wake() from
    any thread must never write to it."""
    wake = ThreadWakeup(use_eventfd=use_eventfd)
    wake.wake()
    wake.drain()  # nothing pending: the next wake() would write
    number = wake.fileno()
    wake.close()
    r, w = os.pipe()  # the lowest free numbers: the wake-up's own
    try:
        assert number in (r, w)
        thread = threading.Thread(target=wake.wake)
        thread.start()
        join(thread)
        wake.wake()
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 100)
    finally:
        os.close(r)
        os.close(w)


def test_close_waits_for_a_wake_already_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread that read the fd number and is about to write when the loop closes: the
    close waits for that write, so it lands in the wake-up's own eventfd, not in a file
    that took the number after it was closed."""
    if not hasattr(os, "eventfd"):
        pytest.skip("no eventfd on this platform")
    wake = ThreadWakeup(use_eventfd=True)
    writing, may_write = threading.Event(), threading.Event()
    wrote: list[object] = []
    real_write = os.eventfd_write

    def slow_write(fd: int, value: int) -> None:
        writing.set()
        wait_for(may_write, "may_write")
        try:
            real_write(fd, value)
        except OSError as exc:
            wrote.append(exc)
        else:
            wrote.append(fd)

    monkeypatch.setattr(wakeup_module.os, "eventfd_write", slow_write)
    fd = wake.fileno()
    writer = threading.Thread(target=wake.wake)
    closer = threading.Thread(target=wake.close)
    writer.start()
    wait_for(writing, "writing")
    closer.start()
    # The closer is held by the writer: it cannot finish before the write is allowed.
    closer.join(0.2)
    still_closing = closer.is_alive()
    may_write.set()
    join(writer)
    join(closer)
    assert still_closing
    assert wrote == [fd]
    assert wake.fileno() == -1


@pytest.mark.parametrize("name", available_reactors())
def test_the_reactor_drains_its_wakeup_and_queues_nothing(name: str) -> None:
    """A wake from another thread ends a poll that would block forever; dispatch drains
    it without putting anything on the run queue, and the reactor counts as idle."""
    ready: deque[object] = deque()
    reactor = pick_reactor(ready, name)
    try:
        assert reactor.idle() and reactor.registered_fds() == []
        thread = threading.Thread(target=reactor.wakeup.wake)
        thread.start()
        events = reactor.poll(None)
        join(thread)
        assert [fd for fd, _ in events] == [reactor.wakeup.fileno()]
        reactor.dispatch(events)
        assert not ready and reactor.wakes == 0
        assert reactor.poll(0) == []  # drained: the fd is not readable any more
    finally:
        reactor.close()
    assert reactor.wakeup.fileno() == -1
    reactor.wakeup.wake()  # after close: ignored


@pytest.mark.skipif("epoll" not in available_reactors(), reason="epoll is Linux-only")
def test_an_epoll_rebuild_keeps_the_wakeup() -> None:
    """The epoll backend rebuilds its set to drop an orphaned registration; the wake-up
    fd is not a Source, and must be registered in the new set too."""
    reactor = pick_reactor(deque(), "epoll")
    try:
        reactor._orphaned(-1)
        reactor.wakeup.wake()
        assert [fd for fd, _ in reactor.poll(0)] == [reactor.wakeup.fileno()]
    finally:
        reactor.close()
