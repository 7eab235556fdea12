"""The ways into looplet (looplet only): each must really run the program on looplet.

Covers `looplet.run()`, `asyncio.run(..., loop_factory=looplet.new_event_loop)`
(3.12+), `asyncio.Runner(loop_factory=looplet.new_event_loop)` (including Ctrl-C
cancelling the main task), `looplet.EventLoopPolicy` set with
`asyncio.set_event_loop_policy`, `looplet.install()`, and the command line:
`python -m looplet script.py args...`, `python -m looplet -m module args...`, and
usage errors. Also: a looplet loop is an AbstractEventLoop but not a subclass of
asyncio's BaseEventLoop.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import contextvars
import gc
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import looplet
from looplet import _asyncio

REPO = Path(__file__).resolve().parent.parent
var = contextvars.ContextVar("var", default="default")


async def describe():
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    return type(loop), loop.is_running(), loop.get_debug()


#: asyncio deprecates its event loop policies from 3.14 (looplet's policy with them).
POLICIES_DEPRECATED = sys.version_info >= (3, 14)


def policy_call():
    """What a call of the policy API raises around it: a DeprecationWarning from 3.14."""
    return pytest.warns(DeprecationWarning, match="3.16") if POLICIES_DEPRECATED else contextlib.nullcontext()


@pytest.fixture
def default_policy():
    """Restore asyncio's default policy (and no current loop) after the test."""
    yield
    _asyncio.set_event_loop_policy(None)


def test_looplet_loop_is_its_own_abstract_event_loop(leakcheck):
    loop = looplet.new_event_loop()
    try:
        assert isinstance(loop, looplet.EventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()


def test_looplet_run(leakcheck):
    kind, running, _ = looplet.run(describe())
    assert (kind, running) == (looplet.EventLoop, True)


def test_looplet_run_returns_and_raises(leakcheck):
    async def ok():
        return "value"

    async def fail():
        raise LookupError("from main")

    assert looplet.run(ok()) == "value"
    with pytest.raises(LookupError, match=r"from main"):
        looplet.run(fail())


def test_looplet_run_debug(leakcheck):
    kind, running, debug = looplet.run(describe(), debug=True)
    assert (kind, running, debug) == (looplet.EventLoop, True, True)


def test_looplet_run_inside_a_running_loop_is_refused(leakcheck):
    async def outer():
        coro = describe()
        try:
            looplet.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()
        return "not refused"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = looplet.run(outer())
        gc.collect()
    assert "cannot be called from a running event loop" in message
    # Refused up front, as asyncio.run does: no loop was started, no coroutine dropped.
    assert [str(w.message) for w in caught] == []


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=...) is new in 3.12")
def test_asyncio_run_with_loop_factory(leakcheck):
    kind, running, _ = asyncio.run(describe(), loop_factory=looplet.new_event_loop)
    assert (kind, running) == (looplet.EventLoop, True)


def test_asyncio_runner_with_loop_factory(leakcheck):
    async def set_var():
        var.set("kept between runs")

    async def get_var():
        return var.get()

    with asyncio.Runner(loop_factory=looplet.new_event_loop) as runner:
        loop = runner.get_loop()
        assert type(loop) is looplet.EventLoop
        assert runner.run(describe())[0] is looplet.EventLoop
        runner.run(set_var())
        assert runner.run(get_var()) == "kept between runs"
        assert runner.get_loop() is loop
    assert loop.is_closed()


def test_asyncio_runner_ctrl_c_cancels_the_main_task(leakcheck):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.fail("asyncio.Runner only handles Ctrl-C when SIGINT has its default handler")
    events = []

    async def main():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("main cancelled")
            raise

    with asyncio.Runner(loop_factory=looplet.new_event_loop) as runner, pytest.raises(KeyboardInterrupt):
        runner.run(main())
    assert events == ["main cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_event_loop_policy(leakcheck, default_policy):
    with policy_call():
        policy_class = looplet.EventLoopPolicy
    with policy_call():
        asyncio.set_event_loop_policy(policy_class())
    assert isinstance(_asyncio.get_event_loop_policy(), policy_class)
    loop = asyncio.new_event_loop()
    try:
        assert type(loop) is looplet.EventLoop
    finally:
        loop.close()
    kind, running, _ = asyncio.run(describe())
    assert (kind, running) == (looplet.EventLoop, True)


def test_install(leakcheck, default_policy):
    with policy_call():
        looplet.install()
    with policy_call():
        policy_class = looplet.EventLoopPolicy
    assert isinstance(_asyncio.get_event_loop_policy(), policy_class)
    assert asyncio.run(describe())[0] is looplet.EventLoop
    _asyncio.set_event_loop_policy(None)
    # Back to stock asyncio.
    assert asyncio.run(describe())[0] is not looplet.EventLoop


# -- the command line ---------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sys

    async def main():
        loop = asyncio.get_running_loop()
        print(f"{type(loop).__module__}.{type(loop).__qualname__}")
        print(sys.argv)
        print(__name__)

    asyncio.run(main())
    """
)


def run_python(*args, cwd=REPO):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_python_m_looplet_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python("-m", "looplet", str(script), "arg1", "two words")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "looplet.loop.EventLoop",
        str([str(script), "arg1", "two words"]),
        "__main__",
    ]


def test_same_script_without_looplet_runs_on_asyncio(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_python(str(script), "arg1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("asyncio.")
    assert lines[1:] == [str([str(script), "arg1"]), "__main__"]


def test_python_m_looplet_module(tmp_path):
    (tmp_path / "mymod.py").write_text(SCRIPT)
    proc = run_python("-m", "looplet", "-m", "mymod", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "looplet.loop.EventLoop"
    argv = ast.literal_eval(lines[1])
    assert argv[1:] == ["x"]
    assert argv[0].endswith("mymod.py")
    assert lines[2] == "__main__"


def test_python_m_looplet_script_exit_status(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import asyncio\nasync def main():\n    raise SystemExit(3)\nasyncio.run(main())\n")
    proc = run_python("-m", "looplet", str(script))
    assert proc.returncode == 3


def test_python_m_looplet_without_arguments_prints_usage(tmp_path):
    proc = run_python("-m", "looplet", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: python -m looplet")


def test_python_m_looplet_help(tmp_path):
    proc = run_python("-m", "looplet", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m looplet")
