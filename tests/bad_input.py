"""Bad input: every public loop method, given wrong arguments, fails as stock asyncio does, and the loop goes on.

One table (`CASES`) holds a wrong call for each public method of the loop: wrong
types, negative, NaN and infinite delays and timeouts, closed sockets, blocking sockets
where asyncio wants non-blocking ones (asyncio checks that in debug mode only, so the
table has forced-debug variants), non-sockets, SSL sockets, and oversized arguments
(sizes past `sys.maxsize`, delays of 1e300, ints too big for a float, ports past
65535, 64-character host labels, socket paths past `sun_path`).

This module is the table and the test, not a test module: each case runs in the test
module of the code its method exercises (`OWNERS`), which imports
`test_bad_input_fails_as_on_asyncio` and this module's `pytest_generate_tests`; so the
create_connection cases run in tests/endpoints/test_connect.py, the signal handler
cases in tests/services/test_signals.py. tests/test_public_api.py checks that the
table has a case for every public method.

Nothing in the table says what should happen. When pytest collects a module that runs
cases, it runs each of them on a fresh stock asyncio loop and records the outcome in
the test's parameters (and its id): the exception class raised (or that it succeeded),
what the loop's exception handler was given, the warnings issued, what a case observed
(a timer that fired, a resolved address), and whether the loop still ran afterwards.
The test then runs the case on a looplet loop and expects that same outcome, the same
message (object addresses, fd numbers, ports and paths masked), and a loop that still
runs callbacks and polls. asyncio is the oracle here, so it is not run a second time.
Outcomes that differ by Python version or by debug mode are simply recorded as they
are; run the tests with PYTHONASYNCIODEBUG=1 too.

"The loop still runs" is a probe: a call_soon, and a reader on a socket with a byte
already waiting, so the loop really polls, with any timer a case left behind (a
timer at 1e300 s must not overflow the poll's timeout).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import inspect
import logging
import math
import os
import re
import signal
import socket
import ssl
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

import looplet
from looplet.engine.reactor import available_reactors

Loop = asyncio.AbstractEventLoop
PY312 = sys.version_info >= (3, 12)
#: asyncio's rule for debug mode by default (coroutines._is_debug_mode).
DEBUG = sys.flags.dev_mode or (not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))


class Proto(asyncio.Protocol):
    pass


class DatagramProto(asyncio.DatagramProtocol):
    pass


class SubprocessProto(asyncio.SubprocessProtocol):
    pass


class NotAThreadPool(concurrent.futures.Executor):
    """An executor that is not a ThreadPoolExecutor (set_default_executor refuses those)."""


def noop(*args: Any) -> None:
    pass


async def async_noop() -> None:
    pass


def finished_generator() -> Generator[None, None, None]:
    """A plain generator that returns at once (asyncio once accepted these as coroutines)."""
    return
    yield


# -- per-case resources -----------------------------------------------------------------


class Env:
    """The resources one case uses on one loop, created on demand and closed afterwards.

    Also what the case leaves to compare: `errors` (what the exception handler got) and
    `seen` (anything a case records, compared as is).
    """

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        #: Exception class names (or messages, for contexts without one) given to the
        #: loop's exception handler while the case and the probe ran.
        self.errors: list[str] = []
        self.seen: dict[str, Any] = {}
        self._sync_closers: list[Callable[[], Any]] = []
        self._async_closers: list[Callable[[], Any]] = []
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def handler(self, loop: Loop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.errors.append(type(exc).__name__ if exc is not None else str(context.get("message")))

    def fire(self, name: str = "fired") -> Callable[..., None]:
        """A callback that records that it ran under `seen[name]`."""
        self.seen[name] = False

        def callback(*args: Any) -> None:
            self.seen[name] = True

        return callback

    def later(self, closer: Callable[[], Any]) -> None:
        self._sync_closers.append(closer)

    def later_async(self, closer: Callable[[], Any]) -> None:
        self._async_closers.append(closer)

    def sock(self, *args: Any, blocking: bool = False) -> socket.socket:
        sock = socket.socket(*args)
        sock.setblocking(blocking)
        self.later(sock.close)
        return sock

    def pair(self, *, blocking: bool = False, data: bytes = b"") -> socket.socket:
        """One end of a connected AF_UNIX stream pair; `data` is waiting to be read."""
        a, b = socket.socketpair()
        self.later(a.close)
        self.later(b.close)
        a.setblocking(blocking)
        b.setblocking(False)
        if data:
            b.send(data)
        return a

    def closed(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
        sock = socket.socket(family, type)
        # Non-blocking, so that debug mode's blocking-mode check does not answer first.
        sock.setblocking(False)
        sock.close()
        return sock

    def udp(self, *, blocking: bool = False, data: bytes = b"") -> socket.socket:
        """A UDP socket on 127.0.0.1; `data`, if given, waits in it as a datagram from itself."""
        sock = self.sock(socket.AF_INET, socket.SOCK_DGRAM, blocking=blocking)
        sock.bind(("127.0.0.1", 0))
        if data:
            sock.sendto(data, sock.getsockname())
        return sock

    def listener(self, *, blocking: bool = False, pending: bool = False) -> socket.socket:
        """A listening TCP socket on 127.0.0.1; `pending`: a connection waits to be accepted."""
        sock = self.sock(blocking=blocking)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        if pending:
            client = self.sock(blocking=True)
            client.connect(sock.getsockname())
        return sock

    def listening_addr(self) -> tuple[str, int]:
        return self.listener().getsockname()  # type: ignore[no-any-return]

    def ssl_sock(self) -> ssl.SSLSocket:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        sock = ctx.wrap_socket(socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
        self.later(sock.close)
        return sock

    def path(self, name: str = "s") -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory()
            self.later(self._tmpdir.cleanup)
        return os.path.join(self._tmpdir.name, name)

    def file(self, mode: str = "rb", data: bytes = b"data") -> Any:
        path = self.path("file")
        with open(path, "wb") as f:
            f.write(data)
        f2 = open(path, mode)  # noqa: SIM115  # closed by the env
        self.later(f2.close)
        return f2

    def closed_file(self) -> Any:
        f = self.file()
        f.close()
        return f

    def pipe(self) -> tuple[Any, Any]:
        r, w = os.pipe()
        rf, wf = os.fdopen(r, "rb"), os.fdopen(w, "wb")
        self.later(rf.close)
        self.later(wf.close)
        return rf, wf

    def coro(self) -> Any:
        """A coroutine nobody will run, closed afterwards (no "never awaited" warning)."""
        coro = async_noop()
        self.later(coro.close)
        return coro

    def other_loop_future(self) -> asyncio.Future[Any]:
        other = asyncio.SelectorEventLoop()
        self.later(other.close)
        return other.create_future()

    async def transport(self) -> asyncio.Transport:
        """A stream transport of this loop, over an AF_UNIX socket pair."""
        transport, _ = await self.loop.create_connection(Proto, sock=self.pair())
        self.later_async(lambda: close_transport(transport))
        return transport  # type: ignore[return-value]

    async def executor_created(self) -> None:
        """Make the loop create its default executor (shutdown_default_executor needs one)."""
        await self.loop.run_in_executor(None, noop)

    def keep(self, result: Any) -> None:
        """Dispose of whatever a call that unexpectedly succeeded returned."""
        # looplet's handles are not asyncio.Handle instances (as uvloop's are not).
        if isinstance(result, asyncio.Handle) or type(result).__name__ in ("Handle", "TimerHandle"):
            self.later(result.cancel)
        elif isinstance(result, asyncio.AbstractServer):
            self.later_async(lambda: close_server(result))
        elif isinstance(result, tuple) and result and isinstance(result[0], asyncio.BaseTransport):
            self.later_async(lambda: close_transport(result[0]))
        elif isinstance(result, socket.socket):
            self.later(result.close)
        elif isinstance(result, tuple) and result and isinstance(result[0], socket.socket):
            self.later(result[0].close)

    def close(self) -> None:
        if self._async_closers:
            closers, self._async_closers = self._async_closers, []

            async def close_all() -> None:
                for closer in reversed(closers):
                    await closer()

            self.loop.run_until_complete(close_all())
        closers, self._sync_closers = self._sync_closers, []
        for closer in reversed(closers):
            closer()


async def close_transport(transport: asyncio.BaseTransport) -> None:
    transport.close()
    # connection_lost, which closes the socket, runs on a later tick.
    for _ in range(3):
        await asyncio.sleep(0)


async def close_server(server: asyncio.AbstractServer) -> None:
    server.close()
    await server.wait_closed()


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One wrong call. `call(loop, env)` runs inside a coroutine on the running loop
    (its result awaited if awaitable), or, with `outside=True`, with the loop stopped.
    `debug=True` turns debug mode on around the call."""

    id: str
    call: Callable[[Loop, Env], Any]
    outside: bool = False
    debug: bool = False


