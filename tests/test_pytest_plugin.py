"""looplet's pytest plugin (looplet/pytest_plugin.py), through real pytest runs.

Every test runs pytest in a subprocess (`pytester.runpytest_subprocess`): the plugin
sets asyncio's process-wide policy, and a run in this process would share it, and
looplet's already-imported modules, with this suite. What is asserted is what a user
sees or what the tests inside saw: outcome counts, the loop class each test recorded
from its own body, the header and summary lines, the policy, and virtual time. Nothing
waits on or measures the wall clock.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from looplet import _asyncio

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# What each test in examples/pytest_suite records: the class of its running loop.
STOCK_LOOP = f"{asyncio.SelectorEventLoop.__module__}.{asyncio.SelectorEventLoop.__qualname__}"
LOOPLET_LOOP = "looplet.loop.EventLoop"
# asyncio's default policy class, by a spelling that does not warn on 3.14+.
_DEFAULT_POLICY = _asyncio.DefaultEventLoopPolicy
STOCK_POLICY = f"{_DEFAULT_POLICY.__module__}.{_DEFAULT_POLICY.__qualname__}" if _DEFAULT_POLICY else ""
# examples/pytest_suite has 16 tests; a floor, so that a suite collecting nothing fails.
SUITE_MIN_TESTS = 16

# Every inner run: its own ini, so no pytest-asyncio deprecation warning on an unset
# default fixture loop scope.
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    # The installed metadata, which pytest loads plugins from (reinstall after editing pyproject).
    found = {ep.name: ep.value for ep in entry_points(group="pytest11") if ep.value.startswith("looplet")}
    assert found == {"looplet": "looplet.pytest_plugin"}


@pytest.mark.parametrize("mode", ["strict", "auto"])
@pytest.mark.parametrize(("args", "loop"), [([], STOCK_LOOP), (["--looplet"], LOOPLET_LOOP)], ids=["stock", "looplet"])
def test_example_suite_runs_unchanged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], loop: str, mode: str
) -> None:
    shutil.copytree(EXAMPLES, pytester.path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    log = pytester.path / "loops.log"
    monkeypatch.setenv("LOOP_LOG", str(log))
    result = run(pytester, "examples/pytest_suite", "-o", f"asyncio_mode={mode}", *args)
    records = [line.split("\t") for line in log.read_text().splitlines()]
    seen = dict(records)
    assert len(seen) == len(records), "a test recorded its loop twice"
    assert len(seen) >= SUITE_MIN_TESTS
    # Every test that passed recorded its loop from its own body, and it was the expected one.
    result.assert_outcomes(passed=len(seen))
    assert set(seen.values()) == {loop}, seen
    if args:
        result.stdout.fnmatch_lines(
            [
                "looplet: pytest-asyncio tests run on looplet.EventLoop*",
                f"looplet: {len(seen)} pytest-asyncio tests ran on looplet.EventLoop",
            ]
        )
    else:
        # (The header's "plugins:" line names every installed plugin, looplet too.)
        result.stdout.no_fnmatch_line("looplet:*")


VIRTUAL_CLOCK_TESTS = """
import asyncio

import pytest
import pytest_asyncio

{mark}
async def test_hour_sleep_times_out_after_ten_minutes(virtual_clock):
    loop = asyncio.get_running_loop()
    assert loop.get_clock() is virtual_clock
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(600):
            await asyncio.sleep(3600)
    # Exactly the deadline asyncio.timeout computed, loop.time() + 600: the clock jumped
    # straight to it (and not to the sleep's, an hour on).
    assert loop.time() == start + 600
    assert virtual_clock.time() == loop.time()


{module_mark}
async def test_on_a_module_scoped_loop(virtual_clock):
    # The clock is on the test's own loop, not on the function-scoped one.
    assert asyncio.get_running_loop().get_clock() is virtual_clock
    start = asyncio.get_running_loop().time()
    await asyncio.sleep(86400)
    assert asyncio.get_running_loop().time() == start + 86400


@pytest_asyncio.fixture
async def ticker(virtual_clock):
    # An async fixture on the same virtual time: its timer fires after a virtual minute.
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(60, fired.set_result, loop.time() + 60)
    yield fired


