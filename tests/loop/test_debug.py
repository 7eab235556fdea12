"""Debug mode: get_debug/set_debug, slow callbacks, source tracebacks, coroutine origins.

Covers the slow-callback warning (naming the task whose step was slow, none without
debug mode, and the default slow_callback_duration), the source tracebacks of handles
(also in the default exception handler's log), and coroutine origin tracking while a
debug loop runs (turned on by set_debug while running, restored afterwards, and shown
for a coroutine never awaited).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import warnings


def test_get_debug_default_and_set_debug(loop):
    env_debug = sys.flags.dev_mode or (not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))
    assert loop.get_debug() is env_debug
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_is_logged_in_debug_mode(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0

    def my_slow_callback():
        pass

    loop.call_soon(my_slow_callback)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    warnings_ = [r for r in caplog.records if r.name == "asyncio" and r.levelno == logging.WARNING]
    slow = [r.getMessage() for r in warnings_ if "my_slow_callback" in r.getMessage()]
    assert len(slow) == 1
    assert slow[0].startswith("Executing <Handle")
    assert " took " in slow[0]
    assert slow[0].endswith(" seconds")


def test_slow_task_step_names_the_task(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0

    async def work():
        pass

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(loop.create_task(work(), name="the-slow-one"))
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "the-slow-one" in r.getMessage()]
    assert slow
    for message in slow:
        # asyncio names the task itself (its repr), not the handle that steps it.
        assert message.startswith("Executing <Task "), message
        assert message.endswith(" seconds")


def test_no_slow_callback_warning_without_debug(loop, caplog):
    loop.set_debug(False)
    loop.slow_callback_duration = 0
    loop.call_soon(lambda: None)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert [r for r in caplog.records if r.name == "asyncio" and "Executing" in r.getMessage()] == []


def test_slow_callback_duration_default(loop):
    assert loop.slow_callback_duration == 0.1


def test_debug_mode_records_source_tracebacks(loop):
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    handle = loop.call_soon(lambda: 1 / 0)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert handle._source_traceback
    assert "source_traceback" in contexts[0]
    assert contexts[0]["source_traceback"][-1].name == "test_debug_mode_records_source_tracebacks"


def test_default_handler_logs_the_current_handles_traceback(loop, loop_errors):
    loop.set_debug(True)

    def report():
        loop.call_exception_handler({"message": "from a callback"})

    loop.call_soon(report)
    loop.call_soon(loop.stop)
    loop.run_forever()
    (record,) = loop_errors.take_all()
    assert record.getMessage().startswith("from a callback\nhandle_traceback: Handle created at")


def test_coroutine_origin_tracking_while_a_debug_loop_runs(loop):
    before = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(True)

    async def depth():
        return sys.get_coroutine_origin_tracking_depth()

    assert loop.run_until_complete(depth()) > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_no_coroutine_origin_tracking_without_debug(loop):
    before = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(False)

    async def depth():
        return sys.get_coroutine_origin_tracking_depth()

    assert loop.run_until_complete(depth()) == before


def test_set_debug_while_running_turns_tracking_on(loop):
    before = sys.get_coroutine_origin_tracking_depth()
    loop.set_debug(False)

    async def main():
        off = sys.get_coroutine_origin_tracking_depth()
        loop.set_debug(True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return off, sys.get_coroutine_origin_tracking_depth()

    off, on = loop.run_until_complete(main())
    assert off == before
    assert on > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_never_awaited_coroutine_shows_its_origin_in_debug_mode(loop):
    loop.set_debug(True)

    async def forgotten():
        pass

    async def main():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            forgotten()
            gc.collect()
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    messages = loop.run_until_complete(main())
    assert len(messages) == 1
    assert "was never awaited" in messages[0]
    assert "Coroutine created at (most recent call last)" in messages[0]