def _cases() -> list[Case]:
    cases: list[Case] = []

    def case(id: str, call: Callable[[Loop, Env], Any], **kwargs: Any) -> None:
        cases.append(Case(id, call, **kwargs))

    # Delays and deadlines: every odd number, checked for what it raises, whether the
    # timer fires while the probe runs, and whether the loop can still poll after it.
    delays: dict[str, Any] = {
        "negative": -1.0,
        "nan": math.nan,
        "inf": math.inf,
        "minus-inf": -math.inf,
        "1e300": 1e300,
        "minus-1e300": -1e300,
        "int-too-big-for-float": 10**400,
        "str": "1",
        "none": None,
        "complex": 1j,
    }
    for name, delay in delays.items():
        case(f"call_later-delay-{name}", lambda loop, env, d=delay: loop.call_later(d, env.fire()))
        case(
            f"call_at-when-{name}",
            lambda loop, env, d=delay: loop.call_at(d, env.fire()),
        )

    for method in ("call_soon", "call_soon_threadsafe"):
        for debug in (False, True):
            d = "-debug" if debug else ""
            case(f"{method}-not-callable{d}", lambda loop, env, m=method: getattr(loop, m)(1), debug=debug)
            case(f"{method}-coroutine-object{d}", lambda loop, env, m=method: getattr(loop, m)(env.coro()), debug=debug)
        case(f"{method}-context-not-a-context", lambda loop, env, m=method: getattr(loop, m)(noop, context="x"))
    case("call_later-not-callable", lambda loop, env: loop.call_later(0, 1))
    case("call_later-not-callable-debug", lambda loop, env: loop.call_later(0, 1), debug=True)
    case("call_at-not-callable-debug", lambda loop, env: loop.call_at(loop.time(), 1), debug=True)
    case("call_later-context-not-a-context", lambda loop, env: loop.call_later(0, noop, context=1))

    # Futures and tasks.
    case("create_task-int", lambda loop, env: loop.create_task(1))
    case("create_task-none", lambda loop, env: loop.create_task(None))
    case("create_task-future", lambda loop, env: loop.create_task(loop.create_future()))
    case("create_task-coroutine-function", lambda loop, env: loop.create_task(async_noop))
    case("create_task-plain-generator", lambda loop, env: loop.create_task(finished_generator()))
    case("set_task_factory-not-callable", lambda loop, env: loop.set_task_factory(1))

    def factory_case(factory: Callable[..., Any], **kwargs: Any) -> Callable[[Loop, Env], Any]:
        def call(loop: Loop, env: Env) -> Any:
            loop.set_task_factory(factory)
            try:
                return loop.create_task(env.coro(), **kwargs)
            finally:
                loop.set_task_factory(None)

        return call

    case("set_task_factory-wrong-signature", factory_case(lambda: None))
    case("set_task_factory-factory-raises", factory_case(lambda loop, coro, **kw: 1 / 0))
    # A factory whose "task" has no set_name(), given a name: asyncio <3.13 warns and goes
    # on. (Without a name there is no stable outcome to hold looplet to: 3.13.0-3.13.2 call
    # set_name(None) regardless, cpython gh-130033; 3.13.3 passes the name to the factory.)
    case(
        "set_task_factory-returns-future-with-name",
        factory_case(lambda loop, coro, **kw: _done_future(loop), name="n"),
    )
    case("run_until_complete-int", lambda loop, env: loop.run_until_complete(1), outside=True)
    case("run_until_complete-none", lambda loop, env: loop.run_until_complete(None), outside=True)
    case(
        "run_until_complete-other-loops-future",
        lambda loop, env: loop.run_until_complete(env.other_loop_future()),
        outside=True,
    )
    case("run_until_complete-while-running", lambda loop, env: loop.run_until_complete(env.coro()))
    case("run_forever-while-running", lambda loop, env: loop.run_forever())
    case("close-while-running", lambda loop, env: loop.close())
    case("set_exception_handler-not-callable", lambda loop, env: loop.set_exception_handler(1))
    case("call_exception_handler-not-a-dict", lambda loop, env: loop.call_exception_handler("x"))
    case("call_exception_handler-empty-dict", lambda loop, env: loop.call_exception_handler({}))

    # Executors.
    case("run_in_executor-not-callable", lambda loop, env: loop.run_in_executor(None, 1))
    case("run_in_executor-not-callable-debug", lambda loop, env: loop.run_in_executor(None, 1), debug=True)
    case("run_in_executor-coroutine-object", lambda loop, env: loop.run_in_executor(None, env.coro()))
    case(
        "run_in_executor-coroutine-object-debug",
        lambda loop, env: loop.run_in_executor(None, env.coro()),
        debug=True,
    )
    case("run_in_executor-executor-not-an-executor", lambda loop, env: loop.run_in_executor("x", noop))
    case("set_default_executor-int", lambda loop, env: loop.set_default_executor(1))
    case("set_default_executor-not-a-thread-pool", lambda loop, env: loop.set_default_executor(NotAThreadPool()))

    async def shutdown_executor(loop: Loop, env: Env, timeout: Any) -> None:
        await env.executor_created()
        await loop.shutdown_default_executor(timeout)  # type: ignore[call-arg]

    if PY312:  # the timeout argument is new in 3.12
        # Not a negative or NaN timeout: whether the executor's threads are joined before
        # such a timeout expires is a race, on asyncio too. Not an infinite one: 3.12's
        # asyncio passes it to Thread.join, which raises OverflowError; 3.13's waits.
        case("shutdown_default_executor-timeout-str", lambda loop, env: shutdown_executor(loop, env, "x"))

    # Name resolution. Every host here is numeric or invalid before any DNS lookup.
    def resolved(loop: Loop, env: Env, *args: Any, **kwargs: Any) -> Any:
        async def call() -> None:
            env.seen["result"] = await loop.getaddrinfo(*args, **kwargs)

        return call()

    case("getaddrinfo-host-int", lambda loop, env: resolved(loop, env, 123, 80))
    case("getaddrinfo-host-bytes-numeric", lambda loop, env: resolved(loop, env, b"127.0.0.1", 80))
    case("getaddrinfo-port-negative", lambda loop, env: resolved(loop, env, "127.0.0.1", -1))
    case("getaddrinfo-port-70000", lambda loop, env: resolved(loop, env, "127.0.0.1", 70000))
    case("getaddrinfo-port-huge", lambda loop, env: resolved(loop, env, "127.0.0.1", 2**70))
    case("getaddrinfo-port-float", lambda loop, env: resolved(loop, env, "127.0.0.1", 80.0))
    case("getaddrinfo-port-unknown-service", lambda loop, env: resolved(loop, env, "127.0.0.1", "nosuchservice"))
    case("getaddrinfo-host-nul", lambda loop, env: resolved(loop, env, "a\0b", 80))
    case("getaddrinfo-host-label-too-long", lambda loop, env: resolved(loop, env, "a" * 64, 80))
    case("getaddrinfo-host-ipv4-out-of-range", lambda loop, env: resolved(loop, env, "256.1.1.1", 80))
    case("getaddrinfo-family-str", lambda loop, env: resolved(loop, env, "127.0.0.1", 80, family="x"))
    case(
        "getaddrinfo-family-mismatch",
        lambda loop, env: resolved(loop, env, "127.0.0.1", 80, family=socket.AF_INET6),
    )
    case("getaddrinfo-type-huge", lambda loop, env: resolved(loop, env, "127.0.0.1", 80, type=2**40))
    case("getaddrinfo-flags-negative", lambda loop, env: resolved(loop, env, "127.0.0.1", 80, flags=-1))
    case("getnameinfo-not-a-tuple", lambda loop, env: loop.getnameinfo("127.0.0.1"))
    case("getnameinfo-short-tuple", lambda loop, env: loop.getnameinfo(("127.0.0.1",)))
    case("getnameinfo-port-70000", lambda loop, env: loop.getnameinfo(("127.0.0.1", 70000)))
    case("getnameinfo-flags-str", lambda loop, env: loop.getnameinfo(("127.0.0.1", 80), "x"))

    # fd watching.
    for method in ("add_reader", "add_writer"):

        def add(loop: Loop, *args: Any, m: str = method) -> Any:
            return getattr(loop, m)(*args)

        case(f"{method}-str", lambda loop, env, add=add: add(loop, "x", noop))
        case(f"{method}-float", lambda loop, env, add=add: add(loop, 1.5, noop))
        case(f"{method}-negative-fd", lambda loop, env, add=add: add(loop, -1, noop))
        case(f"{method}-huge-fd", lambda loop, env, add=add: add(loop, 2**70, noop))
        case(f"{method}-closed-socket", lambda loop, env, add=add: add(loop, env.closed(), noop))
        case(f"{method}-fd-not-open", lambda loop, env, add=add: add(loop, _unused_fd(), noop))
        case(f"{method}-regular-file", lambda loop, env, add=add: add(loop, env.file(), noop))
        case(f"{method}-fileno-returns-str", lambda loop, env, add=add: add(loop, _BadFileno(), noop))

        async def on_transport_fd(loop: Loop, env: Env, m: str = method) -> None:
            transport = await env.transport()
            getattr(loop, m)(transport.get_extra_info("socket").fileno(), noop)

        case(f"{method}-fd-of-a-transport", on_transport_fd)

    def watch_not_callable(loop: Loop, env: Env) -> None:
        sock = env.pair()
        loop.add_reader(sock, 1)
        env.later(lambda: loop.remove_reader(sock))

    case("add_reader-callback-not-callable", watch_not_callable)
    for method in ("remove_reader", "remove_writer"):
        case(f"{method}-str", lambda loop, env, m=method: getattr(loop, m)("x"))
        case(f"{method}-negative-fd", lambda loop, env, m=method: getattr(loop, m)(-1))
        case(f"{method}-closed-socket", lambda loop, env, m=method: getattr(loop, m)(env.closed()))
        case(f"{method}-not-watched", lambda loop, env, m=method: getattr(loop, m)(env.pair()))
        case(f"{method}-huge-fd", lambda loop, env, m=method: getattr(loop, m)(2**70))

    # Low-level socket operations. Blocking sockets get their data ready first: in
    # non-debug mode asyncio calls the blocking socket straight away.
    big = sys.maxsize
    sock_cases: dict[str, Callable[[Loop, Env], Any]] = {
        "sock_recv-closed": lambda loop, env: loop.sock_recv(env.closed(), 1),
        "sock_recv-not-a-socket": lambda loop, env: loop.sock_recv("x", 1),
        "sock_recv-ssl-socket": lambda loop, env: loop.sock_recv(env.ssl_sock(), 1),
        "sock_recv-negative-size": lambda loop, env: loop.sock_recv(env.pair(data=b"x"), -1),
        "sock_recv-size-str": lambda loop, env: loop.sock_recv(env.pair(data=b"x"), "1"),
        "sock_recv-size-maxsize": lambda loop, env: loop.sock_recv(env.pair(data=b"x"), big),
        "sock_recv-size-2**70": lambda loop, env: loop.sock_recv(env.pair(data=b"x"), 2**70),
        "sock_recv-blocking": lambda loop, env: loop.sock_recv(env.pair(blocking=True, data=b"x"), 1),
        "sock_recv_into-closed": lambda loop, env: loop.sock_recv_into(env.closed(), bytearray(1)),
        "sock_recv_into-bytes-buffer": lambda loop, env: loop.sock_recv_into(env.pair(data=b"x"), b"1"),
        "sock_recv_into-str-buffer": lambda loop, env: loop.sock_recv_into(env.pair(data=b"x"), "1"),
        "sock_recv_into-blocking": lambda loop, env: loop.sock_recv_into(
            env.pair(blocking=True, data=b"x"), bytearray(1)
        ),
        "sock_recvfrom-closed": lambda loop, env: loop.sock_recvfrom(env.closed(type=socket.SOCK_DGRAM), 1),
        "sock_recvfrom-negative-size": lambda loop, env: loop.sock_recvfrom(env.udp(data=b"x"), -1),
        "sock_recvfrom-size-maxsize": lambda loop, env: loop.sock_recvfrom(env.udp(data=b"x"), big),
        "sock_recvfrom-blocking": lambda loop, env: loop.sock_recvfrom(env.udp(blocking=True, data=b"x"), 1),
        "sock_recvfrom_into-nbytes-negative": lambda loop, env: loop.sock_recvfrom_into(
            env.udp(data=b"x"), bytearray(4), -1
        ),
        "sock_recvfrom_into-nbytes-past-buffer": lambda loop, env: loop.sock_recvfrom_into(
            env.udp(data=b"x"), bytearray(4), 8
        ),
        "sock_recvfrom_into-readonly-buffer": lambda loop, env: loop.sock_recvfrom_into(env.udp(data=b"x"), b"1234"),
        "sock_recvfrom_into-blocking": lambda loop, env: loop.sock_recvfrom_into(
            env.udp(blocking=True, data=b"x"), bytearray(4)
        ),
        "sock_sendall-closed": lambda loop, env: loop.sock_sendall(env.closed(), b"x"),
        "sock_sendall-str": lambda loop, env: loop.sock_sendall(env.pair(), "x"),
        "sock_sendall-int": lambda loop, env: loop.sock_sendall(env.pair(), 1),
        "sock_sendall-not-a-socket": lambda loop, env: loop.sock_sendall(object(), b"x"),
        "sock_sendall-ssl-socket": lambda loop, env: loop.sock_sendall(env.ssl_sock(), b"x"),
        "sock_sendall-blocking": lambda loop, env: loop.sock_sendall(env.pair(blocking=True), b"x"),
        "sock_sendall-unconnected": lambda loop, env: loop.sock_sendall(env.sock(), b"x"),
        "sock_sendto-closed": lambda loop, env: loop.sock_sendto(
            env.closed(type=socket.SOCK_DGRAM), b"x", ("127.0.0.1", 9)
        ),
        "sock_sendto-address-str": lambda loop, env: loop.sock_sendto(env.udp(), b"x", "nowhere"),
        "sock_sendto-port-70000": lambda loop, env: loop.sock_sendto(env.udp(), b"x", ("127.0.0.1", 70000)),
        "sock_sendto-oversized-datagram": lambda loop, env: loop.sock_sendto(
            env.udp(), b"x" * 70000, env.udp().getsockname()
        ),
        "sock_sendto-data-str": lambda loop, env: loop.sock_sendto(env.udp(), "x", env.udp().getsockname()),
        "sock_sendto-blocking": lambda loop, env: loop.sock_sendto(
            env.udp(blocking=True), b"x", env.udp().getsockname()
        ),
        "sock_connect-closed": lambda loop, env: loop.sock_connect(env.closed(), env.listening_addr()),
        "sock_connect-address-int": lambda loop, env: loop.sock_connect(env.sock(), 1),
        "sock_connect-port-negative": lambda loop, env: loop.sock_connect(env.sock(), ("127.0.0.1", -1)),
        "sock_connect-port-huge": lambda loop, env: loop.sock_connect(env.sock(), ("127.0.0.1", 2**70)),
        "sock_connect-port-unknown-service": lambda loop, env: loop.sock_connect(
            env.sock(), ("127.0.0.1", "nosuchservice")
        ),
        "sock_connect-unix-missing-path": lambda loop, env: loop.sock_connect(
            env.sock(socket.AF_UNIX), env.path("missing")
        ),
        "sock_connect-unix-path-too-long": lambda loop, env: loop.sock_connect(
            env.sock(socket.AF_UNIX), "/tmp/" + "a" * 200
        ),
        "sock_connect-ssl-socket": lambda loop, env: loop.sock_connect(env.ssl_sock(), env.listening_addr()),
        "sock_connect-blocking": lambda loop, env: loop.sock_connect(env.sock(blocking=True), env.listening_addr()),
        "sock_accept-closed": lambda loop, env: loop.sock_accept(env.closed()),
        "sock_accept-not-listening": lambda loop, env: loop.sock_accept(env.sock()),
        "sock_accept-datagram": lambda loop, env: loop.sock_accept(env.udp()),
        "sock_accept-blocking": lambda loop, env: loop.sock_accept(env.listener(blocking=True, pending=True)),
        "sock_sendfile-closed": lambda loop, env: loop.sock_sendfile(env.closed(), env.file()),
        "sock_sendfile-text-file": lambda loop, env: loop.sock_sendfile(env.pair(), env.file("r")),
        "sock_sendfile-closed-file": lambda loop, env: loop.sock_sendfile(env.pair(), env.closed_file()),
        "sock_sendfile-datagram": lambda loop, env: loop.sock_sendfile(env.udp(), env.file()),
        "sock_sendfile-offset-negative": lambda loop, env: loop.sock_sendfile(env.pair(), env.file(), -1),
        "sock_sendfile-offset-str": lambda loop, env: loop.sock_sendfile(env.pair(), env.file(), "x"),
        "sock_sendfile-count-zero": lambda loop, env: loop.sock_sendfile(env.pair(), env.file(), 0, 0),
        "sock_sendfile-count-float": lambda loop, env: loop.sock_sendfile(env.pair(), env.file(), 0, 1.5),
        "sock_sendfile-not-a-file": lambda loop, env: loop.sock_sendfile(env.pair(), object()),
        "sock_sendfile-offset-past-end": lambda loop, env: loop.sock_sendfile(env.pair(), env.file(), 10**6),
        "sock_sendfile-blocking": lambda loop, env: loop.sock_sendfile(env.pair(blocking=True), env.file()),
    }
    for id, call in sock_cases.items():
        case(id, call)
        if "blocking" in id or "closed" in id:
            # asyncio checks the blocking mode in debug mode only.
            case(f"{id}-debug", call, debug=True)

    # Connections, servers, endpoints.
    case("create_connection-host-int", lambda loop, env: loop.create_connection(Proto, 123, 80))
    case("create_connection-port-negative", lambda loop, env: loop.create_connection(Proto, "127.0.0.1", -1))
    case("create_connection-port-70000", lambda loop, env: loop.create_connection(Proto, "127.0.0.1", 70000))
    case("create_connection-port-str", lambda loop, env: loop.create_connection(Proto, "127.0.0.1", "nosuchservice"))
    case("create_connection-closed-sock", lambda loop, env: loop.create_connection(Proto, sock=env.closed()))
    case("create_connection-sock-not-a-socket", lambda loop, env: loop.create_connection(Proto, sock="x"))
    case("create_connection-ssl-int", lambda loop, env: loop.create_connection(Proto, sock=env.sock(), ssl=1))
    case(
        "create_connection-local-addr-str",
        lambda loop, env: loop.create_connection(Proto, *env.listening_addr(), local_addr="x"),
    )
    case(
        "create_connection-family-str",
        lambda loop, env: loop.create_connection(Proto, *env.listening_addr(), family="x"),
    )
    case(
        "create_connection-happy-eyeballs-nan",
        lambda loop, env: loop.create_connection(Proto, *env.listening_addr(), happy_eyeballs_delay=math.nan),
    )
    case("create_server-host-int", lambda loop, env: loop.create_server(Proto, 123, 0))
    case("create_server-port-negative", lambda loop, env: loop.create_server(Proto, "127.0.0.1", -1))
    case("create_server-port-70000", lambda loop, env: loop.create_server(Proto, "127.0.0.1", 70000))
    case("create_server-closed-sock", lambda loop, env: loop.create_server(Proto, sock=env.closed()))
    case("create_server-datagram-sock", lambda loop, env: loop.create_server(Proto, sock=env.udp()))
    case("create_server-ssl-true", lambda loop, env: loop.create_server(Proto, "127.0.0.1", 0, ssl=True))
    case("create_server-ssl-str", lambda loop, env: loop.create_server(Proto, "127.0.0.1", 0, ssl="x"))
    case(
        "create_server-handshake-timeout-negative",
        lambda loop, env: loop.create_server(
            Proto, "127.0.0.1", 0, ssl=ssl.create_default_context(), ssl_handshake_timeout=-1
        ),
    )
    case("create_unix_server-path-int", lambda loop, env: loop.create_unix_server(Proto, 123))
    case("create_unix_server-path-too-long", lambda loop, env: loop.create_unix_server(Proto, "/tmp/" + "a" * 200))
    # Not create_unix_server with a NUL in the path: asyncio leaks its socket there (its
    # os.stat of the path raises ValueError, which only OSError handlers surround).
    case("create_unix_connection-path-nul", lambda loop, env: loop.create_unix_connection(Proto, env.path("a\0b")))
    case(
        "create_unix_server-missing-directory",
        lambda loop, env: loop.create_unix_server(Proto, env.path("missing/s")),
    )
    case(
        "create_unix_server-path-and-sock",
        lambda loop, env: loop.create_unix_server(Proto, env.path(), sock=env.sock(socket.AF_UNIX)),
    )
    case("create_unix_server-tcp-sock", lambda loop, env: loop.create_unix_server(Proto, sock=env.sock()))
    case("create_unix_connection-path-int", lambda loop, env: loop.create_unix_connection(Proto, 123))
    case(
        "create_unix_connection-missing-path",
        lambda loop, env: loop.create_unix_connection(Proto, env.path("missing")),
    )
    case(
        "create_unix_connection-path-too-long",
        lambda loop, env: loop.create_unix_connection(Proto, "/tmp/" + "a" * 200),
    )
    case(
        "create_unix_connection-tcp-sock",
        lambda loop, env: loop.create_unix_connection(Proto, sock=env.sock()),
    )
    case(
        "create_datagram_endpoint-local-addr-str",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, local_addr="x"),
    )
    case(
        "create_datagram_endpoint-port-70000",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, local_addr=("127.0.0.1", 70000)),
    )
    case(
        "create_datagram_endpoint-reuse-address",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, local_addr=("127.0.0.1", 0), reuse_address=True),
    )
    case(
        "create_datagram_endpoint-stream-sock",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, sock=env.sock()),
    )
    case(
        "create_datagram_endpoint-closed-sock",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, sock=env.closed(type=socket.SOCK_DGRAM)),
    )
    case(
        "create_datagram_endpoint-family-str",
        lambda loop, env: loop.create_datagram_endpoint(DatagramProto, family="x"),
    )
    case("connect_accepted_socket-str", lambda loop, env: loop.connect_accepted_socket(Proto, "x"))
    case("connect_accepted_socket-datagram", lambda loop, env: loop.connect_accepted_socket(Proto, env.udp()))
    case("connect_accepted_socket-closed", lambda loop, env: loop.connect_accepted_socket(Proto, env.closed()))
    case(
        "connect_accepted_socket-ssl-socket",
        lambda loop, env: loop.connect_accepted_socket(Proto, env.ssl_sock()),
    )

    async def with_transport(loop: Loop, env: Env, call: Callable[[asyncio.Transport], Any]) -> Any:
        return await call(await env.transport())

    ctx = ssl.create_default_context
    case("start_tls-transport-str", lambda loop, env: loop.start_tls("x", Proto(), ctx()))
    case(
        "start_tls-context-str",
        lambda loop, env: with_transport(loop, env, lambda t: loop.start_tls(t, Proto(), "x")),
    )
    case(
        "start_tls-handshake-timeout-negative",
        lambda loop, env: with_transport(
            loop, env, lambda t: loop.start_tls(t, Proto(), ctx(), server_hostname="h", ssl_handshake_timeout=-1)
        ),
    )
    case("sendfile-transport-str", lambda loop, env: loop.sendfile("x", env.file()))
    for name, kwargs in {
        "text-file": {"file": "text"},
        "offset-negative": {"offset": -1},
        "count-zero": {"count": 0},
        "count-str": {"count": "x"},
        "not-a-file": {"file": "object"},
    }.items():

        async def sendfile(loop: Loop, env: Env, kwargs: dict[str, Any] = kwargs) -> Any:
            kw = dict(kwargs)
            kind = kw.pop("file", "binary")
            file = {"binary": env.file, "text": lambda: env.file("r"), "object": object}[kind]()
            return await loop.sendfile(await env.transport(), file, **kw)

        case(f"sendfile-{name}", sendfile)

    # Pipes and subprocesses. Only the last two spawn anything (a program that does not
    # exist, and a working directory that does not exist: both fail in the child).
    # Only a regular file for the pipes: given an object without a working fileno() (a
    # str, an int, a closed file), asyncio's pipe transports fail in __del__ after their
    # constructor raised (AttributeError: no '_closing'), so there is no outcome to copy.
    case("connect_read_pipe-regular-file", lambda loop, env: loop.connect_read_pipe(Proto, env.file()))
    case("connect_write_pipe-regular-file", lambda loop, env: loop.connect_write_pipe(Proto, env.file("wb")))
    exe = sys.executable
    for name, kwargs in {
        "shell-true": {"shell": True},
        "bufsize": {"bufsize": 1},
        "universal-newlines": {"universal_newlines": True},
        "text": {"text": True},
        "encoding": {"encoding": "utf-8"},
        "errors": {"errors": "strict"},
        "stdin-str": {"stdin": "x"},
        "env-value-int": {"env": {"A": 1}},
    }.items():
        case(
            f"subprocess_exec-{name}",
            lambda loop, env, kw=kwargs: loop.subprocess_exec(SubprocessProto, exe, "-c", "pass", **kw),
        )
    case("subprocess_exec-program-int", lambda loop, env: loop.subprocess_exec(SubprocessProto, 123))
    case("subprocess_exec-arg-int", lambda loop, env: loop.subprocess_exec(SubprocessProto, exe, 1))
    case("subprocess_exec-program-nul", lambda loop, env: loop.subprocess_exec(SubprocessProto, "a\0b"))
    case("subprocess_shell-cmd-int", lambda loop, env: loop.subprocess_shell(SubprocessProto, 123))
    case("subprocess_shell-cmd-list", lambda loop, env: loop.subprocess_shell(SubprocessProto, ["true"]))
    case("subprocess_shell-shell-false", lambda loop, env: loop.subprocess_shell(SubprocessProto, "true", shell=False))
    case("subprocess_shell-bufsize", lambda loop, env: loop.subprocess_shell(SubprocessProto, "true", bufsize=1))
    case(
        "subprocess_exec-missing-program",
        lambda loop, env: loop.subprocess_exec(SubprocessProto, env.path("missing-program")),
    )
    case(
        "subprocess_exec-missing-cwd",
        lambda loop, env: loop.subprocess_exec(SubprocessProto, exe, "-c", "pass", cwd=env.path("missing")),
    )

    # Signals.
    for name, sig in {
        "str": "x",
        "zero": 0,
        "negative": -1,
        "out-of-range": 999,
        "huge": 2**70,
        "float": float(signal.SIGUSR1),
    }.items():
        case(f"add_signal_handler-{name}", lambda loop, env, s=sig: loop.add_signal_handler(s, noop))
        case(f"remove_signal_handler-{name}", lambda loop, env, s=sig: loop.remove_signal_handler(s))
    case("add_signal_handler-sigkill", lambda loop, env: loop.add_signal_handler(signal.SIGKILL, noop))
    case("add_signal_handler-sigstop", lambda loop, env: loop.add_signal_handler(signal.SIGSTOP, noop))
    case(
        "add_signal_handler-coroutine-function",
        lambda loop, env: loop.add_signal_handler(signal.SIGUSR1, async_noop),
    )
    case(
        "add_signal_handler-coroutine-object",
        lambda loop, env: loop.add_signal_handler(signal.SIGUSR1, env.coro()),
    )

    def signal_not_callable(loop: Loop, env: Env) -> None:
        env.later(lambda: loop.remove_signal_handler(signal.SIGUSR1))
        loop.add_signal_handler(signal.SIGUSR1, 1)

    case("add_signal_handler-not-callable", signal_not_callable)
    case("remove_signal_handler-sigkill", lambda loop, env: loop.remove_signal_handler(signal.SIGKILL))
    case("remove_signal_handler-not-installed", lambda loop, env: loop.remove_signal_handler(signal.SIGUSR2))
    return cases


