"""looplet/runner.py: `looplet.run()` and `looplet.new_event_loop` as asyncio's loop factory.

Each must really run the program on looplet. Covers `looplet.run()` (results,
exceptions, debug, refused inside a running loop),
`asyncio.run(..., loop_factory=looplet.new_event_loop)` (3.12+), and
`asyncio.Runner(loop_factory=looplet.new_event_loop)` (including Ctrl-C cancelling the
main task).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import sys
import warnings

import pytest
from support import describe

import looplet

var = contextvars.ContextVar("var", default="default")


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
