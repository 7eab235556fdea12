"""Lifecycle of a loop: run_forever, run_until_complete, stop, is_running, is_closed, close.

Covers the results and errors of run_until_complete (coroutine, future, awaitable, a
future of another loop, nested and concurrent runs, runs after close, "stopped before
Future completed"), the exact semantics of stop() (the tick in progress completes;
stop() before run_forever() runs one tick), BaseExceptions escaping run_forever, close()
(refused while running, idempotent, drops pending callbacks and timers, then every
scheduling call is refused), the ResourceWarning of a loop never closed, and a looplet
loop being an AbstractEventLoop but not a subclass of asyncio's BaseEventLoop.

Faults, each on stock asyncio and on looplet with the same outcome:

- `os.fork()` from a callback of a running loop: the child runs a fresh loop (an echo
  over a socketpair) and exits 0; the parent's loop carries on.
- A loop closed with pending tasks, transports and executor jobs, through asyncio's
  Runner (what `asyncio.run` does) and through `close()` alone: the same warnings and
  reports as asyncio, and no fd left once the garbage is collected.
- KeyboardInterrupt raised by a callback, or by SIGINT arriving in a blocking poll, during
  `run_until_complete`: it propagates and the loop stays usable; under asyncio's Runner,
  SIGINT cancels the main task and the runner can run again. "The loop is asleep in its
  poll" is read from the loop thread's wait channel in /proc (the `loop_sleep` fixture,
  which skips, saying so, where the kernel does not show it).

Also the bad-input cases of run_until_complete, run_forever and close (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import EventRecorder, PlainEcho, SleepProbe, echo_round_trips, join, report_collector

import looplet

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


def test_unclosed_loop_warns(loop_factory, is_looplet, leakcheck):
    loop = loop_factory()
    loop_repr = repr(loop)
    unraisable: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del loop
            gc.collect()
    finally:
        sys.unraisablehook = hook
    if is_looplet:
        assert unraisable == []
    else:
        # asyncio's loop is collected with the socket of its self-pipe, in one cycle
        # whose finalizers run in no set order: when the socket's runs first, the loop's
        # __del__ then fails in close() (ValueError: Invalid file descriptor: -1). Seen
        # on 3.11; not what this test is about.
        assert all(isinstance(u.exc_value, ValueError) for u in unraisable), unraisable
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


# -- a looplet loop is not asyncio's -----------------------------------------------------


def test_looplet_loop_is_its_own_abstract_event_loop(leakcheck):
    loop = looplet.new_event_loop()
    try:
        assert isinstance(loop, looplet.EventLoop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()


# -- fork with a running loop ------------------------------------------------------------


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


async def child_echo() -> bytes:
    """What the child runs on its fresh loop: a transport echo, a timer, a task."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    await loop.connect_accepted_socket(PlainEcho, b)
    reader, writer = await asyncio.open_connection(sock=a)
    writer.write(b"from the child\n")
    line = await reader.readline()
    await asyncio.sleep(0.001)
    writer.close()
    await writer.wait_closed()
    return line


def run_child(loop_factory: LoopFactory) -> NoReturn:
    """The forked child's whole life: never returns into pytest."""
    code = 1
    try:
        if sys.version_info < (3, 12):
            # 3.12+ reset the running loop in the child themselves (asyncio's at-fork hook);
            # 3.11 leaves the parent's, for both loops alike.
            asyncio.events._set_running_loop(None)
        assert asyncio._get_running_loop() is None
        fresh = loop_factory()
        try:
            code = 0 if fresh.run_until_complete(child_echo()) == b"from the child\n" else 3
        finally:
            fresh.close()
    except BaseException:
        traceback.print_exc()
        code = 2
    finally:
        os._exit(code)


