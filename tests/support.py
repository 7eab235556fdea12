"""Helpers that test modules share: bounded waits, the loop asleep in its poll, protocols.

Waits on other threads and processes are each bounded by their own timeout. A test
that waits for a thread, an event set by another thread, or a child process must not
hang if the thing it waits for never happens (a lost wake-up, a deadlock): it fails
at once with a message that names what it waited for, instead of sitting out
pytest-timeout's two minutes and leaving a stuck thread behind. The limit is a bound
on a hang, never a timing assertion: nothing that works comes near it.

Also here, for tests of several modules: whether a thread is asleep in its poll, read
from /proc (`SleepProbe`; the `loop_sleep` fixture in conftest.py makes one for the
loop's thread), a loop's iteration count and exception-handler reports, the protocols
and peers the tests talk to, and the argument checks' `raises`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import select
import socket
import subprocess
import threading
import time
from typing import Any

import pytest

import looplet

#: How long a wait may take before the test fails as hung.
HANG_LIMIT = 30.0


def join(thread: threading.Thread, timeout: float = HANG_LIMIT) -> None:
    """Join `thread`; fail if it is still running after `timeout` seconds."""
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"thread {thread.name!r} still running after {timeout} s: hung")


def wait_for(event: threading.Event | threading.Barrier, what: str, timeout: float = HANG_LIMIT) -> None:
    """Wait for `event` (set by another thread) or for all parties of a barrier; fail if
    that does not happen within `timeout` seconds."""
    if isinstance(event, threading.Barrier):
        try:
            event.wait(timeout)
        except threading.BrokenBarrierError:
            raise AssertionError(f"{what}: not every thread reached the barrier within {timeout} s") from None
        return
    if not event.wait(timeout):
        raise AssertionError(f"{what}: not set within {timeout} s")


def reap(proc: subprocess.Popen[bytes], timeout: float = HANG_LIMIT) -> int:
    """Wait for the child `proc`; kill it and fail if it has not exited within `timeout`."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"child {proc.args!r} still running after {timeout} s: hung") from None


# -- the loop asleep in its poll, from /proc ---------------------------------------------


# Gives up on a wait that would otherwise hang a broken test for pytest-timeout's full
# two minutes; never asserted on (a test that reaches it fails for what it waited on).
SAFETY_TIMEOUT = 30.0


# Kernel functions a thread sleeping in epoll_wait, poll or select shows as its wchan.
_POLL_WCHANS = (b"do_epoll_wait", b"ep_poll", b"do_sys_poll", b"poll_schedule_timeout", b"do_select")


class SleepProbe:
    """Tells, from any thread, whether one thread is asleep in epoll_wait, poll or select
    (not merely runnable, and not waiting for the GIL, which is a futex), from its wchan.

    The /proc file is opened once, when the probe is made, and re-read with pread: opened
    later, it would take the lowest free fd number, which in loop/test_fds.py's tests is the
    number just closed behind the loop's back.
    """

    def __init__(self, native_tid: int | None = None) -> None:
        tid = threading.get_native_id() if native_tid is None else native_tid
        self.tid = tid
        self._fd = os.open(f"/proc/self/task/{tid}/wchan", os.O_RDONLY | os.O_CLOEXEC)

    def asleep(self) -> bool:
        return os.pread(self._fd, 64, 0).startswith(_POLL_WCHANS)

    def wait(self, give_up: float = SAFETY_TIMEOUT) -> bool:
        """Wait until the thread is asleep in its poll; False if it never is. The condition
        is the synchronisation: each check is a read of /proc."""
        deadline = time.monotonic() + give_up
        while time.monotonic() < deadline:
            if self.asleep():
                return True
            time.sleep(0.0005)
        return False

    def close(self) -> None:
        os.close(self._fd)


