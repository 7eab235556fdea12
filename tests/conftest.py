"""Shared fixtures: every behavioural test runs on stock asyncio and on looplet.

`loop_factory` is parametrized over the two loops (ids `[asyncio]` and `[looplet]`);
a test that passes on `[asyncio]` and fails on `[looplet]` points at looplet. The
`[asyncio]` loop is built from asyncio's own loop class, never through the event-loop
policy, so looplet's pytest plugin (`--looplet`) or an installed policy cannot turn it
into a looplet loop; every loop a factory makes is checked to be the kind its id says,
and so is one of each at the start of the session.

`loop` creates one loop, hands it to the test, and at teardown finishes it as
`asyncio.run` would (async generators, default executor), closes it, and checks
that nothing leaked: fds, threads, child processes (running or zombie), signal handlers, the signal wakeup fd, the
running-loop slot, async-generator hooks and coroutine origin tracking.
`leakcheck` runs the same checks around code that makes its own loops
(`asyncio.run`, `looplet.run`, ...).

Every test, on any loop it makes, fails on a report to a default exception handler
that it did not expect: a callback that raised, a task destroyed while pending, an
exception never retrieved. A test that expects reports asks for `loop_errors` and takes
each one it expects (`loop_errors.take(...)`); whatever is left fails the test.

Smaller fixtures for tests of several modules: sockets (`socketpair`, `tcp_listener`,
`tcp_client`, `udp_pair`), `run`, and `loop_sleep`, which tells when the loop's thread
is asleep in its poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import looplet

if TYPE_CHECKING:
    from support import SleepProbe

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    # asyncio's class itself: asyncio.new_event_loop() asks the policy, which
    # looplet.install() and `pytest --looplet` replace.
    "asyncio": asyncio.SelectorEventLoop,
    "looplet": looplet.new_event_loop,
}

# How long teardown waits for threads that a closed loop told to stop (not a timing
# assertion: threads that are still alive after this are reported as leaked).
_THREAD_JOIN_TIMEOUT = 30.0

# SIGALRM belongs to pytest-timeout; SIGKILL/SIGSTOP cannot be queried.
_IGNORED_SIGNALS = {signal.SIGALRM, signal.SIGKILL, signal.SIGSTOP}


#: The skips a run with --no-skips accepts: a feature this Python lacks (the reason names
#: the version), or an expectation that belongs to another reactor backend.
ALLOWED_SKIP = re.compile(r"\b3\.\d+\b|\breactor\b")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-skips",
        action="store_true",
        default=os.environ.get("LOOPLET_NO_SKIPS") == "1",
        help="fail every test skipped for another reason than a Python version or a reactor backend "
        "(for CI, which installs every optional dependency; also LOOPLET_NO_SKIPS=1)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and item.config.getoption("no_skips"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if not ALLOWED_SKIP.search(reason):
            report.outcome = "failed"
            report.longrepr = (
                f"skipped, which --no-skips does not allow (a dependency or facility is missing): {reason}"
            )
    return report


def check_loop_kind(kind: str, loop: asyncio.AbstractEventLoop) -> None:
    """Fail unless `loop` is the loop that the id `[kind]` names."""
    ok = type(loop) is asyncio.SelectorEventLoop if kind == "asyncio" else isinstance(loop, looplet.EventLoop)
    if not ok:
        cls = type(loop)
        raise AssertionError(
            f"the [{kind}] loop factory made a {cls.__module__}.{cls.__qualname__}: "
            f"tests with the id [{kind}] would not run on the loop their id names"
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once per run, before any test: a run whose [asyncio] tests would compare looplet
    # with itself must not report a single pass.
    for kind, factory in LOOP_FACTORIES.items():
        loop = factory()
        try:
            check_loop_kind(kind, loop)
        except AssertionError as exc:
            raise pytest.UsageError(str(exc)) from None
        finally:
            loop.close()


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio, when installed, warns at configure time that its option
    # asyncio_default_fixture_loop_scope is unset, which filterwarnings=error turns into
    # an INTERNALERROR before any test runs. This suite does not use pytest-asyncio (its
    # tests drive their loops themselves). conftest hooks run before installed plugins'.
    warnings.filterwarnings("ignore", message='The configuration option "asyncio_default_fixture_loop_scope" is unset')


def open_fds() -> set[int]:
    """The fds open in this process now."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue  # the directory fd os.listdir itself used, closed by now
        fds.add(int(name))
    return fds


def child_processes() -> dict[int, str]:
    """This process's children now, pid -> state letter ('Z' for a zombie), from /proc."""
    me = os.getpid()
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == me:
            children[int(name)] = fields[0].decode()
    return children