def _done_future(loop: Loop) -> asyncio.Future[Any]:
    # Stands in for a task; the factory's coroutine is closed by the env.
    fut = loop.create_future()
    fut.set_result(None)
    return fut


def _unused_fd() -> int:
    """An fd number that is not open now (the lowest free one, closed again)."""
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    return r


class _BadFileno:
    def fileno(self) -> str:
        return "x"


CASES: list[Case] = _cases()


# -- running a case ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one case did on one loop; two outcomes are equal when the loops behaved alike."""

    #: The exception class the call raised, or None if it succeeded.
    raised: type[BaseException] | None
    #: Its message, with object addresses and fd numbers masked: asyncio's messages are
    #: part of its API (programs and tests match on them), so looplet's must be the same.
    message: str
    #: Warning categories the call issued (ResourceWarnings apart: see `leaks`).
    warned: tuple[str, ...]
    #: What the exception handler was given, during the call and the probe.
    errors: tuple[str, ...]
    #: What a default exception handler logged (the first line of each report): where a
    #: custom handler itself failed.
    logged: tuple[str, ...]
    #: What the case recorded (timers fired, addresses resolved).
    seen: tuple[tuple[str, Any], ...]
    #: The exception class the probe raised (the loop could not run), or None.
    probe: type[BaseException] | None
    #: Whether the loop ran again once the case's leftovers (a timer) were cancelled.
    recovered: bool
    #: ResourceWarnings (an object the loop made was left unclosed): never expected.
    leaks: tuple[str, ...] = field(compare=False)

    def label(self) -> str:
        """A short summary for the test id."""
        parts = [self.raised.__name__ if self.raised else "ok"]
        if self.warned:
            parts.append("warns:" + ",".join(self.warned))
        if self.errors:
            parts.append("handler:" + ",".join(self.errors))
        if self.probe:
            parts.append("probe:" + self.probe.__name__)
        if not self.recovered:
            parts.append("unrecovered")
        return "/".join(parts)


