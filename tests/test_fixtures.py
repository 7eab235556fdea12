"""The fixtures every behavioural test leans on (tests/conftest.py) can fail a test.

Each test here runs pytest on a small test file in a subprocess, with this suite's own
conftest, and expects the verdict a trustworthy fixture gives: a callback that raised,
a report nobody took, an expected report that never came, and an `[asyncio]` loop that
is not asyncio's each fail the inner test (or the whole run); a report that is taken
passes. The leak check has its own tests in test_leakcheck.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


def run_inner(pytester: pytest.Pytester, test_source: str, conftest_extra: str = "") -> pytest.RunResult:
    pytester.makeconftest(CONFTEST + conftest_extra)
    pytester.makepyfile(test_inner=test_source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rA", timeout=120)


def test_a_raising_callback_fails_the_test_on_both_loops(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_raises_in_a_callback(loop):
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(loop.stop)
    loop.run_forever()
""",
    )
    # The call passed; its teardown reports the error, and the run fails.
    result.assert_outcomes(passed=2, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*unexpected exception-handler reports*'Exception in callback *<lambda>()*' (ZeroDivisionError*",
            "ERROR test_inner.py::test_raises_in_a_callback[[]asyncio[]]*",
            "ERROR test_inner.py::test_raises_in_a_callback[[]looplet[]]*",
        ],
        consecutive=False,
    )


def test_a_report_from_a_loop_the_test_made_itself_fails_it(pytester: pytest.Pytester) -> None:
    # Not the loop fixture: a loop the test makes and closes itself is watched too.
    result = run_inner(
        pytester,
        """
import asyncio, gc

async def main():
    async def fail():
        raise ValueError("nobody looks at me")
    task = asyncio.ensure_future(fail())
    await asyncio.sleep(0)
    del task
    gc.collect()

def test_exception_never_retrieved(loop_factory):
    loop = loop_factory()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
""",
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*'Task exception was never retrieved' (ValueError: nobody looks at me)*"])


def test_taking_the_expected_report_passes_and_a_missing_one_fails(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_takes_what_it_expects(loop, loop_errors):
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(loop.stop)
    loop.run_forever()
    record = loop_errors.take("^Exception in callback", ZeroDivisionError)
    assert record.exc_info[0] is ZeroDivisionError

def test_expects_a_report_that_never_comes(loop, loop_errors):
    loop.run_until_complete(loop.create_task(__import__("asyncio").sleep(0)))
    loop_errors.take("^Exception in callback")

def test_takes_one_of_two(loop, loop_errors):
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(lambda: {}["missing"])
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop_errors.take("^Exception in callback", KeyError)
""",
    )
    result.assert_outcomes(passed=4, failed=2, errors=2)
    result.stdout.fnmatch_lines(["*no exception-handler report matching '^Exception in callback'; reports: none*"])
    result.stdout.fnmatch_lines(["*unexpected exception-handler reports*(ZeroDivisionError*"])
    for kind in ("asyncio", "looplet"):
        result.stdout.fnmatch_lines(
            [f"PASSED test_inner.py::test_takes_what_it_expects[[]{kind}[]]"], consecutive=False
        )
        result.stdout.fnmatch_lines([f"ERROR test_inner.py::test_takes_one_of_two[[]{kind}[]]*"])


def test_a_policy_swapped_asyncio_loop_fails_the_run(pytester: pytest.Pytester) -> None:
    # What `pytest --looplet` or looplet.install() does to asyncio.new_event_loop():
    # had the [asyncio] factory asked the policy, every [asyncio] id would be looplet.
    result = run_inner(
        pytester,
        "def test_anything(loop):\n    pass\n",
        conftest_extra='\nLOOP_FACTORIES["asyncio"] = asyncio.new_event_loop\nlooplet.install()\n',
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the [[]asyncio[]] loop factory made a looplet.loop.EventLoop*"])


def test_an_asyncio_loop_that_is_not_asyncios_fails_its_test(pytester: pytest.Pytester) -> None:
    # Swapped after the session's check: each loop a factory makes is checked too.
    result = run_inner(
        pytester,
        "def test_anything(loop):\n    pass\n",
        conftest_extra=(
            "\n@pytest.fixture(autouse=True)\n"
            "def _swap(monkeypatch):\n"
            '    monkeypatch.setitem(LOOP_FACTORIES, "asyncio", looplet.new_event_loop)\n'
        ),
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the [[]asyncio[]] loop factory made a looplet.loop.EventLoop*"])


def test_no_skips_fails_a_skip_for_a_missing_dependency(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inner runs inherit the environment: CI's LOOPLET_NO_SKIPS=1 must not decide the plain one.
    monkeypatch.delenv("LOOPLET_NO_SKIPS", raising=False)
    source = """
import pytest

def test_needs_a_library():
    pytest.importorskip("a_library_nobody_installed")

@pytest.mark.skipif(True, reason="a feature that is new in 3.99")
def test_version_gated():
    pass
"""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=source)
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=120)
    plain.assert_outcomes(skipped=2)
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--no-skips", timeout=120)
    strict.assert_outcomes(failed=1, skipped=1)
    strict.stdout.fnmatch_lines(["*skipped, which --no-skips does not allow*a_library_nobody_installed*"])
