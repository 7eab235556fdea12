"""looplet's child watcher (looplet/services/children.py), strategy by strategy.

Each test runs on every strategy this machine has (pidfd and thread on Linux;
kqueue where it exists) through the `strategy` fixture; the subprocess tests in
tests/endpoints/test_processes.py exercise the default one through asyncio's API. The
`leakcheck` fixture fails a test that leaves a zombie, a running child, a thread or
an fd.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from typing import Any

import pytest

import looplet
from looplet.services import children
from looplet.services.children import ChildWatcher


@pytest.fixture(params=children.available_strategies())
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_watching(strategy: str, body: Any) -> Any:
    loop = looplet.new_event_loop()
    watcher = ChildWatcher(loop._io, strategy)
    try:
        return loop.run_until_complete(body(loop, watcher))
    finally:
        watcher.close()
        loop.close()


async def exit_code(loop: Any, watcher: ChildWatcher, pid: int) -> tuple[int | None, int]:
    done: asyncio.Future[int | None] = loop.create_future()
    calls = []

    def callback(returncode: int | None) -> None:
        calls.append(threading.get_ident())
        done.set_result(returncode)

    watcher.watch(pid, callback)
    returncode = await done
    for _ in range(3):
        await asyncio.sleep(0)  # a second call would come now
    assert calls == [threading.get_ident()]  # once, on the loop's thread
    return returncode, len(watcher)


def test_exit_codes_and_signals(strategy: str, leakcheck: Any) -> None:
    async def body(loop: Any, watcher: ChildWatcher) -> list[tuple[int | None, int]]:
        procs = [subprocess.Popen(["sh", "-c", f"exit {n}"]) for n in (0, 3, 255)]
        procs.append(subprocess.Popen(["sleep", "3600"]))
        procs[-1].kill()
        codes = []
        for proc in procs:
            codes.append(await exit_code(loop, watcher, proc.pid))
            proc.returncode = codes[-1][0]  # the watcher reaped it, not Popen
        return codes

    assert run_watching(strategy, body) == [(0, 0), (3, 0), (255, 0), (-9, 0)]


def test_child_reaped_elsewhere_reports_none(strategy: str, leakcheck: Any) -> None:
    async def body(loop: Any, watcher: ChildWatcher) -> int | None:
        proc = subprocess.Popen(["true"])
        proc.wait()  # reaped by Popen before the watcher looks
        returncode, _ = await exit_code(loop, watcher, proc.pid)
        return returncode

    assert run_watching(strategy, body) is None


def test_many_children_at_once(strategy: str, leakcheck: Any) -> None:
    threads_before = threading.active_count()

    async def body(loop: Any, watcher: ChildWatcher) -> tuple[list[int | None], int]:
        procs = [subprocess.Popen(["cat"], stdin=subprocess.PIPE) for _ in range(100)]
        futures = []
        for proc in procs:
            fut: asyncio.Future[int | None] = loop.create_future()
            watcher.watch(proc.pid, fut.set_result)
            futures.append(fut)
        extra_threads = threading.active_count() - threads_before
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
        codes = await asyncio.gather(*futures)
        for proc in procs:
            proc.returncode = 0  # reaped by the watcher, not by Popen
        return codes, extra_threads

    codes, extra_threads = run_watching(strategy, body)
    assert codes == [0] * 100
    if strategy == "pidfd":
        assert extra_threads == 0  # fds on the reactor, no thread per child


def test_close_with_a_child_running_stops_watching(strategy: str, leakcheck: Any) -> None:
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    calls: list[int | None] = []
    loop = looplet.new_event_loop()
    watcher = ChildWatcher(loop._io, strategy)
    watcher.watch(proc.pid, calls.append)
    watcher.close()  # the pidfd closes now; no callback will run
    loop.close()
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait() == 0  # still ours to reap: nobody else took it
    assert calls == []
    with pytest.raises(RuntimeError, match="closed"):
        watcher.watch(proc.pid, calls.append)


def test_loop_close_closes_the_watcher(leakcheck: Any) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    loop = looplet.new_event_loop()
    loop.run_until_complete(main())
    loop.close()  # the leak check sees the pidfds and the kqueue closed


def test_strategy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLET_CHILD_WATCHER", "thread")
    assert children.choose_strategy() == "thread"
    monkeypatch.setenv("LOOPLET_CHILD_WATCHER", "sigchld")
    with pytest.raises(ValueError, match="LOOPLET_CHILD_WATCHER must be one of pidfd, kqueue, thread, not 'sigchld'"):
        children.choose_strategy()
    monkeypatch.delenv("LOOPLET_CHILD_WATCHER")
    assert children.choose_strategy() == children.available_strategies()[0]
    if hasattr(os, "pidfd_open"):
        assert children.choose_strategy() in ("pidfd", "thread")  # pidfd unless a sandbox forbids it