#: Ticks the probe gets to finish once the case's leftovers are gone: its reader has a
#: byte waiting, so it needs two or three; more means the loop does not recover.
_RECOVERY_TICKS = 20


def _probe(loop: Loop) -> tuple[type[BaseException] | None, asyncio.Task[bytes], list[socket.socket]]:
    """Check that the loop still runs a callback and a poll: run a call_soon and a reader
    on a socket with a byte waiting. Returns what the run raised (None: it worked), the
    probe's task (unfinished if it raised) and the sockets to close."""
    a, b = socket.socketpair()
    b.send(b"x")
    ran: list[str] = []

    async def main() -> bytes:
        fut = loop.create_future()
        loop.call_soon(ran.append, "call_soon")
        loop.add_reader(a, lambda: fut.done() or fut.set_result(a.recv(1)))
        try:
            return await fut
        finally:
            loop.remove_reader(a)

    # Not loop.create_task: a case may have left a task factory behind.
    task = asyncio.Task(main(), loop=loop)
    try:
        assert loop.run_until_complete(task) == b"x"
        assert ran == ["call_soon"]
        return None, task, [a, b]
    except Exception as exc:
        return type(exc), task, [a, b]


def _finish(loop: Loop, task: asyncio.Task[Any]) -> bool:
    """Tick the loop until `task` is done; False if it never gets there.

    One tick at a time (stop() before run_forever() runs exactly one), not
    run_until_complete: when asyncio's loop raised out of a tick, a done callback that
    calls stop() may still be queued, and would end a run_until_complete early.
    """
    for _ in range(_RECOVERY_TICKS):
        if task.done():
            return True
        loop.stop()
        with contextlib.suppress(Exception):
            loop.run_forever()
    if task.done():
        return True
    # The loop is broken for good: drop the probe without running it (no warning).
    task._log_destroy_pending = False  # type: ignore[attr-defined]  # asyncio's own Task attribute
    task.get_coro().close()  # type: ignore[union-attr]
    return False


