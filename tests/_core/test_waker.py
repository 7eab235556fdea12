"""Waker and ThreadWakeup: coalescing, and waking a blocked poll from another thread."""

from __future__ import annotations

import asyncio
import select
import threading
from collections import deque

import pytest
from support import join

from looplet._core.waker import ThreadWakeup, Waker


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
