"""looplet.EventLoop's constructor (looplet/loop.py): wrong arguments, and nothing more.

A wrong argument raises the TypeError or ValueError asyncio's style asks for, with a
message naming the argument (or `LOOPLET_REACTOR`, where the name came from there),
before anything is made: no fd is left open, and nothing is printed later by the
half-made loop's `__del__` ("Exception ignored in ..."), which the subprocess runs
check on stderr. looplet only: asyncio's loops take none of these arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import looplet

REPO = Path(__file__).resolve().parent.parent

BAD_ARGUMENTS = [
    ({"shuffle_seed": "a"}, TypeError, "shuffle_seed must be an int or None, not str"),
    ({"reactor": 5}, TypeError, r"reactor must be a str \(epoll, poll, kqueue\) or None, not int"),
    ({"clock": 5}, TypeError, r"clock must be a looplet.Clock or None, not int"),
    ({"reactor": "bogus"}, ValueError, r"reactor='bogus': reactor 'bogus' is not available here \(available: "),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS, ids=lambda v: str(v)[:30])
def test_a_wrong_argument_raises_and_leaves_nothing(kwargs: dict[str, Any], error: type, message: str, leakcheck):
    with pytest.raises(error, match=message):
        looplet.new_event_loop(**kwargs)
    with pytest.raises(error, match=message):
        looplet.EventLoop(**kwargs)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env)
    return subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS, ids=lambda v: str(v)[:30])
def test_a_wrong_argument_prints_nothing_after_the_error(kwargs: dict[str, Any], error: type, message: str):
    code = (
        "import gc, looplet\n"
        "try:\n"
        f"    looplet.new_event_loop(**{kwargs!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "gc.collect()\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(error.__name__)
    assert proc.stderr == ""  # no "Exception ignored in EventLoop.__del__"


def test_looplet_reactor_names_the_variable() -> None:
    proc = run_python("import looplet\nlooplet.new_event_loop()\n", LOOPLET_REACTOR="bogus")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith(
        "ValueError: LOOPLET_REACTOR='bogus': reactor 'bogus' is not available here (available: "
    )
    assert "Exception ignored" not in proc.stderr


def test_a_set_up_that_fails_late_closes_what_it_made(tmp_path: Path) -> None:
    # LOOPLET_TRACE's warning, raised under -W error, fails the set-up after the
    # scheduler's fds exist: they are closed, and __del__ has nothing to say.
    code = (
        "import gc, os, looplet\n"
        "before = len(os.listdir('/proc/self/fd'))\n"
        "try:\n"
        "    looplet.new_event_loop()\n"
        "except RuntimeWarning as exc:\n"
        "    print('RuntimeWarning', str(exc).split(':')[0])\n"
        "gc.collect()\n"
        "print(len(os.listdir('/proc/self/fd')) - before)\n"
    )
    proc = run_python(code, LOOPLET_TRACE=str(tmp_path / "missing" / "t.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "RuntimeWarning LOOPLET_TRACE='" + str(tmp_path / "missing" / "t.json") + "'",
        "0",
    ]
    assert proc.stderr == ""