def _clear_frames(exc: BaseException | None) -> None:
    """Drop the locals of the frames an exception went through, and of its chain.

    A half-made object (a transport whose constructor raised) is often alive only in
    those frames, in a reference cycle through the exception; clearing them frees it
    now, so its ResourceWarning is seen here rather than in some later test.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def masked(message: str) -> str:
    """`message` without what differs from run to run or names each loop's own code:
    object addresses, fd numbers, ports, temporary paths, source lines, transport classes."""
    message = re.sub(r"0x[0-9a-fA-F]+", "0x?", message)
    message = re.sub(r"(fd=|File descriptor )\d+", r"\1?", message)
    message = re.sub(re.escape(tempfile.gettempdir()) + r"/[^/'\"]+", "TMP", message)
    # In debug mode a future's repr says where it was made: inside each loop's own code.
    message = re.sub(r"created at \S+:\d+", "created at ?", message)
    # A transport's repr names its class, which is each loop's own.
    message = re.sub(r"<\w*Transport .*>", "<transport>", message)
    return re.sub(r"(\('127\.0\.0\.1', )\d+\)", r"\1?)", message)


class _Logged(logging.Handler):
    """The first line of each report a default exception handler logged."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().splitlines()[0])


def run_case(loop: Loop, case: Case) -> Outcome:
    """Run `case` on `loop`, then the probe, then clean up; return what happened."""
    env = Env(loop)
    loop.set_exception_handler(env.handler)
    logged = _Logged()
    logging.getLogger("asyncio").addHandler(logged)
    try:
        outcome = _run_case(loop, case, env)
    finally:
        logging.getLogger("asyncio").removeHandler(logged)
    return dataclasses.replace(outcome, logged=tuple(logged.lines))


