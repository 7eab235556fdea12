"""The leak check of the `loop` and `leakcheck` fixtures (tests/conftest.py) can fail.

Every behavioural test relies on it to find fds, threads, child processes, signal handlers, wakeup fds,
running loops and async-generator hooks left behind; each test here leaves one of them
behind on purpose and expects the check to say so, then cleans up itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from support import join


def test_clean_body_passes(leak_checker, loop_factory):
    with leak_checker():
        loop = loop_factory()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def test_detects_an_fd(leak_checker):
    with pytest.raises(AssertionError, match=r"fds left open"), leak_checker():
        a, b = socket.socketpair()
    a.close()
    b.close()


def test_held_fds_are_exempt(leak_checker):
    with leak_checker() as check:
        a, b = socket.socketpair()
        check.hold(a, b.fileno())
    a.close()
    b.close()


def test_detects_a_thread(leak_checker):
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    try:
        with pytest.raises(AssertionError, match=r"threads left running"), leak_checker() as check:
            check.thread_join_timeout = 0.01
            thread.start()
    finally:
        release.set()
        join(thread)


def test_detects_a_zombie(leak_checker):
    proc = subprocess.Popen(["true"])
    with pytest.raises(AssertionError, match=rf"zombie processes left: \[{proc.pid}\]"), leak_checker() as check:
        check.children.discard(proc.pid)
        # waitid(WNOWAIT) waits for the exit but leaves the child a zombie.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    proc.wait()


def test_detects_a_running_child(leak_checker):
    with pytest.raises(AssertionError, match=r"child processes left running"), leak_checker():
        proc = subprocess.Popen(["sleep", "60"])
    proc.kill()
    proc.wait()


def test_detects_a_signal_handler(leak_checker):
    with pytest.raises(AssertionError, match=r"signal handlers left installed"), leak_checker():
        signal.signal(signal.SIGUSR2, lambda *a: None)
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL  # the check restored it


def test_detects_a_wakeup_fd(leak_checker):
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        with pytest.raises(AssertionError, match=r"signal wakeup fd left set"), leak_checker():
            signal.set_wakeup_fd(b.fileno())
        assert signal.set_wakeup_fd(-1) == -1


def test_detects_a_running_loop_and_hooks(leak_checker):
    hooks = sys.get_asyncgen_hooks()
    depth = sys.get_coroutine_origin_tracking_depth()
    with pytest.raises(AssertionError) as info, leak_checker():
        asyncio._set_running_loop(object())
        sys.set_asyncgen_hooks(firstiter=lambda agen: None, finalizer=lambda agen: None)
        sys.set_coroutine_origin_tracking_depth(depth + 7)
    message = str(info.value)
    assert "running loop left set" in message
    assert "async generator hooks left installed" in message
    assert "coroutine origin tracking depth" in message
    assert asyncio._get_running_loop() is None
    assert sys.get_asyncgen_hooks() == hooks
    assert sys.get_coroutine_origin_tracking_depth() == depth
