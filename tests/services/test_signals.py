"""Unix signal handlers: add_signal_handler and remove_signal_handler.

Covers delivery (`os.kill(os.getpid(), SIGUSR1)`) to a handler that runs on the loop,
with arguments, also when the loop is asleep with nothing else to do; replacing and
removing handlers (return values, the process handler reset to SIG_DFL or, for SIGINT,
default_int_handler); argument errors (non-int, invalid number, coroutines,
uncatchable signals); the main-thread rule; and cleanup at close (no handler and no
wakeup fd left: the `loop` fixture checks both after every test).

Faults: signals delivered while the loop is blocked in its poll with no timer (the
handler runs once per signal delivered, also for real-time signals queued while it
was blocked), the loop seen asleep through /proc (the `loop_sleep` fixture). Also the
bad-input cases of add_signal_handler and remove_signal_handler (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import SAFETY_TIMEOUT, SleepProbe, join

SAFETY_DELAY = 20.0  # only ends a run a lost signal would hang; never asserted on


def deliver_and_wait(loop, sig, result_fut, *, kill_later=False):
    """Send `sig` to this process and run the loop until `result_fut` is done."""
    timed_out = []

    def safety():
        timed_out.append(True)
        if not result_fut.done():
            result_fut.set_result("signal never handled")

    timer = loop.call_later(SAFETY_DELAY, safety)
    if kill_later:
        # Sent from a callback: the loop then sleeps in its poll until the signal wakes it.
        loop.call_soon(os.kill, os.getpid(), sig)
    else:
        os.kill(os.getpid(), sig)
    try:
        return loop.run_until_complete(result_fut)
    finally:
        timer.cancel()
        assert timed_out == []


def test_signal_reaches_the_handler_on_the_loop(loop):
    fut = loop.create_future()
    seen = []

    def handler(*args):
        seen.append((args, asyncio.get_running_loop() is loop, threading.current_thread() is threading.main_thread()))
        fut.set_result("handled")

    loop.add_signal_handler(signal.SIGUSR1, handler, "arg1", 2)
    try:
        assert deliver_and_wait(loop, signal.SIGUSR1, fut) == "handled"
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert seen == [(("arg1", 2), True, True)]


def test_signal_wakes_a_sleeping_loop(loop):
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR2, fut.set_result, "woken")
    try:
        assert deliver_and_wait(loop, signal.SIGUSR2, fut, kill_later=True) == "woken"
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)


def test_handler_runs_for_each_signal_delivered_in_turn(loop):
    calls = []
    futs = [loop.create_future() for _ in range(3)]

    def handler():
        calls.append(len(calls))
        futs[len(calls) - 1].set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, handler)
    try:
        for fut in futs:
            deliver_and_wait(loop, signal.SIGUSR1, fut)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert calls == [0, 1, 2]


def test_two_signals_two_handlers(loop):
    got = []
    fut1, fut2 = loop.create_future(), loop.create_future()

    def on(name, fut):
        got.append(name)
        fut.set_result(name)

    loop.add_signal_handler(signal.SIGUSR1, on, "usr1", fut1)
    loop.add_signal_handler(signal.SIGUSR2, on, "usr2", fut2)
    try:
        deliver_and_wait(loop, signal.SIGUSR2, fut2)
        deliver_and_wait(loop, signal.SIGUSR1, fut1)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGUSR2)
    assert got == ["usr2", "usr1"]


def test_replacing_a_handler(loop):
    got = []
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.append, "first")
    loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("second"), fut.set_result(None)))
    try:
        deliver_and_wait(loop, signal.SIGUSR1, fut)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert got == ["second"]


def test_remove_signal_handler(loop):
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, print)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_removing_a_sigint_handler_restores_default_int_handler(loop):
    previous = signal.getsignal(signal.SIGINT)
    loop.add_signal_handler(signal.SIGINT, print)
    try:
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    finally:
        assert loop.remove_signal_handler(signal.SIGINT) is True
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, previous)


def test_wakeup_fd_is_set_only_while_handlers_exist(loop):
    assert signal.set_wakeup_fd(-1) == -1
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.add_signal_handler(signal.SIGUSR2, print)
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)  # put it back
    assert wakeup != -1
    loop.remove_signal_handler(signal.SIGUSR1)
    current = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(current)
    assert current == wakeup  # still in use by the SIGUSR2 handler
    loop.remove_signal_handler(signal.SIGUSR2)
    assert signal.set_wakeup_fd(-1) == -1


def test_close_removes_the_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.add_signal_handler(signal.SIGUSR2, print)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_non_int_signal_is_type_error(loop):
    with pytest.raises(TypeError, match=r"^sig must be an int, not '10'$"):
        loop.add_signal_handler("10", print)
    with pytest.raises(TypeError, match=r"^sig must be an int, not None$"):
        loop.remove_signal_handler(None)


@pytest.mark.parametrize("sig", [0, 1000, -1])
def test_invalid_signal_is_value_error(loop, sig):
    with pytest.raises(ValueError, match=rf"^invalid signal number {sig}$"):
        loop.add_signal_handler(sig, print)
    with pytest.raises(ValueError, match=rf"^invalid signal number {sig}$"):
        loop.remove_signal_handler(sig)


def test_coroutine_handler_is_type_error(loop):
    async def coro_func():
        pass

    coro = coro_func()
    try:
        with pytest.raises(TypeError, match=r"^coroutines cannot be used with add_signal_handler\(\)$"):
            loop.add_signal_handler(signal.SIGUSR1, coro)
    finally:
        coro.close()
    with pytest.raises(TypeError, match=r"^coroutines cannot be used with add_signal_handler\(\)$"):
        loop.add_signal_handler(signal.SIGUSR1, coro_func)
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal_is_runtime_error(loop, sig):
    with pytest.raises(RuntimeError, match=rf"^sig {int(sig)} cannot be caught$"):
        loop.add_signal_handler(sig, print)
    assert loop.remove_signal_handler(sig) is False

    # Nothing was left installed: the fixture checks the wakeup fd after the test.


def test_uncatchable_signal_keeps_other_handlers(loop):
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, fut.set_result, "still works")
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)
    try:
        assert deliver_and_wait(loop, signal.SIGUSR1, fut) == "still works"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_add_signal_handler_from_another_thread_is_runtime_error(loop):
    errors = []

    def worker():
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=worker)
    thread.start()
    join(thread)
    assert len(errors) == 1
    assert "main thread" in errors[0]
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_add_signal_handler_after_close_is_runtime_error(loop):
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_signal_handler(signal.SIGUSR1, print)


# -- signals arriving during a blocking poll ---------------------------------------------


def test_signal_during_a_blocking_poll_runs_the_handler_once_each(
    loop: asyncio.AbstractEventLoop, loop_sleep: SleepProbe
) -> None:
    """No timer is scheduled, so the loop sleeps in its poll with no timeout: only the
    signal can wake it. Each signal is sent once the loop is seen asleep, and the next
    only after the handler ran: one handler call per signal."""
    signals = 5
    calls: list[int] = []
    handled = threading.Event()
    done: asyncio.Future[str] = loop.create_future()

    def handler() -> None:
        calls.append(threading.get_native_id())
        handled.set()

    def sender() -> None:
        outcome = "all handled"
        for n in range(signals):
            if not loop_sleep.wait():
                outcome = f"the loop never slept before signal {n}"
                break
            handled.clear()
            os.kill(os.getpid(), signal.SIGUSR1)
            if not handled.wait(SAFETY_TIMEOUT):
                outcome = f"signal {n} never handled"
                break
        loop.call_soon_threadsafe(done.set_result, outcome)

    loop.add_signal_handler(signal.SIGUSR1, handler)
    thread = threading.Thread(target=sender)
    try:
        thread.start()
        assert loop.run_until_complete(done) == "all handled"
    finally:
        join(thread)
        loop.remove_signal_handler(signal.SIGUSR1)
    assert calls == [loop_sleep.tid] * signals  # each on the loop's thread


def test_queued_signals_run_the_handler_once_per_delivery(
    loop: asyncio.AbstractEventLoop, loop_sleep: SleepProbe
) -> None:
    """Real-time signals queue: five sent while blocked are five deliveries, and CPython's
    C handler writes one byte per delivery to the wakeup fd. asyncio runs the handler once
    per byte. To make all five bytes land before the loop reads any, the signal is blocked
    in every thread while they are sent, then unblocked in the sending thread, which takes
    all five deliveries inside one C call that holds the GIL."""
    sig = signal.SIGRTMIN
    signals = 5
    calls: list[int] = []
    done: asyncio.Future[str] = loop.create_future()

    def sender() -> None:
        outcome = "sent"
        if loop_sleep.wait():
            for _ in range(signals):
                os.kill(os.getpid(), sig)  # pending: blocked in every thread
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})  # the five deliveries, here
            if not loop_sleep.wait():  # asleep again: it has run what the bytes asked
                outcome = "the loop never slept after the signals"
        else:
            outcome = "the loop never slept"
        loop.call_soon_threadsafe(done.set_result, outcome)

    loop.add_signal_handler(sig, calls.append, 1)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {sig})  # inherited by the sender
    thread = threading.Thread(target=sender)
    try:
        thread.start()
        assert loop.run_until_complete(done) == "sent"
    finally:
        join(thread)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        loop.remove_signal_handler(sig)
    assert len(calls) == signals