def _run_case(loop: Loop, case: Case, env: Env) -> Outcome:
    debug = loop.get_debug()
    raised: type[BaseException] | None = None
    message = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if case.debug:
                loop.set_debug(True)
            if case.outside:
                env.keep(case.call(loop, env))
            else:

                async def call() -> None:
                    result = case.call(loop, env)
                    if inspect.isawaitable(result):
                        result = await result
                    env.keep(result)

                loop.run_until_complete(call())
        except Exception as exc:
            raised, message = type(exc), masked(str(exc))
            _clear_frames(exc)
        finally:
            loop.set_debug(debug)
    try:
        probe, task, sockets = _probe(loop)
    finally:
        env.close()
    recovered = _finish(loop, task)
    for sock in sockets:
        sock.close()
    loop.set_exception_handler(None)
    return Outcome(
        raised=raised,
        message=message,
        warned=tuple(sorted({w.category.__name__ for w in caught if not issubclass(w.category, ResourceWarning)})),
        errors=tuple(env.errors),
        logged=(),
        seen=tuple(sorted((k, _comparable(v)) for k, v in env.seen.items())),
        probe=probe,
        recovered=recovered,
        leaks=tuple(str(w.message) for w in caught if issubclass(w.category, ResourceWarning)),
    )


def _comparable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def close_loop(loop: Loop, recovered: bool) -> None:
    """Finish the loop as asyncio.run would, then close it; a loop a case broke for good
    can only be closed."""
    try:
        if recovered:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def asyncio_outcome(case: Case) -> Outcome:
    """What stock asyncio does with `case`: the reference looplet is held to."""
    # asyncio's class itself, not new_event_loop(): the policy may be looplet's.
    loop = asyncio.SelectorEventLoop()
    outcome = None
    try:
        outcome = run_case(loop, case)
        return outcome
    finally:
        close_loop(loop, outcome is not None and outcome.recovered)


