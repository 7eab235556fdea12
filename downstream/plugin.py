"""The pytest plugin every downstream test run loads (`-p downstream.plugin`).

Role: inside a project's test process, choose the loop and record what happened.
The runner (downstream/cli.py) sets the environment:

- `DOWNSTREAM_LOOP`: `asyncio` (change nothing) or `looplet` (swap the loop, below);
- `DOWNSTREAM_RESULTS`: a JSON-lines file this plugin appends to: one `start` record
  (where the project and looplet were imported from), one `test` record per test as
  soon as the test is done (so a run killed half-way still leaves its results), and
  one `done` record at the end of the session;
- `DOWNSTREAM_MODULE`: the project's importable name, whose origin the `start` record
  gives, so the runner can check that the installed wheel was tested, not the sdist's
  copy of the source;
- `DOWNSTREAM_DESELECT`: comma-separated parameter ids (anyio's `trio` backend, say);
  a test whose parameter ids include one of them is deselected, on both loops alike;
- `DOWNSTREAM_ONLY` (optional): a file of test ids, one a line; every other test is
  deselected (the runner's rerun of the tests that failed on looplet only).

How the loop is swapped on `looplet`:

- asyncio's policy becomes looplet's (`looplet.install()`) in `pytest_configure`, before
  any test: every `asyncio.new_event_loop()`, `asyncio.run()` and `asyncio.Runner()`
  without a loop factory then makes a looplet loop. aiohttp's `loop` fixture (its
  `pyloop` factory is `asyncio.new_event_loop`), `IsolatedAsyncioTestCase` and the
  tests that make loops themselves are reached this way.
- anyio's pytest plugin takes the loop from the `anyio_backend` fixture's options:
  `("asyncio", {"loop_factory": f})` runs the test in `asyncio.Runner(loop_factory=f)`.
  That is anyio's own, documented way to choose the loop, so the value of every
  `anyio_backend` fixture that names the asyncio backend without a loop factory gets
  `loop_factory=looplet.new_event_loop` added; a backend with a factory of its own
  (anyio's `asyncio+eager`, which calls `asyncio.new_event_loop()`) is left to the
  policy.

How the swap is verified: each coroutine test function is wrapped, when it runs, so
that its first step records the class of `asyncio.get_running_loop()`: the loop the
test body really ran on, whoever made it. The runner fails a looplet run in which any
test ran on another loop (or none was seen at all), and an asyncio run in which any
test ran on anything but asyncio's own loop.

The invariant this module owns: with `DOWNSTREAM_LOOP=asyncio` it changes nothing but
deselection and the wrapper that records the loop; every test the session reports gets
exactly one `test` record, whatever its phases did.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Coroutine, Generator
from typing import IO, Any, Final

import pytest

ENV_LOOP: Final = "DOWNSTREAM_LOOP"
ENV_RESULTS: Final = "DOWNSTREAM_RESULTS"
ENV_MODULE: Final = "DOWNSTREAM_MODULE"
ENV_DESELECT: Final = "DOWNSTREAM_DESELECT"
ENV_ONLY: Final = "DOWNSTREAM_ONLY"
LOOPS: Final = ("asyncio", "looplet")

_LOOP_SEEN: Final = pytest.StashKey[str]()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`module.qualname` of the loop's class: what a `test` record's `loop` says."""
    cls = type(loop)
    return f"{cls.__module__}.{cls.__qualname__}"


def _with_looplet_factory(backend: object, factory: Callable[[], asyncio.AbstractEventLoop]) -> object:
    # anyio accepts "asyncio" or ("asyncio", {options}); anything else is left as it is.
    if backend == "asyncio":
        return ("asyncio", {"loop_factory": factory})
    if (
        isinstance(backend, tuple)
        and len(backend) == 2
        and backend[0] == "asyncio"
        and isinstance(backend[1], dict)
        and backend[1].get("loop_factory") is None
    ):
        return ("asyncio", {**backend[1], "loop_factory": factory})
    return backend


