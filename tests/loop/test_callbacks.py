"""Scheduling callbacks: call_soon, call_soon_threadsafe, call_later, call_at, time().

Covers FIFO order, arguments, `context=`, cancelled handles, timers firing in deadline
order (and after callbacks already queued), cancelling one or many timers, argument
errors (`None` delays, coroutines and non-callables in debug mode), the debug-mode
thread check ("Non-thread-safe operation ..."), other threads waking a loop blocked
in its poll (call_soon_threadsafe, run_coroutine_threadsafe), a monotonic time(), and
a replaced time() (a test's patch on the loop, a subclass) deciding which timers are
due and where call_later counts from.

Also the bad-input cases of call_soon, call_soon_threadsafe, call_later and call_at
(tests/bad_input.py): each wrong call fails as on stock asyncio, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from unittest import mock

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import join, wait_for

import looplet

var = contextvars.ContextVar("var", default="default")

# Used only to stop a run_forever that a broken wake-up would otherwise block forever;
# the tests then assert who stopped the loop, never how long it took.
SAFETY_DELAY = 20.0


def test_call_soon_runs_in_fifo_order(loop):
    order = []
    for i in range(100):
        loop.call_soon(order.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == list(range(100))


def test_call_soon_passes_args_and_returns_a_handle(loop):
    seen = []
    handle = loop.call_soon(lambda *a: seen.append(a), 1, "two", None)
    assert type(handle).__name__ == "Handle"  # asyncio's class, or looplet's own with its API
    assert not handle.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [(1, "two", None)]


def test_cancelled_call_soon_handle_never_runs(loop):
    order = []
    loop.call_soon(order.append, "a")
    cancelled = loop.call_soon(order.append, "cancelled")
    loop.call_soon(order.append, "b")
    cancelled.cancel()
    assert cancelled.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["a", "b"]


def test_callback_cancelling_a_later_one_in_the_same_tick(loop):
    order = []
    later = None

    def first():
        order.append("first")
        later.cancel()

    loop.call_soon(first)
    later = loop.call_soon(order.append, "later")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first"]


def test_call_soon_with_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["in ctx", "default"]


def test_call_soon_copies_the_current_context(loop):
    seen = []
    token = var.set("at call time")
    try:
        loop.call_soon(lambda: seen.append(var.get()))
    finally:
        var.reset(token)
    # A change made by one callback is invisible to the next (each runs in a copy).
    loop.call_soon(var.set, "changed by a callback")
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["at call time", "default"]
    assert var.get() == "default"


def test_call_later_and_call_at_with_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "timer ctx")
    seen = []
    loop.call_later(0, lambda: seen.append(("later", var.get())), context=ctx)
    loop.call_at(loop.time(), lambda: seen.append(("at", var.get())), context=ctx)
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert sorted(seen) == [("at", "timer ctx"), ("later", "timer ctx")]


def test_timers_fire_in_deadline_order(loop):
    order = []
    loop.call_later(0.03, order.append, "c")
    loop.call_later(0.01, order.append, "a")
    loop.call_at(loop.time() + 0.02, order.append, "b")
    loop.call_later(0.04, loop.stop)
    loop.run_forever()
    assert order == ["a", "b", "c"]


def test_due_timer_runs_after_callbacks_already_queued(loop):
    order = []
    loop.call_later(0, order.append, "timer")
    loop.call_soon(order.append, "soon")
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert order == ["soon", "timer"]


def test_negative_delay_runs_soon(loop):
    order = []
    loop.call_later(-5, order.append, "past")
    loop.call_at(loop.time() - 100, order.append, "long past")
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert sorted(order) == ["long past", "past"]


def test_timer_handle_when_and_firing_time(loop):
    before = loop.time()
    handle = loop.call_later(0.01, lambda: fired.append(loop.time()))
    after = loop.time()
    fired = []
    assert type(handle).__name__ == "TimerHandle"
    assert before + 0.01 <= handle.when() <= after + 0.01
    at = loop.call_at(123.5, print)
    assert at.when() == 123.5
    at.cancel()
    loop.run_until_complete(asyncio.sleep(0.02))
    assert len(fired) == 1
    # Never before its deadline (give or take the clock's resolution).
    assert fired[0] >= handle.when() - time.get_clock_info("monotonic").resolution


def test_far_future_timers_do_not_break_the_poll(loop):
    order = []
    far = [loop.call_later(1e9, order.append, "never"), loop.call_at(float("inf"), order.append, "never")]
    loop.call_later(0.001, order.append, "near")
    loop.call_later(0.002, loop.stop)
    loop.run_forever()
    assert order == ["near"]
    for handle in far:
        handle.cancel()


def test_call_later_none_delay_is_type_error(loop):
    with pytest.raises(TypeError, match=r"^delay must not be None$"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match=r"^when cannot be None$"):
        loop.call_at(None, print)


def test_cancelled_timer_never_runs(loop):
    order = []
    t1 = loop.call_later(0.001, order.append, "cancelled")
    loop.call_later(0.002, order.append, "kept")
    t1.cancel()
    assert t1.cancelled()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert order == ["kept"]


def test_timer_cancelled_by_an_earlier_callback(loop):
    order = []
    timer = loop.call_later(0.001, order.append, "timer")

    def cancel_it():
        order.append("cancel")
        timer.cancel()

    loop.call_soon(cancel_it)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert order == ["cancel"]


def test_cancelling_a_timer_after_it_ran_is_harmless(loop):
    order = []
    timer = loop.call_later(0, order.append, "ran")
    loop.run_until_complete(asyncio.sleep(0.001))
    timer.cancel()
    assert timer.cancelled()
    assert order == ["ran"]


def test_cancelling_many_timers(loop):
    fired = []
    far = [loop.call_later(3600 + i, fired.append, ("far", i)) for i in range(500)]
    near = [loop.call_later(0.001 * (i % 5), fired.append, ("near", i)) for i in range(500)]
    for i, handle in enumerate(near):
        if i % 10:
            handle.cancel()
    for handle in far[:-1]:
        handle.cancel()
    loop.run_until_complete(asyncio.sleep(0.02))
    assert sorted(fired) == [("near", i) for i in range(0, 500, 10)]
    far[-1].cancel()
    # Timers scheduled after the cancellations still work.
    loop.call_later(0, fired.append, "after")
    loop.run_until_complete(asyncio.sleep(0.002))
    assert fired[-1] == "after"


def test_time_is_monotonic(loop):
    samples = [loop.time() for _ in range(1000)]
    assert samples == sorted(samples)
    seen = []
    for _ in range(3):
        loop.run_until_complete(asyncio.sleep(0.001))
        seen.append(loop.time())
    assert seen == sorted(seen)
    assert seen[0] > samples[-1]


def test_call_soon_threadsafe_wakes_a_blocked_loop(loop):
    stopped_by = []

    def stop(who):
        stopped_by.append(who)
        loop.stop()

    def worker():
        loop.call_soon_threadsafe(stop, "thread")

    safety = loop.call_later(SAFETY_DELAY, stop, "safety timer")
    # Start the thread from inside the loop, so the loop is (about to be) blocked in its
    # poll with nothing ready and no timer due: only the wake-up can stop it early.
    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    loop.run_forever()
    safety.cancel()
    join(thread)
    assert stopped_by == ["thread"]


def test_call_soon_threadsafe_while_busy_then_while_blocked(loop):
    # While callbacks keep the loop busy (looplet then skips its zero-timeout polls
    # when no fd but the wake-up fd is watched), a wake-up from another thread must
    # still get its callback run; and a later one must still wake the blocked loop.
    events = []
    first_done = threading.Event()

    def busy(n):
        if not events:
            loop.call_soon(busy, n + 1)  # spin until the thread's callback has run

    def from_thread(tag):
        events.append(tag)
        if tag == "first":
            first_done.set()
        else:
            loop.stop()

    def worker():
        loop.call_soon_threadsafe(from_thread, "first")
        wait_for(first_done, "first_done")
        loop.call_soon_threadsafe(from_thread, "second")

    safety = loop.call_later(SAFETY_DELAY, loop.stop)
    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    loop.call_soon(busy, 0)
    loop.run_forever()
    safety.cancel()
    join(thread)
    assert events == ["first", "second"]


def test_call_soon_threadsafe_before_the_loop_runs(loop):
    order = []
    thread = threading.Thread(target=lambda: loop.call_soon_threadsafe(order.append, "from thread"))
    thread.start()
    join(thread)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["from thread"]


def test_call_soon_threadsafe_from_many_threads(loop):
    received = []
    n_threads, per_thread = 4, 200
    done = loop.create_future()

    def record(item):
        received.append(item)
        if len(received) == n_threads * per_thread and not done.done():
            done.set_result(None)

    def worker(t):
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, (t, i))

    stuck = []

    def safety():
        stuck.append(f"the loop slept until the safety timer with {len(received)} callbacks run")
        if not done.done():
            done.set_result(None)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        loop.call_soon(thread.start)
    timer = loop.call_later(SAFETY_DELAY, safety)
    try:
        loop.run_until_complete(done)
    finally:
        timer.cancel()
        for thread in threads:
            join(thread)
    assert stuck == []
    assert sorted(received) == [(t, i) for t in range(n_threads) for i in range(per_thread)]
    for t in range(n_threads):
        # Each thread's own calls keep their order.
        assert [i for (tt, i) in received if tt == t] == list(range(per_thread))


def test_wakeups_from_threads_are_never_lost(loop):
    # Threads keep calling call_soon_threadsafe while the loop keeps draining its wake-up
    # fd and going back to sleep: a wake-up consumed without being seen leaves the loop
    # asleep with work queued. The safety timer only ends such a hang; the assertion is on
    # who finished the run.
    n_threads, per_thread = 4, 500
    count = 0
    done = loop.create_future()

    def record():
        nonlocal count
        count += 1
        if count == n_threads * per_thread:
            done.set_result(None)

    def worker():
        for _ in range(per_thread):
            loop.call_soon_threadsafe(record)
            time.sleep(0)  # let the loop run between calls

    stuck = []

    def safety():
        stuck.append(f"the loop slept until the safety timer, {n_threads * per_thread - count} callbacks queued")
        if not done.done():
            done.set_result(None)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for thread in threads:
        loop.call_soon(thread.start)
    timer = loop.call_later(SAFETY_DELAY, safety)
    try:
        loop.run_until_complete(done)
    finally:
        timer.cancel()
        for thread in threads:
            join(thread)
    assert stuck == []
    assert count == n_threads * per_thread


def test_call_soon_threadsafe_with_context(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "threadsafe ctx")
    fut = loop.create_future()

    def worker():
        loop.call_soon_threadsafe(lambda: fut.set_result(var.get()), context=ctx)

    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    assert loop.run_until_complete(fut) == "threadsafe ctx"
    join(thread)


def test_run_coroutine_threadsafe_from_another_thread(loop):
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    results = []

    def worker():
        results.extend(asyncio.run_coroutine_threadsafe(double(i), loop).result() for i in range(5))
        loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    loop.run_forever()
    join(thread)
    assert results == [0, 2, 4, 6, 8]


def test_debug_call_soon_from_another_thread_is_refused(loop):
    loop.set_debug(True)
    errors = []
    done = loop.create_future()

    def worker():
        for attempt in (
            lambda: loop.call_soon(print),
            lambda: loop.call_later(1, print),
            lambda: loop.call_at(loop.time() + 1, print),
        ):
            try:
                attempt()
            except RuntimeError as exc:
                errors.append(str(exc))
        loop.call_soon_threadsafe(done.set_result, None)

    thread = threading.Thread(target=worker)
    loop.call_soon(thread.start)
    loop.run_until_complete(done)
    join(thread)
    assert errors == ["Non-thread-safe operation invoked on an event loop other than the current one"] * 3


def test_debug_call_soon_from_another_thread_while_not_running_is_allowed(loop):
    # The thread check only applies to a running loop (asyncio's _check_thread).
    loop.set_debug(True)
    handles = []
    thread = threading.Thread(target=lambda: handles.append(loop.call_soon(print)))
    thread.start()
    join(thread)
    assert len(handles) == 1
    handles[0].cancel()


@pytest.mark.parametrize(
    ("method", "name"),
    [
        (lambda loop, cb: loop.call_soon(cb), "call_soon"),
        (lambda loop, cb: loop.call_soon_threadsafe(cb), "call_soon_threadsafe"),
        (lambda loop, cb: loop.call_later(1, cb), "call_at"),
        (lambda loop, cb: loop.call_at(loop.time() + 1, cb), "call_at"),
    ],
    ids=["call_soon", "call_soon_threadsafe", "call_later", "call_at"],
)
def test_debug_coroutine_callback_is_type_error(loop, method, name):
    loop.set_debug(True)

    async def coro_func():
        pass

    coro = coro_func()
    try:
        with pytest.raises(TypeError, match=rf"^coroutines cannot be used with {name}\(\)$"):
            method(loop, coro)
    finally:
        coro.close()
    with pytest.raises(TypeError, match=rf"^coroutines cannot be used with {name}\(\)$"):
        method(loop, coro_func)
    with pytest.raises(TypeError, match=rf"^a callable object was expected by {name}\(\), got 42$"):
        method(loop, 42)


def test_patched_time_decides_which_timers_are_due(loop):
    # aiohttp's tests move a loop's time forward this way and expect its timers to fire.
    async def main():
        fired = []
        loop.call_later(3600, fired.append, "an hour")
        ahead = loop.time() + 7200
        with mock.patch.object(loop, "time", return_value=ahead):
            for _ in range(3):
                await asyncio.sleep(0)
            assert fired == ["an hour"]
            timer = loop.call_later(10, fired.append, "never")
            assert timer.when() == ahead + 10  # counted from the patched time
            timer.cancel()
        # The patch is gone: an hour is an hour of the real clock again.
        timer = loop.call_later(3600, fired.append, "never")
        for _ in range(3):
            await asyncio.sleep(0)
        timer.cancel()
        return fired

    assert loop.run_until_complete(main()) == ["an hour"]


def test_subclass_time_decides_which_timers_are_due(loop_kind, leakcheck):
    base = asyncio.SelectorEventLoop if loop_kind == "asyncio" else looplet.EventLoop

    class Shifted(base):
        shift = 0.0

        def time(self):
            return super().time() + self.shift

    async def main(lp):
        fired = []
        lp.call_later(3600, fired.append, "an hour")
        lp.shift = 7200.0
        for _ in range(3):
            await asyncio.sleep(0)
        return fired

    lp = Shifted()
    try:
        assert lp.run_until_complete(main(lp)) == ["an hour"]
    finally:
        lp.close()


# The loop's busiest methods may be found on the instance, not only on the class
# (looplet's are: engine/calls.py). What a program can see of that must be asyncio's.


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe", "call_later", "call_at", "create_task"])
def test_a_method_kept_from_before_close_still_refuses_a_closed_loop(loop_factory, method):
    lp = loop_factory()
    kept = getattr(lp, method)
    lp.close()
    coro = asyncio.sleep(0)
    args = {"call_soon": (lambda: None,), "call_soon_threadsafe": (lambda: None,), "create_task": (coro,)}.get(
        method, (1.0, lambda: None)
    )
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        kept(*args)
    coro.close()


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_a_method_kept_from_before_debug_mode_makes_the_debug_checks(loop, method):
    kept = getattr(loop, method)
    loop.set_debug(True)

    async def coroutine_function():
        pass

    args = (coroutine_function,) if method == "call_soon" else (1.0, coroutine_function)
    # (asyncio's call_later checks in its call_at, and names that.)
    with pytest.raises(TypeError, match="coroutines cannot be used with call_"):
        kept(*args)


def test_debug_mode_turned_off_again_schedules_as_before(loop):
    loop.set_debug(True)
    loop.set_debug(False)
    order = []

    async def main():
        loop.call_soon(order.append, "soon")
        loop.call_later(0, order.append, "later")
        loop.call_at(loop.time(), order.append, "at")
        for _ in range(3):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert order == ["soon", "later", "at"]


def test_a_subclass_call_soon_is_what_tasks_and_futures_call(loop_kind, leakcheck):
    base = asyncio.SelectorEventLoop if loop_kind == "asyncio" else looplet.EventLoop
    calls = []

    class Counting(base):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

    async def main():
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0, fut.set_result, 1)
        return await fut

    lp = Counting()
    try:
        assert lp.run_until_complete(main()) == 1
    finally:
        lp.close()
    # The task's first step, its wake-up by the future, run_until_complete's stop.
    assert len(calls) >= 3


@pytest.mark.parametrize("method", ["call_soon", "call_later", "create_future"])
def test_a_patched_method_is_called_and_restored(loop, method):
    original = getattr(loop, method)
    with mock.patch.object(loop, method, wraps=original) as patched:
        loop.set_debug(False)  # re-deciding the loop's own methods leaves a patch alone

        async def main():
            await asyncio.sleep(0)  # a task step: call_soon
            await asyncio.sleep(0.001)  # call_later, and create_future for the sleep
            return "done"

        assert loop.run_until_complete(main()) == "done"
        assert patched.call_count >= 1
    assert getattr(loop, method) == original
    assert loop.run_until_complete(asyncio.sleep(0, "after")) == "after"
