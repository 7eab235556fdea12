"""Waker and ThreadWakeup: coalescing, and waking a blocked poll from another thread."""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections import deque

import pytest
from support import join, wait_for

from looplet.engine import waker as waker_module
from looplet.engine.waker import ThreadWakeup, Waker


class FakeLoop:
    def get_debug(self) -> bool:
        return False


def test_waker_coalesces_until_it_runs() -> None:
    ready: deque[object] = deque()
    calls: list[int] = []
    w = Waker(asyncio.Handle(calls.append, (1,), FakeLoop(), None), ready)  # type: ignore[arg-type]
    assert w.wake() is True
    assert w.wake() is False
    assert len(ready) == 1
    ready.popleft()._run()  # type: ignore[attr-defined]
    assert calls == [1]
    assert w.wake() is True  # runnable again once it ran


def test_waker_skips_a_cancelled_handle() -> None:
    ready: deque[object] = deque()
    calls: list[int] = []
    h = asyncio.Handle(calls.append, (1,), FakeLoop(), None)  # type: ignore[arg-type]
    w = Waker(h, ready)
    w.wake()
    h.cancel()
    ready.popleft()._run()  # type: ignore[attr-defined]
    assert calls == []


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

    monkeypatch.setattr(waker_module.os, "eventfd_write", slow_write)
    fd = wake.fileno()
    waker = threading.Thread(target=wake.wake)
    closer = threading.Thread(target=wake.close)
    waker.start()
    wait_for(writing, "writing")
    closer.start()
    # The closer is held by the writer: it cannot finish before the write is allowed.
    closer.join(0.2)
    still_closing = closer.is_alive()
    may_write.set()
    join(waker)
    join(closer)
    assert still_closing
    assert wrote == [fd]
    assert wake.fileno() == -1
