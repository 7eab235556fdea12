"""Watch: readiness queues the handle once, however often it is reported before it runs."""

from __future__ import annotations

import asyncio
from collections import deque

from looplet.engine.watch import Watch


class FakeLoop:
    def get_debug(self) -> bool:
        return False


def test_watch_coalesces_until_it_runs() -> None:
    ready: deque[object] = deque()
    calls: list[int] = []
    w = Watch(asyncio.Handle(calls.append, (1,), FakeLoop(), None), ready)  # type: ignore[arg-type]
    assert w.wake() is True
    assert w.wake() is False
    assert len(ready) == 1
    ready.popleft()._run()  # type: ignore[attr-defined]
    assert calls == [1]
    assert w.wake() is True  # runnable again once it ran


def test_watch_skips_a_cancelled_handle() -> None:
    ready: deque[object] = deque()
    calls: list[int] = []
    h = asyncio.Handle(calls.append, (1,), FakeLoop(), None)  # type: ignore[arg-type]
    w = Watch(h, ready)
    w.wake()
    h.cancel()
    ready.popleft()._run()  # type: ignore[attr-defined]
    assert calls == []
