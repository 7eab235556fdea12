"""looplet's pytest plugin: pytest-asyncio tests on looplet, and a virtual clock for them.

Registered through the `pytest11` entry point, so it loads wherever looplet is installed,
and it stays out of the way unless asked:

- `pytest --looplet` (or `looplet = true` in the ini options; `--no-looplet` overrides
  that) runs a project's existing pytest-asyncio tests on `looplet.EventLoop`, unchanged.
- the `virtual_clock` fixture drives the test's loop by a `looplet.testing.VirtualClock`.
- with `--looplet`, the header says so, and the summary counts the tests by the loop each
  one really ran on, so a project whose own configuration chose another loop sees it.

How `--looplet` takes effect. pytest-asyncio 1.x makes the loop of each loop scope in one
of two ways: with a factory from its `pytest_asyncio_loop_factories` hook, when a project
implements it (1.5 has the hook; 1.0 does not), or else from the event-loop policy its
session-scoped `event_loop_policy` fixture returns, which is asyncio's policy at the first
test (1.0: `policy.new_event_loop()`; 1.5: `asyncio.Runner` without a factory, which asks
the policy). So the plugin installs `looplet.EventLoopPolicy` in `pytest_configure`, before
any test, and puts the previous policy back in `pytest_unconfigure`. That works on every
1.x release, and it also reaches tests that call `asyncio.run()` or
`asyncio.new_event_loop()` themselves. The hook was not used: 1.0 lacks it, it is
`firstresult` (a project's own implementation and ours would shadow one another
silently), and it parametrizes every test, which on pytest < 8.4 appends `[looplet]` to
every test id. What still wins over the policy is a project's explicit choice, its own
loop-factory hook or `event_loop_policy` override: the plugin leaves it alone, and the
summary names the tests that ran on another loop. asyncio deprecates policies in 3.14
and removes them in 3.16; pytest-asyncio 1.x still makes its loops through them (it
silences their warnings itself), so on 3.14 and 3.15 the plugin installs the policy as
`python -m looplet` does, by the spellings asyncio itself uses, which do not warn: the
user asked for `--looplet`, not for a deprecated call. Where asyncio has no policies,
`--looplet` is a usage error that says so.

How `virtual_clock` reaches the test's loop. pytest-asyncio runs a test in the loop of
the test's loop scope (its `asyncio` mark's `loop_scope`, else the
`asyncio_default_test_loop_scope` ini option) and an async fixture in the loop of the
fixture's `loop_scope`; tests and fixtures of one loop scope share one loop. So there is
one tiny async fixture per loop scope, `_looplet_loop_<scope>`, returning
`asyncio.get_running_loop()`, and `virtual_clock`, a plain sync fixture (which neither
`asyncio_mode=strict` nor `auto` touches), requests the one of the test's loop scope and
so gets the test's own loop, through pytest-asyncio's public fixture API only. A loop
that is not a looplet loop (no `--looplet`) fails the test at setup with a message that
says what to do; it is not skipped, so a test meant to run on virtual time can never
count as passed without having run.

The invariant this module owns: unless enabled, the plugin changes nothing in the
process (asyncio's policy, the output, the tests); enabled, asyncio's policy is looplet's
from `pytest_configure` to `pytest_unconfigure`, and the previous policy afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, Final, Literal

import pytest

from looplet.loop import EventLoop
from looplet.policy import restore, use_looplet_policy
from looplet.testing import VirtualClock

try:
    from pytest_asyncio import fixture as asyncio_fixture
    from pytest_asyncio import is_async_test
except ImportError:  # looplet installed without pytest-asyncio: the option still sets the policy
    HAVE_PYTEST_ASYNCIO = False
else:
    HAVE_PYTEST_ASYNCIO = True

# pytest-asyncio's loop scopes, the same names as pytest's fixture scopes.
LoopScope = Literal["function", "class", "module", "package", "session"]
LOOP_SCOPES: Final[tuple[LoopScope, ...]] = ("function", "class", "module", "package", "session")

#: What the header and the summary call looplet's loop.
LOOPLET_LOOP: Final = "looplet.EventLoop"

# The loop a test's coroutine ran on, as the summary names it.
_RAN_ON: Final = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("looplet")
    group.addoption(
        "--looplet",
        action="store_true",
        dest="looplet",
        default=None,
        help="run pytest-asyncio tests (and asyncio.run) on looplet's event loop",
    )
    group.addoption(
        "--no-looplet",
        action="store_false",
        dest="looplet",
        help="do not, even if the looplet ini option says so",
    )
    parser.addini("looplet", type="bool", default=False, help="as --looplet")


def pytest_configure(config: pytest.Config) -> None:
    enabled = config.getoption("looplet")
    if enabled is None:
        enabled = config.getini("looplet")
    if not enabled:
        return
    session = LoopletSession(config)
    config.pluginmanager.register(session, "looplet-session")
    session.install_policy()


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    if isinstance(loop, EventLoop):
        return LOOPLET_LOOP
    cls = type(loop)
    return f"{cls.__module__}.{cls.__qualname__}"


class LoopletSession:
    """The enabled plugin's state and hooks: registered by `pytest_configure`, so that
    without `--looplet` none of them exists."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: asyncio's policy before ours, put back by pytest_unconfigure.
        self.previous_policy: asyncio.AbstractEventLoopPolicy | None = None
        self.installed = False
        #: Node ids of the pytest-asyncio tests that ran, by the loop each ran on.
        self.ran_on: dict[str, list[str]] = {}
        #: pytest-asyncio tests whose loop could not be seen (hypothesis tests).
        self.unseen: int = 0

    def install_policy(self) -> None:
        try:
            self.previous_policy = use_looplet_policy()
        except RuntimeError as exc:
            raise pytest.UsageError(f"--looplet: {exc}") from None
        self.installed = True

    def pytest_unconfigure(self) -> None:
        if self.installed:
            restore(self.previous_policy)

    # tryfirst: printed after pytest-asyncio's own "asyncio: mode=..." line.
    @pytest.hookimpl(tryfirst=True)
    def pytest_report_header(self) -> str:
        if self.config.pluginmanager.hasplugin("asyncio"):
            return f"looplet: pytest-asyncio tests run on {LOOPLET_LOOP} (asyncio's policy is looplet's)"
        return "looplet: asyncio's policy is looplet's (pytest-asyncio is not active)"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        if not (HAVE_PYTEST_ASYNCIO and is_async_test(item)):
            return (yield)
        original = item.obj
        if not inspect.iscoroutinefunction(original):
            # pytest-asyncio runs hypothesis tests' inner test, not item.obj.
            self.unseen += 1
            return (yield)
        # pytest-asyncio wraps item.obj when the test runs, so wrapping it here first
        # puts this note inside the test's own coroutine, on the loop the test really
        # runs on, with no extra step of that loop.
        item.obj = _noting_loop(item, original)
        try:
            return (yield)
        finally:
            item.obj = original

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        ran_on = item.stash.get(_RAN_ON, None)
        if call.when == "call" and ran_on is not None:
            # On the report, not only the item: pytest-xdist ships reports (with their
            # extra attributes) from the workers to the process that prints the summary.
            report.looplet_loop = ran_on  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        ran_on = getattr(report, "looplet_loop", None)
        if report.when == "call" and ran_on is not None:
            self.ran_on.setdefault(ran_on, []).append(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write = terminalreporter.write_line
        on_looplet = len(self.ran_on.get(LOOPLET_LOOP, []))
        elsewhere = {name: ids for name, ids in self.ran_on.items() if name != LOOPLET_LOOP}
        write(f"looplet: {_tests(on_looplet)} ran on {LOOPLET_LOOP}")
        for name, ids in sorted(elsewhere.items()):
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            write(
                f"looplet: {_tests(len(ids))} ran on {name}, not looplet's loop "
                f"(chosen by a pytest_asyncio_loop_factories hook or an event_loop_policy fixture): {shown}",
                yellow=True,
            )
        if self.unseen:
            write(f"looplet: {_tests(self.unseen)} ran on a loop the plugin cannot see (hypothesis tests)")


def _tests(n: int) -> str:
    return f"{n} pytest-asyncio test{'' if n == 1 else 's'}"


def _noting_loop(
    item: pytest.Item, test: Callable[..., Coroutine[Any, Any, object]]
) -> Callable[..., Coroutine[Any, Any, object]]:
    @functools.wraps(test)
    async def run_noting_loop(*args: Any, **kwargs: Any) -> object:
        item.stash[_RAN_ON] = _loop_name(asyncio.get_running_loop())
        return await test(*args, **kwargs)

    return run_noting_loop


# -- the virtual clock ----------------------------------------------------------------


def _test_loop_scope(item: pytest.Item) -> LoopScope:
    # pytest-asyncio's rule: the closest asyncio mark's loop_scope (or its deprecated
    # `scope`), else the default test loop scope.
    marker = item.get_closest_marker("asyncio")
    scope = (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")) if marker is not None else None
    scope = scope or item.config.getini("asyncio_default_test_loop_scope")
    if scope not in LOOP_SCOPES:
        pytest.fail(f"virtual_clock: {item.nodeid} has the unknown loop scope {scope!r}", pytrace=False)
    return scope  # type: ignore[no-any-return]  # checked against LOOP_SCOPES just above


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> Iterator[VirtualClock]:
    """A `looplet.testing.VirtualClock` driving the loop the test runs on.

    Idle time is jumped over: `await asyncio.sleep(3600)` returns at once, with
    `loop.time()` exactly 3600 s later, and timeouts fire in deadline order; while a
    thread, a child or an fd may still deliver, time passes for real (see
    `looplet.testing`). The clock
    starts at the loop's current time, so timers already pending keep their deadlines;
    at teardown the loop gets its previous clock back (on a loop shared with later tests,
    `loop.time()` is then the real clock again, and timers left pending keep their
    virtual deadlines). Needs pytest-asyncio and the test on looplet's loop
    (`pytest --looplet`); otherwise the test fails at setup, saying so.
    """
    item = request.node
    if not (HAVE_PYTEST_ASYNCIO and request.config.pluginmanager.hasplugin("asyncio")):
        pytest.fail("virtual_clock needs pytest-asyncio (pip install pytest-asyncio)", pytrace=False)
    if not (isinstance(item, pytest.Item) and is_async_test(item)):
        pytest.fail(
            f"virtual_clock: {request.node.nodeid} is not a test pytest-asyncio runs: make it an "
            "async def test, marked @pytest.mark.asyncio unless asyncio_mode = auto",
            pytrace=False,
        )
    loop: asyncio.AbstractEventLoop = request.getfixturevalue(f"_looplet_loop_{_test_loop_scope(item)}")
    if not isinstance(loop, EventLoop):
        pytest.fail(
            f"virtual_clock needs the test to run on {LOOPLET_LOOP}, but it runs on "
            f"{_loop_name(loop)}: run pytest with --looplet (or set looplet = true in the "
            "pytest ini options)",
            pytrace=False,
        )
    previous = loop.get_clock()
    clock = VirtualClock(start=loop.time())
    loop.set_clock(clock)
    try:
        yield clock
    finally:
        loop.set_clock(previous)


def _loop_fixture(scope: LoopScope) -> object:
    # One per loop scope: run by pytest-asyncio in that scope's loop, in either mode.
    @asyncio_fixture(loop_scope=scope, name=f"_looplet_loop_{scope}")
    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    return running_loop


if HAVE_PYTEST_ASYNCIO:
    # pytest finds a plugin's fixtures among its module globals.
    for _scope in LOOP_SCOPES:
        globals()[f"_looplet_loop_{_scope}"] = _loop_fixture(_scope)