def _signal_handlers() -> dict[int, Any]:
    handlers = {}
    for sig in signal.valid_signals():
        if sig in _IGNORED_SIGNALS:
            continue
        try:
            handlers[sig] = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
    return handlers


class LeakCheck:
    """A snapshot of process state, and the check that it came back."""

    def __init__(self) -> None:
        self.fds = open_fds()
        self.threads = set(threading.enumerate())
        self.handlers = _signal_handlers()
        self.agen_hooks = sys.get_asyncgen_hooks()
        self.origin_depth = sys.get_coroutine_origin_tracking_depth()
        self.children = set(child_processes())
        #: fds the test legitimately holds past the check (sockets it closes itself later).
        self.held: set[int] = set()
        self.thread_join_timeout = _THREAD_JOIN_TIMEOUT

    def hold(self, *objs: Any) -> None:
        """Exempt these fds (or objects with fileno()) from the fd check."""
        for obj in objs:
            self.held.add(obj if isinstance(obj, int) else obj.fileno())

    def check(self) -> None:
        problems = []
        new_threads = [t for t in threading.enumerate() if t not in self.threads]
        for thread in new_threads:
            thread.join(self.thread_join_timeout)
        alive = [t for t in new_threads if t.is_alive()]
        if alive:
            problems.append(f"threads left running: {alive}")
        new_children = {pid: state for pid, state in child_processes().items() if pid not in self.children}
        zombies = sorted(pid for pid, state in new_children.items() if state == "Z")
        running = sorted(pid for pid, state in new_children.items() if state != "Z")
        if zombies:
            problems.append(f"zombie processes left: {zombies}")
        if running:
            problems.append(f"child processes left running: {running}")
        leaked_fds = open_fds() - self.fds - self.held
        if leaked_fds:
            # Maybe only garbage in a reference cycle (a full collection is too slow
            # to run after every test): collect it, then look again.
            gc.collect()
            leaked_fds = open_fds() - self.fds - self.held
        if leaked_fds:
            details = {}
            for fd in sorted(leaked_fds):
                try:
                    details[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    details[fd] = "?"
            problems.append(f"fds left open: {details}")
        if threading.current_thread() is threading.main_thread():
            wakeup = signal.set_wakeup_fd(-1)
            if wakeup != -1:
                problems.append(f"signal wakeup fd left set: {wakeup}")
        changed = {
            signal.Signals(sig).name: handler
            for sig, handler in _signal_handlers().items()
            if handler != self.handlers.get(sig)
        }
        if changed:
            for name in changed:
                sig = getattr(signal, name)
                signal.signal(sig, self.handlers[sig])
            problems.append(f"signal handlers left installed: {changed}")
        if asyncio._get_running_loop() is not None:
            problems.append(f"running loop left set: {asyncio._get_running_loop()!r}")
            asyncio._set_running_loop(None)
        if sys.get_asyncgen_hooks() != self.agen_hooks:
            problems.append(f"async generator hooks left installed: {sys.get_asyncgen_hooks()}")
            sys.set_asyncgen_hooks(*self.agen_hooks)
        if sys.get_coroutine_origin_tracking_depth() != self.origin_depth:
            problems.append(f"coroutine origin tracking depth left at {sys.get_coroutine_origin_tracking_depth()}")
            sys.set_coroutine_origin_tracking_depth(self.origin_depth)
        assert not problems, "; ".join(problems)


@contextlib.contextmanager
def no_leaks() -> Iterator[LeakCheck]:
    """Check that the body leaves no fd, thread, signal handler, ... behind."""
    snapshot = LeakCheck()
    yield snapshot
    snapshot.check()


class LoopErrors(logging.Handler):
    """The reports that reached a default exception handler while a test ran.

    asyncio's default exception handler and looplet's log each report as an ERROR on
    the "asyncio" logger, and so do their last resorts for a custom handler that itself
    raised; this handler keeps them. A report is an error somewhere no caller could see
    it, so each one fails the test unless the test takes it.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.reports: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.reports.append(record)

    def take(
        self, message: str = "", exception: type[BaseException] | tuple[type[BaseException], ...] | None = None
    ) -> logging.LogRecord:
        """Remove and return the first report whose text matches the regular expression
        `message` and, if given, whose exception is an `exception`; fail if none does."""
        for record in self.reports:
            if not re.search(message, record.getMessage()):
                continue
            if exception is not None:
                exc = record.exc_info[1] if record.exc_info else None
                if not isinstance(exc, exception):
                    continue
            self.reports.remove(record)
            return record
        wanted = f"{message!r}" + (f" with {exception}" if exception is not None else "")
        pytest.fail(f"no exception-handler report matching {wanted}; reports: {self.describe() or 'none'}")

    def take_all(self) -> list[logging.LogRecord]:
        """Remove and return every report so far."""
        taken, self.reports = self.reports, []
        return taken

    def describe(self) -> str:
        lines = []
        for record in self.reports:
            exc = record.exc_info[1] if record.exc_info else None
            first = record.getMessage().splitlines()[0] if record.getMessage() else ""
            lines.append(f"{first!r}" + (f" ({type(exc).__name__}: {exc})" if exc is not None else ""))
        return "; ".join(lines)


@contextlib.contextmanager
def capture_loop_errors() -> Iterator[LoopErrors]:
    """Collect the reports logged while the body runs; fail if any is left untaken."""
    handler = LoopErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if handler.reports:
        pytest.fail(
            "unexpected exception-handler reports (take the expected ones with the loop_errors fixture): "
            + handler.describe(),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def loop_errors() -> Iterator[LoopErrors]:
    """Every test's exception-handler reports; a test that expects some takes them.

    Autouse, so it is set up before, and torn down after, the `loop` fixture: reports
    made while a loop is finished and closed count too.
    """
    with capture_loop_errors() as handler:
        yield handler


@pytest.fixture
def leak_checker() -> Callable[[], contextlib.AbstractContextManager[LeakCheck]]:
    """The context manager behind `leakcheck`, for tests of the checker itself."""
    return no_leaks


@pytest.fixture
def leakcheck() -> Iterator[LeakCheck]:
    """Fail the test if it leaves an fd, thread, signal handler, ... behind."""
    with no_leaks() as snapshot:
        yield snapshot


def checked_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The `[kind]` loop factory, checking each loop it makes with `check_loop_kind`."""
    make = LOOP_FACTORIES[kind]

    def factory() -> asyncio.AbstractEventLoop:
        loop = make()
        try:
            check_loop_kind(kind, loop)
        except AssertionError:
            loop.close()
            raise
        return loop

    factory.__qualname__ = factory.__name__ = f"new_{kind}_loop"
    return factory


@pytest.fixture(params=list(LOOP_FACTORIES), ids=list(LOOP_FACTORIES))
def loop_kind(request: pytest.FixtureRequest) -> str:
    """The loop this test id runs on: "asyncio" or "looplet"."""
    return str(request.param)


@pytest.fixture
def loop_factory(loop_kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Makes a new asyncio loop (asyncio's own class) or a new looplet loop."""
    return checked_factory(loop_kind)


@pytest.fixture
def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both checked factories by kind, for tests that need a loop of the other kind too."""
    return {kind: checked_factory(kind) for kind in LOOP_FACTORIES}


@pytest.fixture
def is_looplet(loop_kind: str) -> bool:
    """True under `[looplet]`. Behavioural tests expect the same on both loops: use this
    only to tell looplet's documented extras apart, never to excuse a difference."""
    return loop_kind == "looplet"


def finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does at exit, then close: for loops a test left open."""
    if loop.is_closed():
        return
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        assert not pending, f"test left tasks pending: {pending}"
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@pytest.fixture
def loop(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], leakcheck: LeakCheck
) -> Iterator[asyncio.AbstractEventLoop]:
    """A new loop of each kind; finished, closed and leak-checked at teardown."""
    the_loop = loop_factory()
    try:
        yield the_loop
    finally:
        assert not the_loop.is_running()
        finish_loop(the_loop)
        assert the_loop.is_closed()


@pytest.fixture
def socketpair(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected non-blocking AF_UNIX stream pair, closed before the loop's leak check."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        yield a, b


@pytest.fixture
def tcp_listener(loop: asyncio.AbstractEventLoop) -> Iterator[socket.socket]:
    """A non-blocking TCP socket listening on 127.0.0.1, closed before the leak check."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


@pytest.fixture
def tcp_client(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.setblocking(False)
        yield sock


@pytest.fixture
def udp_pair(loop):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        yield a, b


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """`run(coro)`: loop.run_until_complete(coro)."""
    return loop.run_until_complete


@pytest.fixture
def loop_sleep(leakcheck: Any) -> Iterator[SleepProbe]:
    """A SleepProbe on this (the loops') thread; skips where the kernel does not show
    poll sleeps. Made after the leak check's snapshot and closed before its check."""
    # Imported here: test_fixtures.py's inner runs copy this file without tests/support.py.
    from support import SleepProbe, poll_waits_visible

    if not poll_waits_visible():
        pytest.skip("/proc/<tid>/wchan does not show a thread asleep in poll here (kernel config)")
    probe = SleepProbe()
    try:
        yield probe
    finally:
        probe.close()