#: The test module that runs each method's cases (a path under tests/): the module of
#: the code the method exercises.
OWNERS: dict[str, str] = {
    **dict.fromkeys(("call_soon", "call_soon_threadsafe", "call_later", "call_at"), "loop/test_callbacks.py"),
    **dict.fromkeys(("create_task", "set_task_factory"), "loop/test_tasks.py"),
    **dict.fromkeys(("run_until_complete", "run_forever", "close"), "loop/test_lifecycle.py"),
    **dict.fromkeys(("add_reader", "add_writer", "remove_reader", "remove_writer"), "loop/test_fds.py"),
    **dict.fromkeys(("set_exception_handler", "call_exception_handler"), "services/test_errors.py"),
    **dict.fromkeys(
        ("run_in_executor", "set_default_executor", "shutdown_default_executor"), "services/test_executor.py"
    ),
    **dict.fromkeys(("getaddrinfo", "getnameinfo"), "services/test_resolver.py"),
    **dict.fromkeys(
        (
            "sock_recv",
            "sock_recv_into",
            "sock_recvfrom",
            "sock_recvfrom_into",
            "sock_sendall",
            "sock_sendto",
            "sock_connect",
            "sock_accept",
        ),
        "services/test_sockio.py",
    ),
    **dict.fromkeys(("add_signal_handler", "remove_signal_handler"), "services/test_signals.py"),
    **dict.fromkeys(
        ("create_connection", "create_unix_connection", "connect_accepted_socket"), "endpoints/test_connect.py"
    ),
    **dict.fromkeys(("create_server", "create_unix_server"), "endpoints/test_serve.py"),
    "create_datagram_endpoint": "endpoints/test_datagram.py",
    "start_tls": "endpoints/test_tls.py",
    **dict.fromkeys(("sock_sendfile", "sendfile"), "endpoints/test_sendfile.py"),
    **dict.fromkeys(("subprocess_exec", "subprocess_shell"), "endpoints/test_processes.py"),
    **dict.fromkeys(("connect_read_pipe", "connect_write_pipe"), "transports/test_pipe.py"),
}

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _owners_run_the_test() -> None:
    """Every case has an owner, and every owner runs the test: a case nobody collects
    fails the collection of every module that imports this one."""
    unowned = sorted({case.id.split("-")[0] for case in CASES} - set(OWNERS))
    assert not unowned, f"bad-input cases with no test module in OWNERS: {unowned}"
    for owner in sorted(set(OWNERS.values())):
        with open(os.path.join(TESTS_DIR, owner), encoding="utf-8") as f:
            source = f.read()
        assert "test_bad_input_fails_as_on_asyncio" in source and "pytest_generate_tests" in source, (
            f"tests/{owner} does not import test_bad_input_fails_as_on_asyncio and pytest_generate_tests from bad_input"
        )