def test_fork_from_a_callback_child_runs_a_fresh_loop(
    loop: asyncio.AbstractEventLoop, loop_factory: LoopFactory
) -> None:
    if not hasattr(os, "pidfd_open"):
        pytest.skip("os.pidfd_open is needed to wait for the child without a thread")
    # 3.12+ warn about fork() in a process with threads; there must be none.
    assert threading.active_count() == 1

    def fork() -> int:
        pid = os.fork()
        if pid == 0:
            run_child(loop_factory)
        return pid

    async def child_exit_status(pid: int) -> int:
        pidfd = os.pidfd_open(pid)
        exited: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    async def main() -> tuple[int, int, int]:
        before = await echo_round_trips(3)
        forked: asyncio.Future[int] = loop.create_future()
        loop.call_soon(lambda: forked.set_result(fork()))
        pid = await forked
        during = await echo_round_trips(3)  # while the child runs, with copies of our fds
        code = await child_exit_status(pid)
        after = await echo_round_trips(3)
        assert (before, during, after) == (3, 3, 3)
        return code, pid, after

    code, pid, _ = loop.run_until_complete(main())
    assert code == 0, f"child {pid} exited with {code} (2: it raised, see its traceback above)"


# -- closing a loop that still has work --------------------------------------------------


def unclosed_resource_warnings(caught: list[warnings.WarningMessage]) -> tuple[int, int, list[str]]:
    """(unclosed transports, unclosed sockets, anything else) among caught warnings."""
    transports = sockets = 0
    other = []
    for w in caught:
        text = str(w.message)
        if w.category is ResourceWarning and text.startswith("unclosed transport "):
            transports += 1
        elif w.category is ResourceWarning and text.startswith("unclosed <socket.socket "):
            sockets += 1
        else:
            other.append(f"{w.category.__name__}: {text}")
    return transports, sockets, other


async def leave_work_behind(
    job_may_finish: threading.Event, cancelled: list[str]
) -> tuple[asyncio.Server, asyncio.Transport, asyncio.Future[bool], asyncio.Task[None]]:
    """A server, a connection (both ends are transports), a task waiting forever and an
    executor job blocked until `job_may_finish`: returned still running."""
    loop = asyncio.get_running_loop()

    async def wait_forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("task")
            job_may_finish.set()
            raise

    task = asyncio.ensure_future(wait_forever())
    accepted = EventRecorder()
    server = await loop.create_server(lambda: accepted, "127.0.0.1", 0)
    transport, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname())
    await accepted.made
    job = loop.run_in_executor(None, job_may_finish.wait)
    await asyncio.sleep(0)
    return server, transport, job, task


def test_runner_closes_a_loop_with_pending_work(loop_factory: LoopFactory, leakcheck: Any) -> None:
    """What asyncio.run does at the end: cancel the tasks left, wait for the default
    executor, close the loop. Transports are not closed by it, on either loop: they are
    collected with asyncio's 'unclosed transport' warning, and their fds are closed."""
    job_may_finish = threading.Event()
    cancelled: list[str] = []
    reports: list[dict[str, Any]] = []

    async def main() -> tuple[asyncio.Server, asyncio.Transport, asyncio.Future[bool], asyncio.Task[None]]:
        report_sink = reports.append
        asyncio.get_running_loop().set_exception_handler(lambda lp, ctx: report_sink(ctx))
        return await leave_work_behind(job_may_finish, cancelled)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            server, transport, job, task = runner.run(main())
            the_loop = runner.get_loop()
        assert the_loop.is_closed()
        assert cancelled == ["task"] and task.cancelled()
        assert job.done() and job.result() is True  # waited for, and its result delivered
        assert not transport.is_closing()
        del server, transport, job, task, the_loop, runner
        gc.collect()
    transports, sockets, other = unclosed_resource_warnings(caught)
    assert (transports, other) == (2, [])
    assert 1 <= sockets <= 3  # the listener, and the connection's ends its transports did not close first
    assert reports == []


