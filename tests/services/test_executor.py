"""Blocking work off the loop (looplet/services/executor.py): run_in_executor, the default executor.

Covers run_in_executor with the default executor and with a custom one (results,
exceptions, the worker threads), asyncio.to_thread, set_default_executor (and its
TypeError), shutdown_default_executor (threads gone afterwards; later use of the
default executor refused; the 3.12+ `timeout` parameter, and on 3.13+ the warning when
it expires), close() not waiting for executor jobs, and the debug-mode check on
coroutine functions. Also the bad-input cases of run_in_executor, set_default_executor
and shutdown_default_executor (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import join, wait_for

var = contextvars.ContextVar("var", default="default")


def test_run_in_executor_default(loop):
    def work(a, b):
        return a + b, threading.get_ident(), threading.current_thread().name

    fut = loop.run_in_executor(None, work, 2, 3)
    assert isinstance(fut, asyncio.Future)
    result, ident, name = loop.run_until_complete(fut)
    assert result == 5
    assert ident != threading.get_ident()
    assert name.startswith("asyncio")


def test_run_in_executor_exception(loop):
    def fail():
        raise KeyError("from thread")

    with pytest.raises(KeyError, match=r"from thread"):
        loop.run_until_complete(loop.run_in_executor(None, fail))


def test_run_in_executor_many_jobs(loop):
    async def main():
        return await asyncio.gather(*[loop.run_in_executor(None, pow, i, 2) for i in range(50)])

    assert loop.run_until_complete(main()) == [i * i for i in range(50)]


def test_run_in_executor_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom") as pool:
        name = loop.run_until_complete(loop.run_in_executor(pool, lambda: threading.current_thread().name))
    assert name.startswith("custom")


def test_to_thread_copies_the_context(loop):
    async def main():
        var.set("main's value")
        return await asyncio.to_thread(lambda x: (x, var.get(), threading.get_ident()), "arg")

    arg, value, ident = loop.run_until_complete(main())
    assert (arg, value) == ("arg", "main's value")
    assert ident != threading.get_ident()


def test_set_default_executor(loop):
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mydefault")
    loop.set_default_executor(pool)
    name = loop.run_until_complete(loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("mydefault")
    # shutdown_default_executor shuts down the executor that was set.
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_set_default_executor_not_a_thread_pool_is_type_error(loop):
    class NotAPool(concurrent.futures.Executor):
        pass

    with pytest.raises(TypeError, match=r"^executor must be ThreadPoolExecutor instance$"):
        loop.set_default_executor(NotAPool())
    with pytest.raises(TypeError, match=r"^executor must be ThreadPoolExecutor instance$"):
        loop.set_default_executor(None)


def test_shutdown_default_executor_joins_its_threads(loop):
    before = set(threading.enumerate())

    async def main():
        await asyncio.gather(*[loop.run_in_executor(None, pow, i, 2) for i in range(20)])
        workers = [t for t in threading.enumerate() if t not in before]
        assert workers, "the default executor started no thread"
        await loop.shutdown_default_executor()
        return workers

    workers = loop.run_until_complete(main())
    # Gone as soon as shutdown_default_executor() returned: no waiting here.
    assert [t for t in workers if t.is_alive()] == []
    assert [t for t in threading.enumerate() if t not in before] == []


def test_shutdown_default_executor_without_executor(loop):
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_in_executor_after_shutdown_is_refused(loop):
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match=r"^Executor shutdown has been called$"):
        loop.run_in_executor(None, print)
    # An explicit executor is still fine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert loop.run_until_complete(loop.run_in_executor(pool, pow, 3, 2)) == 9


@pytest.mark.skipif(sys.version_info < (3, 12), reason="shutdown_default_executor(timeout) is new in 3.12")
def test_shutdown_default_executor_with_timeout(loop):
    before = set(threading.enumerate())

    async def main():
        await loop.run_in_executor(None, pow, 2, 2)
        await loop.shutdown_default_executor(timeout=60)
        await loop.shutdown_default_executor(timeout=None)

    loop.run_until_complete(main())
    assert [t for t in threading.enumerate() if t not in before] == []


@pytest.mark.skipif(
    sys.version_info < (3, 13), reason="before 3.13 the timeout only bounds the join after the shutdown finished"
)
def test_shutdown_default_executor_timeout_expires(loop):
    release = threading.Event()
    started = threading.Event()

    def blocked():
        started.set()
        wait_for(release, "release")

    async def main():
        job = loop.run_in_executor(None, blocked)
        await asyncio.to_thread(started.wait)
        with pytest.warns(RuntimeWarning, match=r"did not finishing joining its threads within 0\.01 seconds"):
            await loop.shutdown_default_executor(timeout=0.01)
        release.set()
        await job

    try:
        loop.run_until_complete(main())
    finally:
        release.set()


def test_close_does_not_wait_for_executor_jobs(loop):
    release = threading.Event()
    started = threading.Event()
    # Only ends a close() that would wait for the job; never reached otherwise.
    safety = threading.Timer(20, release.set)

    def blocked():
        started.set()
        wait_for(release, "release")
        return "job done"

    job = loop.run_in_executor(None, blocked)
    loop.run_until_complete(asyncio.to_thread(started.wait))
    safety.start()
    try:
        loop.close()
        assert not release.is_set(), "close() waited for a running executor job"
    finally:
        release.set()
        safety.cancel()
        join(safety)
    assert not job.done()  # its loop is closed: the result can never be delivered


def test_debug_run_in_executor_coroutine_is_type_error(loop):
    loop.set_debug(True)

    async def coro_func():
        pass

    with pytest.raises(TypeError, match=r"^coroutines cannot be used with run_in_executor\(\)$"):
        loop.run_in_executor(None, coro_func)