{mark}
async def test_async_fixture_shares_the_virtual_time(ticker, virtual_clock):
    due = await ticker
    assert asyncio.get_running_loop().time() == due
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_virtual_clock_jumps_to_the_timeout(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(INI)
    marks = {
        "strict": ("@pytest.mark.asyncio", '@pytest.mark.asyncio(loop_scope="module")'),
        # auto: no mark at all on the plain tests, as auto-mode suites are written.
        "auto": ("", '@pytest.mark.asyncio(loop_scope="module")'),
    }[mode]
    pytester.makepyfile(VIRTUAL_CLOCK_TESTS.format(mark=marks[0], module_mark=marks[1]))
    result = run(pytester, "--looplet", "-o", f"asyncio_mode={mode}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["looplet: 3 pytest-asyncio tests ran on looplet.EventLoop"])


def test_virtual_clock_without_looplet_is_an_error_not_a_skip(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_needs_virtual_time(virtual_clock):
            await asyncio.sleep(3600)
        """
    )
    result = run(pytester)
    # An error at setup: the test body (an hour's real sleep) never ran.
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"virtual_clock needs the test to run on looplet.EventLoop, but it runs on {STOCK_LOOP}:"
            " run pytest with --looplet (or set looplet = true in the pytest ini options)"
        ]
    )


def test_virtual_clock_in_a_sync_test_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile("def test_sync(virtual_clock):\n    pass\n")
    result = run(pytester, "--looplet")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["virtual_clock: test_virtual_clock_in_a_sync_test_is_an_error.py::test_sync is not*"])


# An inner conftest that reports on asyncio's policy around the plugin: the policy before
# any plugin's pytest_configure (at conftest import), during the tests, and after every
# plugin's pytest_unconfigure (trylast), into policy.json.
POLICY_PROBE = """
import asyncio
import json

import pytest

BEFORE = asyncio.get_event_loop_policy()
SEEN = {}


@pytest.fixture
def note_policy():
    def note():
        policy = asyncio.get_event_loop_policy()
        SEEN["during"] = f"{type(policy).__module__}.{type(policy).__qualname__}"
        SEEN["during_is_before"] = policy is BEFORE

    return note


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    SEEN["after_is_before"] = asyncio.get_event_loop_policy() is BEFORE
    with open("policy.json", "w") as f:
        json.dump(SEEN, f)
"""

LOOP_TEST = """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_loop():
    loop = asyncio.get_running_loop()
    print("ran on", type(loop).__module__ + "." + type(loop).__qualname__)
"""
POLICY_TEST = """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_loop(note_policy):
    note_policy()
    loop = asyncio.get_running_loop()
    print("ran on", type(loop).__module__ + "." + type(loop).__qualname__)
"""


def test_without_the_option_the_plugin_is_inert(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(POLICY_PROBE)
    pytester.makepyfile(POLICY_TEST)
    result = run(pytester, "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*ran on {STOCK_LOOP}*"])
    result.stdout.no_fnmatch_line("looplet:*")
    seen = json.loads((pytester.path / "policy.json").read_text())
    assert seen == {"during": STOCK_POLICY, "during_is_before": True, "after_is_before": True}


def test_looplet_policy_during_the_session_and_the_previous_one_after(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makeconftest(POLICY_PROBE)
    pytester.makepyfile(POLICY_TEST)
    result = run(pytester, "-s", "--looplet")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*ran on {LOOPLET_LOOP}*"])
    seen = json.loads((pytester.path / "policy.json").read_text())
    assert seen == {"during": "looplet.policy.EventLoopPolicy", "during_is_before": False, "after_is_before": True}


@pytest.mark.parametrize(
    ("ini", "args", "loop"),
    [
        ("looplet = true", [], LOOPLET_LOOP),
        ("looplet = true", ["--no-looplet"], STOCK_LOOP),
        ("looplet = false", ["--looplet"], LOOPLET_LOOP),
    ],
    ids=["ini", "ini-overridden", "option-over-ini"],
)
def test_ini_option(pytester: pytest.Pytester, ini: str, args: list[str], loop: str) -> None:
    pytester.makeini(INI + ini + "\n")
    pytester.makepyfile(LOOP_TEST)
    result = run(pytester, "-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*ran on {loop}*"])


def test_summary_names_tests_a_project_put_on_another_loop(pytester: pytest.Pytester) -> None:
    # A project's own event_loop_policy fixture wins over --looplet; the summary says so.
    pytester.makeini(INI)
    pytester.makeconftest(
        """
        import asyncio
        import pytest

        @pytest.fixture(scope="session")
        def event_loop_policy():
            return asyncio.DefaultEventLoopPolicy()
        """
    )
    pytester.makepyfile(LOOP_TEST)
    result = run(pytester, "--looplet", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "looplet: 0 pytest-asyncio tests ran on looplet.EventLoop",
            f"looplet: 1 pytest-asyncio test ran on {STOCK_LOOP}, not looplet's loop (*): "
            "test_summary_names_tests_a_project_put_on_another_loop.py::test_loop",
        ]
    )


def test_without_pytest_asyncio_the_option_still_sets_the_policy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        async def main():
            return type(asyncio.get_running_loop()).__module__

        def test_asyncio_run():
            assert asyncio.run(main()) == "looplet.loop"

        def test_virtual_clock(virtual_clock):
            pass
        """
    )
    result = run(pytester, "--looplet", "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "looplet: asyncio's policy is looplet's (pytest-asyncio is not active)",
            "virtual_clock needs pytest-asyncio (pip install pytest-asyncio)",
        ]
    )
