"""Lifecycle of a loop: run_forever, run_until_complete, stop, is_running, is_closed, close.

Covers the results and errors of run_until_complete (coroutine, future, awaitable, a
future of another loop, nested and concurrent runs, runs after close, "stopped before
Future completed"), the exact semantics of stop() (the tick in progress completes;
stop() before run_forever() runs one tick), BaseExceptions escaping run_forever, close()
(refused while running, idempotent, drops pending callbacks and timers, then every
scheduling call is refused) and the ResourceWarning of a loop never closed.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings

import pytest

LOOP_KINDS = ["asyncio", "looplet"]


def test_is_an_abstract_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert not loop.is_running()
    assert not loop.is_closed()


def test_run_until_complete_coroutine_returns_result(loop):
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_until_complete(main(21)) == 42
    assert not loop.is_running()


def test_run_until_complete_future_set_by_callback(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_already_done_future(loop):
    fut = loop.create_future()
    fut.set_result(7)
    assert loop.run_until_complete(fut) == 7


def test_run_until_complete_awaitable_object(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_not_awaitable_is_type_error(loop):
    with pytest.raises(TypeError, match=r"An asyncio.Future, a coroutine or an awaitable is required"):
        loop.run_until_complete(42)


def test_run_until_complete_raises_the_exception(loop):
    async def main():
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match=r"boom"):
        loop.run_until_complete(main())
    # The loop is usable afterwards.
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"


def test_run_until_complete_cancelled_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_future_of_another_loop(loop, loop_factory):
    other = loop_factory()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError, match=r"The future belongs to a different loop"):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_run_until_complete_stopped_before_future_completed(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match=r"^Event loop stopped before Future completed\.$"):
        loop.run_until_complete(fut)
    assert not fut.done()
    # The future can still complete in a later run.
    loop.call_soon(fut.set_result, 1)
    assert loop.run_until_complete(fut) == 1


# CPython gh-130145: on 3.13 before 3.13.3, a refused run_forever() runs its cleanup
# anyway and so clears the running loop (and is_running()) of the loop already running.
REFUSED_RUN_FOREVER_CLEARS_RUNNING_LOOP = (3, 13) <= sys.version_info < (3, 13, 3)


def test_run_until_complete_nested_is_refused(loop):
    errors = []
    state = []

    async def main():
        inner = loop.create_future()
        try:
            loop.run_until_complete(inner)
        except RuntimeError as exc:
            errors.append(str(exc))
        coro = asyncio.sleep(0)
        try:
            loop.run_until_complete(coro)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            coro.close()
        state.append((loop.is_running(), asyncio.get_running_loop()))
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        state.append((loop.is_running(), asyncio._get_running_loop()))

    loop.run_until_complete(main())
    assert errors == ["This event loop is already running"] * 3
    assert state[0] == (True, loop)
    if not REFUSED_RUN_FOREVER_CLEARS_RUNNING_LOOP:
        assert state[1] == (True, loop)
    assert not loop.is_running()


@pytest.mark.parametrize("other_kind", LOOP_KINDS)
def test_run_inside_another_running_loop_is_refused(loop, loop_factories, other_kind):
    other = loop_factories[other_kind]()
    errors = []
    state = []

    async def main():
        fut = other.create_future()
        try:
            other.run_until_complete(fut)
        except RuntimeError as exc:
            errors.append(str(exc))
        state.append((other.is_running(), asyncio.get_running_loop()))
        try:
            other.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        state.append((other.is_running(), asyncio._get_running_loop()))

    try:
        loop.run_until_complete(main())
    finally:
        other.close()
    assert errors == ["Cannot run the event loop while another loop is running"] * 2
    assert state[0] == (False, loop)
    if not REFUSED_RUN_FOREVER_CLEARS_RUNNING_LOOP:
        assert state[1] == (False, loop)


def test_run_after_close_is_refused(loop):
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.run_forever()
    coro = asyncio.sleep(0)
    try:
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            loop.run_until_complete(coro)
    finally:
        coro.close()


def test_is_running_inside_and_outside(loop):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    assert not loop.is_running()
    loop.run_forever()
    assert seen == [True]
    assert not loop.is_running()


def test_stop_lets_the_current_tick_finish(loop):
    order = []

    def first():
        order.append("first")
        loop.call_soon(order.append, "next tick")

    loop.call_soon(first)
    loop.call_soon(loop.stop)
    loop.call_soon(order.append, "same tick")
    loop.run_forever()
    # Everything queued before the tick began ran; what that tick queued did not.
    assert order == ["first", "same tick"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first", "same tick", "next tick"]


def test_stop_before_run_forever_runs_one_tick(loop):
    order = []

    def cb():
        order.append("cb")
        loop.call_soon(order.append, "later")

    loop.call_soon(cb)
    loop.stop()
    loop.run_forever()
    assert order == ["cb"]
    loop.stop()
    loop.run_forever()
    assert order == ["cb", "later"]


def test_stop_with_nothing_ready_returns(loop):
    loop.stop()
    loop.run_forever()  # one tick that does not block
    assert not loop.is_running()


def test_stop_called_twice_stops_once(loop):
    order = []
    loop.call_soon(loop.stop)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(order.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == [1]


def test_run_forever_can_be_restarted(loop):
    count = []
    for i in range(3):
        loop.call_soon(count.append, i)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert count == [0, 1, 2]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_callback_escapes_run_forever(loop, exc_type):
    def boom():
        raise exc_type()

    loop.call_soon(boom)
    with pytest.raises(exc_type):
        loop.run_forever()
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_task_escapes_run_until_complete(loop, exc_type):
    async def main():
        await asyncio.sleep(0)
        raise exc_type()

    with pytest.raises(exc_type):
        loop.run_until_complete(main())
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"


def test_close_while_running_is_refused(loop):
    errors = []

    def try_close():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(try_close)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]
    assert not loop.is_closed()


def test_close_is_idempotent(loop):
    loop.close()
    assert loop.is_closed()
    loop.close()
    assert loop.is_closed()


def test_close_drops_pending_callbacks_and_timers(loop):
    ran = []
    handle = loop.call_soon(ran.append, "soon")
    timer = loop.call_later(0.001, ran.append, "later")
    loop.close()
    assert ran == []
    # The handles themselves are not cancelled: they just never run.
    assert not handle.cancelled()
    assert not timer.cancelled()


def test_scheduling_after_close_is_refused(loop):
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_soon_threadsafe(print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_at(loop.time() + 1, print)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.run_in_executor(None, print)
    coro = asyncio.sleep(0)
    try:
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            loop.create_task(coro)
    finally:
        coro.close()


def test_unclosed_loop_warns(loop_factory, leakcheck):
    loop = loop_factory()
    loop_repr = repr(loop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert messages, "no ResourceWarning for an unclosed loop"
    assert any(m == f"unclosed event loop {loop_repr}" for m in messages), messages
    # __del__ closed it: the leak check (fds) passes.


def test_closed_loop_does_not_warn(loop_factory, leakcheck):
    loop = loop_factory()
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
