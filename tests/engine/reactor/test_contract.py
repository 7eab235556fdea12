"""The reactor contract, run against every backend this machine has.

These tests touch real fds (socketpairs) but no event loop: they drive
`poll`/`dispatch` by hand and look at the run queue, as the scheduler would.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import deque
from collections.abc import Iterator

import pytest

from looplet.engine.reactor import READ, WRITE, Reactor, available_reactors, pick_reactor


class FakeLoop:
    """Just enough of a loop for asyncio.Handle."""

    def __init__(self) -> None:
        self.errors: list[dict[str, object]] = []

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict[str, object]) -> None:
        self.errors.append(context)


@pytest.fixture(params=available_reactors())
def reactor(request: pytest.FixtureRequest) -> Iterator[Reactor]:
    r = pick_reactor(deque(), request.param)
    yield r
    r.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def handle(calls: list[str], tag: str) -> asyncio.Handle:
    return asyncio.Handle(calls.append, (tag,), FakeLoop(), None)  # type: ignore[arg-type]


def tick(r: Reactor, timeout: float | None = 0) -> int:
    """One poll + dispatch + run of what was woken; returns how many entries ran."""
    r.dispatch(r.poll(timeout))
    ready = r._ready
    n = len(ready)
    for _ in range(n):
        h = ready.popleft()
        if not h._cancelled:  # type: ignore[attr-defined]
            h._run()  # type: ignore[attr-defined]
    return n


def test_readable_fd_wakes_reader_level_triggered(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    assert tick(reactor) == 0
    b.send(b"x")
    tick(reactor)
    tick(reactor)  # still unread: level-triggered, runs again
    assert calls == ["r", "r"]
    a.recv(1)
    tick(reactor)
    assert calls == ["r", "r"]


def test_writer_and_reader_on_one_fd(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), WRITE, handle(calls, "w"))
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    b.send(b"x")
    tick(reactor)
    assert sorted(calls) == ["r", "w"]
    assert reactor.has(a.fileno(), READ) and reactor.has(a.fileno(), WRITE)


def test_watch_woken_twice_runs_once(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    b.send(b"x")
    events = reactor.poll(0)
    reactor.dispatch(events)
    reactor.dispatch(events)  # the same readiness reported again before the watch ran
    assert len(reactor._ready) == 1


def test_add_replaces_and_returns_old_handle(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    first = handle(calls, "1")
    assert reactor.add(a.fileno(), READ, first) is None
    assert reactor.add(a.fileno(), READ, handle(calls, "2")) is first
    b.send(b"x")
    tick(reactor)
    assert calls == ["2"]


def test_removed_interest_is_dropped_on_first_unwanted_event(
    reactor: Reactor, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    assert reactor.remove(a.fileno(), READ) is not None
    assert reactor.remove(a.fileno(), READ) is None
    assert not reactor.has(a.fileno(), READ)
    b.send(b"x")
    tick(reactor)  # the kernel may still report it once; nobody runs
    assert reactor.poll(0) == []  # and then it is gone
    assert calls == []
    assert a.fileno() not in reactor.registered_fds()


def test_remove_then_add_in_one_tick_keeps_working(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "1"))
    reactor.remove(a.fileno(), READ)
    reactor.add(a.fileno(), READ, handle(calls, "2"))
    b.send(b"x")
    tick(reactor)
    assert calls == ["2"]


def test_fd_reused_after_close_is_watched_again(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    calls: list[str] = []
    fd = a.fileno()
    reactor.add(fd, READ, handle(calls, "old"))
    reactor.remove(fd, READ)
    a.close()
    b.close()
    # Make a new socket take the same fd number.
    c, d = socket.socketpair()
    try:
        if c.fileno() != fd:
            os.dup2(c.fileno(), fd)
            c.close()
            c = socket.socket(fileno=fd)
        reactor.add(fd, READ, handle(calls, "new"))
        d.send(b"x")
        tick(reactor, 1.0)
        assert calls == ["new"]
    finally:
        c.close()
        d.close()


def test_fd_closed_behind_the_loops_back_does_not_crash(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    a.close()
    b.close()
    for _ in range(3):
        tick(reactor)  # no exception: a stale registration is survived


def test_dup_kept_open_elsewhere_does_not_leave_an_orphan(reactor: Reactor) -> None:
    # epoll keeps a registration alive while any dup of the file is open; after the
    # owner closed its fd, events under the dead number must stop reaching us.
    a, b = socket.socketpair()
    keep = os.dup(a.fileno())
    calls: list[str] = []
    try:
        reactor.add(a.fileno(), READ, handle(calls, "r"))
        reactor.remove(a.fileno(), READ)
        a.close()
        b.send(b"x")
        for _ in range(3):
            tick(reactor)
        assert reactor.poll(0) == []
        assert calls == []
    finally:
        os.close(keep)
        b.close()


def test_huge_timeout_is_capped_not_overflowed(reactor: Reactor, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    calls: list[str] = []
    reactor.add(a.fileno(), READ, handle(calls, "r"))
    b.send(b"x")
    tick(reactor, 1e12)
    assert calls == ["r"]


def test_invalid_fd_is_rejected(reactor: Reactor) -> None:
    calls: list[str] = []
    with pytest.raises((ValueError, OSError)):
        reactor.add(-1, READ, handle(calls, "r"))
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        reactor.add(r, READ, handle(calls, "r"))
    assert reactor.registered_fds() == []


def test_close_cancels_handles_and_is_idempotent(pair: tuple[socket.socket, socket.socket]) -> None:
    for name in available_reactors():
        r = pick_reactor(deque(), name)
        calls: list[str] = []
        h = handle(calls, "r")
        r.add(pair[0].fileno(), READ, h)
        r.close()
        r.close()
        assert h.cancelled()
        assert r.registered_fds() == []


def test_pick_reactor_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLET_REACTOR", "poll")
    r = pick_reactor(deque())
    assert r.name == "poll"
    r.close()
    monkeypatch.setenv("LOOPLET_REACTOR", "nonsense")
    with pytest.raises(ValueError, match="not available"):
        pick_reactor(deque())
