"""Errors nobody awaits, and debug mode.

Covers set_exception_handler / get_exception_handler (and the TypeError for a
non-callable), call_exception_handler (a raising callback reaches the handler with
'message', 'exception' and 'handle' and the loop goes on; the handler runs in the
failing callback's context on 3.12+; a handler that raises falls back to the default
handler; a default handler that raises is logged), default_exception_handler's log
records, "exception was never retrieved" for futures and tasks, and debug mode:
get_debug/set_debug, the slow-callback warning, source tracebacks, and coroutine
origin tracking while a debug loop runs (and its restoration afterwards).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import sys
import warnings
from asyncio import format_helpers

import pytest

var = contextvars.ContextVar("var", default="default")


def test_exception_handler_set_and_get(loop):
    def handler(lp, ctx):
        pass

    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_exception_handler_not_callable_is_type_error(loop):
    with pytest.raises(TypeError, match=r"^A callable object or None is expected, got 'nope'$"):
        loop.set_exception_handler("nope")
    assert loop.get_exception_handler() is None


def test_raising_callback_reaches_the_handler_and_the_loop_goes_on(loop):
    contexts = []
    order = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))

    def boom():
        order.append("boom")
        raise ZeroDivisionError("in callback")

    handle = loop.call_soon(boom)
    loop.call_soon(order.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["boom", "after"]
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert {"message", "exception", "handle"} <= set(ctx)
    # Word for word what asyncio's Handle._run says (looplet runs its own handles inline).
    assert ctx["message"] == "Exception in callback " + format_helpers._format_callback_source(boom, ())
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is handle


@pytest.mark.skipif(sys.version_info < (3, 12), reason="handles and tasks have get_context() from 3.12")
def test_exception_handler_runs_in_the_callbacks_context(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(var.get()))
    ctx = contextvars.copy_context()
    ctx.run(var.set, "callback ctx")
    loop.call_soon(lambda: 1 / 0, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["callback ctx"]


def test_raising_task_is_not_reported_while_referenced(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("task failed")

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    assert contexts == []
    assert isinstance(task.exception(), ValueError)


def test_task_exception_never_retrieved(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def fail():
        raise ValueError("never retrieved")

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    del task
    gc.collect()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"] == "Task exception was never retrieved"
    assert isinstance(ctx["exception"], ValueError)
    assert isinstance(ctx["future"], asyncio.Task)


def test_future_exception_never_retrieved(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = loop.create_future()
    fut.set_exception(KeyError("lost"))
    del fut
    gc.collect()
    assert [c["message"] for c in contexts] == ["Future exception was never retrieved"]
    assert isinstance(contexts[0]["exception"], KeyError)


def test_handler_that_raises_falls_back_to_the_default(loop, loop_errors):
    calls = []

    def bad_handler(lp, ctx):
        calls.append(ctx["message"])
        raise RuntimeError("handler is broken")

    loop.set_exception_handler(bad_handler)
    order = []
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(order.append, "loop goes on")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["loop goes on"]
    assert len(calls) == 1
    records = loop_errors.take_all()
    assert len(records) == 1
    assert records[0].getMessage().startswith("Unhandled error in exception handler")
    assert records[0].exc_info[0] is RuntimeError
    assert "handler is broken" in str(records[0].exc_info[1])


def test_default_handler_that_raises_is_logged(loop, loop_errors):
    def broken_default(ctx):
        raise RuntimeError("default is broken")

    loop.default_exception_handler = broken_default
    loop.call_exception_handler({"message": "first"})
    loop.set_exception_handler(lambda lp, ctx: 1 / 0)
    loop.call_exception_handler({"message": "second"})
    records = loop_errors.take_all()
    messages = [r.getMessage() for r in records]
    assert messages == [
        "Exception in default exception handler",
        "Exception in default exception handler while handling an unexpected error in custom exception handler",
    ]
    assert [r.exc_info[0] for r in records] == [RuntimeError, RuntimeError]


def test_call_exception_handler_passes_the_context(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    context = {"message": "custom", "extra": 42}
    loop.call_exception_handler(context)
    assert contexts == [context]


def test_default_exception_handler_logs(loop, loop_errors):
    exc = ValueError("logged")
    loop.default_exception_handler({"message": "Something failed", "exception": exc, "extra": "value"})
    loop.default_exception_handler({"other": 1})
    first, second = loop_errors.take_all()
    assert first.getMessage() == "Something failed\nextra: 'value'"
    assert first.exc_info == (ValueError, exc, exc.__traceback__)
    assert second.getMessage() == "Unhandled exception in event loop\nother: 1"
    assert not second.exc_info


def test_call_exception_handler_without_handler_uses_the_default(loop, loop_errors):
    loop.call_exception_handler({"message": "via default", "exception": OSError("x")})
    (record,) = loop_errors.take_all()
    assert record.getMessage() == "via default"
    assert record.exc_info[0] is OSError


# -- debug mode ---------------------------------------------------------------------------


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