@functools.cache
def poll_waits_visible() -> bool:
    """Whether /proc shows this kernel's threads sleeping in poll (it needs wchan)."""
    r, w = os.pipe()
    started = threading.Event()

    def block() -> None:
        started.set()
        select.select([r], [], [])

    thread = threading.Thread(target=block)
    thread.start()
    try:
        wait_for(started, "started")
        assert thread.native_id is not None
        probe = SleepProbe(thread.native_id)
        try:
            return probe.wait(give_up=5.0)
        finally:
            probe.close()
    except OSError:
        return False
    finally:
        os.write(w, b"x")
        join(thread)
        os.close(r)
        os.close(w)


# -- counting iterations, collecting reports ---------------------------------------------


def is_looplet_loop(loop: asyncio.AbstractEventLoop) -> bool:
    return isinstance(loop, looplet.EventLoop)


class TickCounter:
    """Loop iterations so far: looplet's `statistics().ticks`; for asyncio, the calls of
    `_run_once` (its one iteration), counted by wrapping it on this loop instance."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._count = 0
        if not is_looplet_loop(loop):
            run_once = loop._run_once  # type: ignore[attr-defined]

            def counted() -> None:
                self._count += 1
                run_once()

            loop._run_once = counted  # type: ignore[attr-defined]

    def __call__(self) -> int:
        if is_looplet_loop(self._loop):
            return self._loop.statistics().ticks  # type: ignore[attr-defined]
        return self._count


def report_collector(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """Route the loop's exception handler into a list, and return the list."""
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    return reports


async def ticks(n: int) -> None:
    """Let the loop run `n` iterations (each sleep(0) yields for one)."""
    for _ in range(n):
        await asyncio.sleep(0)


# -- protocols and peers -----------------------------------------------------------------


class EventRecorder(asyncio.Protocol):
    """Records every protocol event in order; futures for the ones tests wait on."""

    def __init__(self, keep_open_on_eof: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.keep_open_on_eof = keep_open_on_eof
        self.made: asyncio.Future[None] = loop.create_future()
        self.got_eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.lost_calls: list[BaseException | None] = []
        self.paused = False
        self.resumed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.got_eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.events.append("pause")
        self.paused = True

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.paused = False
        if not self.resumed.done():
            self.resumed.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost_calls.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)


class PlainEcho(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_round_trips(count: int) -> int:
    """`count` round trips through a PlainEcho transport over a socketpair; returns how many
    answers came back right. Each round trip needs the loop to poll for I/O."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    await loop.connect_accepted_socket(PlainEcho, b)
    reader, writer = await asyncio.open_connection(sock=a)
    right = 0
    for n in range(count):
        message = b"round trip %d\n" % n
        writer.write(message)
        right += await reader.readline() == message
    writer.close()
    await writer.wait_closed()
    return right


async def close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


async def recv_until_eof(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    while data := await loop.sock_recv(sock, 1 << 20):
        buf += data
    return bytes(buf)


class Collect(asyncio.Protocol):
    """Gathers what arrives; `done` resolves with it at EOF."""

    def __init__(self, keep_open_on_eof: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.done: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.keep_open_on_eof = keep_open_on_eof
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.done.set_result(bytes(self.data))
        return self.keep_open_on_eof

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(bytes(self.data))
        self.lost.set_result(exc)


class Proto(asyncio.Protocol):
    pass


class FakeTransport(asyncio.Transport):
    """Stands for a transport start_tls/sendfile reject before touching it."""

    def __init__(self, closing=False, **attrs):
        super().__init__()
        self._closing = closing
        for name, value in attrs.items():
            setattr(self, name, value)

    def is_closing(self):
        return self._closing


# -- argument checks and the ways in -----------------------------------------------------


def raises(exc_type, message):
    """pytest.raises matching the whole message from its start."""
    return pytest.raises(exc_type, match="^" + re.escape(message))


def _fake_getaddrinfo(loop, name, entries):
    """Make `name` resolve to `entries` (names go through loop.getaddrinfo on both loops)."""
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, **kwargs):
        if host == name:
            return entries
        return await real(host, port, **kwargs)

    loop.getaddrinfo = getaddrinfo


async def describe():
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    return type(loop), loop.is_running(), loop.get_debug()
