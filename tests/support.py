"""Waits on other threads and processes for the tests, each bounded by its own timeout.

A test that waits for a thread, an event set by another thread, or a child process
must not hang if the thing it waits for never happens (a lost wake-up, a deadlock):
it fails at once with a message that names what it waited for, instead of sitting out
pytest-timeout's two minutes and leaving a stuck thread behind. The limit is a bound
on a hang, never a timing assertion: nothing that works comes near it.
"""

from __future__ import annotations

import subprocess
import threading

#: How long a wait may take before the test fails as hung.
HANG_LIMIT = 30.0


def join(thread: threading.Thread, timeout: float = HANG_LIMIT) -> None:
    """Join `thread`; fail if it is still running after `timeout` seconds."""
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"thread {thread.name!r} still running after {timeout} s: hung")


def wait_for(event: threading.Event | threading.Barrier, what: str, timeout: float = HANG_LIMIT) -> None:
    """Wait for `event` (set by another thread) or for all parties of a barrier; fail if
    that does not happen within `timeout` seconds."""
    if isinstance(event, threading.Barrier):
        try:
            event.wait(timeout)
        except threading.BrokenBarrierError:
            raise AssertionError(f"{what}: not every thread reached the barrier within {timeout} s") from None
        return
    if not event.wait(timeout):
        raise AssertionError(f"{what}: not set within {timeout} s")


def reap(proc: subprocess.Popen[bytes], timeout: float = HANG_LIMIT) -> int:
    """Wait for the child `proc`; kill it and fail if it has not exited within `timeout`."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"child {proc.args!r} still running after {timeout} s: hung") from None
