"""Calls, the loop's busiest entry points: what they queue while the loop is open and
not in debug mode, and that otherwise (`slow`) they are the loop's class's methods,
with asyncio's checks and errors. In the compiled build the loop binds them on itself;
these tests call them directly, so they hold in both builds."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support import join

import looplet
from looplet.engine.calls import Calls


@pytest.fixture
def own_loop() -> Iterator[looplet.EventLoop]:
    lp = looplet.new_event_loop()
    lp.set_debug(False)  # (PYTHONASYNCIODEBUG=1 starts loops in debug mode: the slow path)
    try:
        yield lp
    finally:
        lp.close()


def test_an_open_loop_queues_a_handle_with_the_callers_arguments(own_loop: looplet.EventLoop) -> None:
    calls = own_loop._calls
    assert not calls.slow
    seen: list[object] = []
    handle = calls.call_soon(seen.append, "soon")
    timer = calls.call_at(own_loop.time(), seen.append, "at")
    later = calls.call_later(0, seen.append, "later")
    assert not handle.cancelled() and timer.when() <= later.when()
    own_loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["soon", "at", "later"]


def test_none_for_a_delay_or_a_deadline_gets_asyncios_message(own_loop: looplet.EventLoop) -> None:
    with pytest.raises(TypeError, match="delay must not be None"):
        own_loop._calls.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        own_loop._calls.call_at(None, print)


def test_a_delay_of_the_wrong_type_fails_where_asyncios_fails(own_loop: looplet.EventLoop) -> None:
    # asyncio adds the delay to the time, and says so: no check of a compiled type.
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+"):
        own_loop._calls.call_later("1", print)


def test_closing_or_debug_mode_hands_every_call_to_the_class(own_loop: looplet.EventLoop) -> None:
    calls: Calls = own_loop._calls
    own_loop.set_debug(True)
    assert calls.slow
    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        calls.call_soon(asyncio.sleep)
    own_loop.set_debug(False)
    assert not calls.slow
    own_loop.close()
    assert calls.slow
    for call in (calls.call_soon, lambda cb: calls.call_later(1, cb), lambda cb: calls.call_at(1, cb)):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call(print)


def test_the_loop_binds_them_only_in_the_compiled_build(own_loop: looplet.EventLoop) -> None:
    bound = {name: getattr(getattr(own_loop, name), "__self__", None) is own_loop._calls for name in Calls.NAMES}
    assert bound == dict.fromkeys(Calls.NAMES, looplet.COMPILED)
    own_loop.set_debug(True)
    assert not any(getattr(getattr(own_loop, name), "__self__", None) is own_loop._calls for name in Calls.NAMES)


def test_call_soon_threadsafe_from_another_thread_wakes_the_loop(own_loop: looplet.EventLoop) -> None:
    seen: list[object] = []
    done = own_loop.create_future()

    def other_thread() -> None:
        own_loop._calls.call_soon_threadsafe(seen.append, "from a thread")
        own_loop._calls.call_soon_threadsafe(done.set_result, None)

    thread = threading.Thread(target=other_thread)
    thread.start()
    own_loop.run_until_complete(done)  # blocks in its poll until the thread wakes it
    join(thread)
    assert seen == ["from a thread"]


def test_create_task_makes_an_asyncio_task_with_its_name_and_context(own_loop: looplet.EventLoop) -> None:
    async def answer() -> int:
        return 42

    task = own_loop._calls.create_task(answer(), name="the answer")
    assert type(task) is asyncio.Task and task.get_name() == "the answer"
    assert own_loop.run_until_complete(task) == 42


def test_create_task_with_a_task_factory_is_the_factorys(own_loop: looplet.EventLoop) -> None:
    made: list[Any] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    own_loop.set_task_factory(factory)
    task = own_loop._calls.create_task(asyncio.sleep(0, "slept"))
    assert made == [task]
    assert own_loop.run_until_complete(task) == "slept"


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="from 3.14 every keyword goes to the task as it is")
def test_create_task_with_an_unknown_keyword_gets_asyncios_error(own_loop: looplet.EventLoop) -> None:
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError, match="create_task\\(\\) got an unexpected keyword argument 'eager_start'"):
        own_loop._calls.create_task(coro, eager_start=True)
    coro.close()