def test_close_with_pending_task_transports_and_executor_job(loop: asyncio.AbstractEventLoop) -> None:
    """loop.close() alone: no crash; the task is reported destroyed while pending when it
    is collected; the executor job runs on and its result is dropped; closing a transport
    afterwards is refused as asyncio refuses it; the fds go with the garbage."""
    reports = report_collector(loop)
    job_may_finish = threading.Event()
    cancelled: list[str] = []
    server, transport, job, task = loop.run_until_complete(leave_work_behind(job_may_finish, cancelled))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        job_may_finish.set()  # the job ends in its thread; the closed loop takes no result
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            transport.close()
        assert not task.done() and not job.done()
        del server, transport, job, task
        gc.collect()
    assert cancelled == []
    assert [ctx["message"] for ctx in reports] == ["Task was destroyed but it is pending!"]
    transports, sockets, other = unclosed_resource_warnings(caught)
    assert (transports, other) == (2, [])
    assert 1 <= sockets <= 3


# -- KeyboardInterrupt during run_until_complete -----------------------------------------


@contextlib.contextmanager
def default_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt) for the duration."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def assert_loop_still_works(
    loop: asyncio.AbstractEventLoop, waiting: asyncio.Future[bytes], peer: socket.socket
) -> None:
    """After the interrupt: not running, and a reader registered before still serves the
    future the interrupted run was waiting for."""
    assert not loop.is_running()
    assert asyncio._get_running_loop() is None
    peer.send(b"after the interrupt")
    assert loop.run_until_complete(waiting) == b"after the interrupt"
    assert loop.run_until_complete(asyncio.sleep(0, "alive")) == "alive"


def watch_reader(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> asyncio.Future[bytes]:
    waiting: asyncio.Future[bytes] = loop.create_future()

    def on_readable() -> None:
        loop.remove_reader(sock.fileno())
        waiting.set_result(sock.recv(100))

    loop.add_reader(sock.fileno(), on_readable)
    return waiting


def test_keyboard_interrupt_from_a_callback(
    loop: asyncio.AbstractEventLoop, socketpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = socketpair
    waiting = watch_reader(loop, a)
    timer = loop.call_later(3600, waiting.cancel)

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(waiting)
    assert not waiting.done() and not timer.cancelled()
    assert_loop_still_works(loop, waiting, b)
    timer.cancel()


def test_sigint_during_a_blocking_poll(
    loop: asyncio.AbstractEventLoop, socketpair: tuple[socket.socket, socket.socket], loop_sleep: SleepProbe
) -> None:
    """The signal arrives while the loop sleeps in its poll (nothing scheduled): Python's
    handler raises KeyboardInterrupt out of the poll itself."""
    a, b = socketpair
    waiting = watch_reader(loop, a)
    sent: list[bool] = []

    def interrupter() -> None:
        if loop_sleep.wait():
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        else:
            loop.call_soon_threadsafe(waiting.set_exception, AssertionError("the loop never slept"))

    thread = threading.Thread(target=interrupter)
    with default_sigint():
        thread.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(waiting)
        finally:
            join(thread)
    assert sent == [True]
    assert not waiting.done()
    assert_loop_still_works(loop, waiting, b)


def test_sigint_under_asyncio_runner_cancels_main_and_the_runner_goes_on(
    loop_factory: LoopFactory, loop_sleep: SleepProbe
) -> None:
    """asyncio.Runner's own SIGINT handling (what asyncio.run does): the main task is
    cancelled, run() raises KeyboardInterrupt, and the same runner and loop run again."""
    seen: list[str] = []

    async def main() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    def interrupter() -> None:
        if loop_sleep.wait():
            os.kill(os.getpid(), signal.SIGINT)

    with default_sigint(), asyncio.Runner(loop_factory=loop_factory) as runner:
        thread = threading.Thread(target=interrupter)
        thread.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                runner.run(main())
        finally:
            join(thread)
        assert seen == ["cancelled"]
        assert runner.run(asyncio.sleep(0, "alive")) == "alive"
        assert runner.get_loop().run_until_complete(echo_round_trips(3)) == 3