class DownstreamPlugin:
    """The plugin's state: the loop asked for and the open results file."""

    def __init__(self, config: pytest.Config, loop: str, results: IO[str]) -> None:
        self.config = config
        self.loop = loop
        self.results = results
        self.deselect = {p for p in os.environ.get(ENV_DESELECT, "").split(",") if p}
        only = os.environ.get(ENV_ONLY)
        self.only: set[str] | None = None
        if only:
            with open(only, encoding="utf-8") as f:
                self.only = {line.strip() for line in f if line.strip()}
        self.new_event_loop: Callable[[], asyncio.AbstractEventLoop] | None = None
        # Per test in progress, what its phases said so far: the outcome ("passed",
        # "failed" or "skipped", the worst wins), a one-line message, the call's duration.
        self.outcomes: dict[str, dict[str, Any]] = {}

    def write(self, record: dict[str, Any]) -> None:
        self.results.write(json.dumps(record) + "\n")
        self.results.flush()

    def start(self) -> None:
        looplet_file = None
        if self.loop == "looplet":
            import looplet

            looplet_file = looplet.__file__
            self.new_event_loop = looplet.new_event_loop
            # looplet.install() is the public way in; on 3.14 and 3.15 it warns as
            # asyncio's own policy API does, which is no news here.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                looplet.install()
        module = os.environ.get(ENV_MODULE, "")
        spec = importlib.util.find_spec(module) if module else None
        self.write(
            {
                "kind": "start",
                "loop": self.loop,
                "python": sys.version.split()[0],
                "prefix": sys.prefix,
                "module": module,
                "module_origin": spec.origin if spec is not None else None,
                "looplet_file": looplet_file,
                "time": time.time(),
            }
        )

    # -- deselection -------------------------------------------------------------------

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not self.deselect and self.only is None:
            return
        kept: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for item in items:
            callspec = getattr(item, "callspec", None)
            # A test's parameter id joins its parameters' ids with "-".
            ids = set(callspec.id.split("-")) if callspec is not None else set()
            drop = bool(ids & self.deselect) or (self.only is not None and item.nodeid not in self.only)
            (dropped if drop else kept).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    # -- the swap through anyio's backend options ---------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        result = yield
        if self.new_event_loop is None or fixturedef.argname != "anyio_backend":
            return result
        swapped = _with_looplet_factory(result, self.new_event_loop)
        if swapped is not result and fixturedef.cached_result is not None:
            # The value a test and its other fixtures get is the cached one: pytest
            # stores the fixture's result there before this wrapper sees it.
            fixturedef.cached_result = (swapped, *fixturedef.cached_result[1:])
        return swapped

    # -- the loop each test ran on ------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        original = getattr(item, "obj", None)
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(original):
            # Sync tests, unittest cases, hypothesis' wrapped tests: not seen.
            return (yield)
        item.obj = _noting_loop(item, original)
        try:
            return (yield)
        finally:
            item.obj = original

    # -- outcomes -----------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
        if report.failed:
            # A failure in any phase: a setup or teardown error too, and a strict xpass.
            if state["outcome"] != "failed":
                state["outcome"] = "failed"
                state["message"] = f"{report.when}: {_short(report)}"
        elif report.skipped and state["outcome"] == "passed":
            # Skips and xfails alike: the test did not pass, nor did it fail.
            state["outcome"] = "skipped"
            state["message"] = _short(report)
        if report.when == "call":
            state["duration"] = round(report.duration, 3)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            state = self.outcomes.pop(item.nodeid, None)
            if state is not None:
                self.write(
                    {
                        "kind": "test",
                        "nodeid": item.nodeid,
                        "outcome": state["outcome"],
                        "message": state["message"],
                        "duration": state.get("duration", 0.0),
                        "loop": item.stash.get(_LOOP_SEEN, None),
                    }
                )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.write({"kind": "done", "exitstatus": int(exitstatus), "time": time.time()})

    def pytest_unconfigure(self) -> None:
        self.results.close()


def _short(report: pytest.TestReport) -> str:
    # One line that says what went wrong: the crash message where pytest has one.
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = str(crash) if crash else str(longrepr or "")
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "")[:500]


def _noting_loop(
    item: pytest.Item, test: Callable[..., Coroutine[Any, Any, object]]
) -> Callable[..., Coroutine[Any, Any, object]]:
    @functools.wraps(test)
    async def run_noting_loop(*args: Any, **kwargs: Any) -> object:
        item.stash[_LOOP_SEEN] = loop_name(asyncio.get_running_loop())
        return await test(*args, **kwargs)

    return run_noting_loop


def pytest_configure(config: pytest.Config) -> None:
    loop = os.environ.get(ENV_LOOP)
    path = os.environ.get(ENV_RESULTS)
    if loop is None or path is None:
        raise pytest.UsageError(f"downstream.plugin needs {ENV_LOOP} and {ENV_RESULTS} in the environment")
    if loop not in LOOPS:
        raise pytest.UsageError(f"{ENV_LOOP}={loop!r}: expected one of {', '.join(LOOPS)}")
    if hasattr(config, "workerinput"):
        raise pytest.UsageError("downstream.plugin does not support pytest-xdist workers")
    plugin = DownstreamPlugin(config, loop, open(path, "a", encoding="utf-8"))  # noqa: SIM115  # closed at unconfigure
    config.pluginmanager.register(plugin, "downstream-plugin")
    plugin.start()