_owners_run_the_test()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize test_bad_input_fails_as_on_asyncio in the module that imports it with
    the cases of the methods that module owns (`OWNERS`)."""
    # Computed at collection, on this Python and in this debug mode, never written down.
    if metafunc.function is not test_bad_input_fails_as_on_asyncio:
        return
    here = os.path.relpath(str(metafunc.definition.path), TESTS_DIR).replace(os.sep, "/")
    params = []
    for case in CASES:
        if OWNERS[case.id.split("-")[0]] != here:
            continue
        expected = asyncio_outcome(case)
        params.append(pytest.param(case, expected, id=f"{case.id}->{expected.label()}"))
    metafunc.parametrize(("case", "expected"), params)


# -- the test ------------------------------------------------------------------------------

#: Where looplet does not behave as asyncio yet: case id -> (on this Python, reason).
LOOPLET_BUGS: dict[str, tuple[bool, str]] = {
    # 3.13.0-3.13.2 call set_name() as looplet does (gh-130033); 3.13.3 on hands the name
    # to the factory instead, which looplet does not do yet.
    "set_task_factory-returns-future-with-name": (
        (3, 13, 3) <= sys.version_info < (3, 14),
        "when the task a factory made has no set_name(), 3.13.3+ passes the name to the factory (as 3.14+ "
        "does, and looplet with it); on 3.13 looplet calls set_name() and raises AttributeError; "
        "looplet calls set_name() and raises AttributeError",
    ),
}


#: Where the message is not asyncio's but Python's own, naming asyncio's internals (a
#: comparison inside its timer heap, a method's qualified name): case id -> why. Only the
#: exception class is compared for these.
MESSAGE_NOT_PROMISED: dict[str, str] = {
    **{
        case_id: "the TypeError of comparing a bad deadline with a float, raised wherever each loop compares"
        for case_id in ("call_at-when-str", "call_later-delay-complex", "call_at-when-complex")
    },
    "shutdown_default_executor-timeout-str": (
        "the TypeError of arithmetic on a bad timeout, raised where each loop does it"
    ),
    "create_datagram_endpoint-reuse-address": "Python's message for an unknown keyword names the defining class",
}


#: The reactor looplet's loops use here (CI reruns the suite with LOOPLET_REACTOR=poll).
REACTOR = os.environ.get("LOOPLET_REACTOR") or available_reactors()[0]
#: Cases whose outcome on asyncio is epoll's, the selector asyncio picks here: case id -> why.
EPOLL_ONLY: dict[str, str] = {
    f"{method}-regular-file": "epoll refuses a regular file (EPERM), poll(2) and kqueue accept one as always ready"
    for method in ("add_reader", "add_writer")
}


def test_bad_input_fails_as_on_asyncio(
    leakcheck: Any, loop_errors: Any, case: Case, expected: Outcome, request: pytest.FixtureRequest
) -> None:
    # Only looplet runs here: the expected outcome is stock asyncio's own run of the case,
    # made at collection; running asyncio again would compare asyncio with itself.
    # Not the `loop` fixture: a case that breaks a loop for good (as some break asyncio's
    # until their timer is cancelled) must still let the loop be closed, and leak-checked.
    if case.id in EPOLL_ONLY and REACTOR != "epoll":
        pytest.skip(
            f"the outcome is the epoll reactor's, and looplet runs on the {REACTOR} reactor: {EPOLL_ONLY[case.id]}"
        )
    bug = LOOPLET_BUGS.get(case.id)
    if bug is not None and bug[0]:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"looplet bug: {bug[1]}"))
    loop = looplet.new_event_loop()
    outcome = None
    try:
        outcome = run_case(loop, case)
        # Compared through the outcome's `logged`, so taken here.
        loop_errors.take_all()
        if case.id in MESSAGE_NOT_PROMISED:
            outcome = dataclasses.replace(outcome, message=expected.message)
        assert outcome == expected, f"asyncio: {expected}, looplet: {outcome}"
        assert not outcome.leaks, f"left unclosed: {outcome.leaks}"
        if outcome.raised is not None and expected.message:
            assert outcome.message, f"{outcome.raised.__name__} without a message"
        # Whatever the call did, the loop is neither closed nor left running, and runs.
        assert not loop.is_closed()
        assert not loop.is_running()
        if outcome.recovered:
            assert loop.run_until_complete(asyncio.sleep(0, "still runs")) == "still runs"
    finally:
        close_loop(loop, outcome is not None and outcome.recovered)
