"""looplet.testing: virtual time through `VirtualClock` and `looplet.testing.run`
(looplet only: stock asyncio has no virtual clock).

An hour of virtual sleep under a ten-minute timeout ends at once, at loop time 600 s,
without the loop ever blocking in the OS; timeouts fire in deadline order on virtual
time. And next to work outside the loop, the rule: the virtual clock jumps to the next timer only when nothing
outside the loop can deliver first. While an executor job or helper thread runs, a
child is waited for, or any fd but the loop's own wake-up fd has a reader or writer,
the loop waits for real, up to the next timer, and virtual time moves by the real time
that passed, never past that timer. Once the outside work is done, jumps resume.

No assertion reads
the wall clock: a real wait shows as a timeout that did not fire, or as the loop time
landing exactly on a deadline that a jump would also reach (then the test also checks
what only a real wait can do: the peer's data arrived, the child exited).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import warnings
from typing import Any

import pytest
from support import HANG_LIMIT, join

import looplet
import looplet.testing
from looplet.services.children import available_strategies
from looplet.testing import VirtualClock


def test_to_thread_inside_a_timeout_finishes(leakcheck) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.timeout(5):
            await asyncio.to_thread(time.sleep, 0.05)
        after_job = loop.time() - start
        # Nothing outside is left: the clock jumps again, exactly onto the deadline.
        t = loop.time()
        await asyncio.sleep(3600)
        return after_job, loop.time() - t

    after_job, slept = looplet.testing.run(main())
    assert 0 < after_job < 5
    assert slept == 3600


def test_run_shuts_the_executor_down_without_a_warning(leakcheck) -> None:
    # asyncio.Runner joins the default executor with a 300 s timeout at exit: the join's
    # helper thread is outside work too, or the clock jumps those 300 s at once.
    async def main():
        return await asyncio.to_thread(sum, [1, 2, 3])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert looplet.testing.run(main()) == 6
    assert [str(w.message) for w in caught] == []


def test_a_job_in_a_custom_executor_counts_too(leakcheck) -> None:
    from concurrent.futures import ThreadPoolExecutor

    async def main():
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1) as pool:
            async with asyncio.timeout(5):
                return await loop.run_in_executor(pool, time.sleep, 0.05)

    assert looplet.testing.run(main()) is None


def test_a_timer_before_the_job_ends_fires_after_real_time(leakcheck) -> None:
    # The job holds the clock to real time: the short timeout fires (it is really over),
    # at exactly its deadline, and the job goes on to finish.
    release = threading.Event()

    async def main():
        loop = asyncio.get_running_loop()
        job = asyncio.ensure_future(asyncio.to_thread(release.wait, HANG_LIMIT))
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.shield(job)
        timed_out_at = loop.time() - start
        release.set()
        assert await job is True
        return timed_out_at

    assert looplet.testing.run(main()) == pytest.approx(0.01, abs=1e-9)


@pytest.mark.parametrize("strategy", available_strategies())
def test_subprocess_wait_inside_a_timeout(strategy: str, monkeypatch, leakcheck) -> None:
    monkeypatch.setenv("LOOPLET_CHILD_WATCHER", strategy)

    async def main():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(0.05)")
        async with asyncio.timeout(5):
            return await proc.wait()

    assert looplet.testing.run(main()) == 0


def test_subprocess_communicate_inside_a_timeout(leakcheck) -> None:
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import time; time.sleep(0.05); print('late')",
            stdout=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(5):
            out, _ = await proc.communicate()
        return out, proc.returncode

    assert looplet.testing.run(main()) == (b"late\n", 0)


def test_socket_reply_from_another_thread_inside_a_timeout(leakcheck) -> None:
    a, b = socket.socketpair()

    def peer() -> None:
        b.recv(4)
        time.sleep(0.05)
        b.sendall(b"pong")

    async def main():
        loop = asyncio.get_running_loop()
        a.setblocking(False)
        await loop.sock_sendall(a, b"ping")
        async with asyncio.timeout(5):
            return await loop.sock_recv(a, 4)

    thread = threading.Thread(target=peer)
    thread.start()
    try:
        assert looplet.testing.run(main()) == b"pong"
    finally:
        join(thread)
        a.close()
        b.close()


def test_a_silent_peer_times_out_at_the_deadline_after_a_real_wait(leakcheck) -> None:
    a, b = socket.socketpair()

    async def main():
        loop = asyncio.get_running_loop()
        a.setblocking(False)
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await loop.sock_recv(a, 1)
        return loop.time() - start

    with a, b:
        # The loop time lands on the deadline, never past it.
        assert looplet.testing.run(main()) == pytest.approx(0.05, abs=1e-9)


def test_nothing_outside_jumps_at_once(leakcheck) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.timeout(600):
            await asyncio.sleep(300)
        return loop.time() - start, loop.statistics().blocked_seconds

    moved, blocked = looplet.testing.run(main())
    assert moved == 300
    assert blocked == 0.0  # never waited: jumped


def test_the_virtual_clock_fixture_loop_too(leakcheck) -> None:
    # set_clock() on a running loop: the same rule applies from then on.
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_clock(VirtualClock(start=loop.time()))
        async with asyncio.timeout(5):
            await asyncio.to_thread(time.sleep, 0.05)
        t = loop.time()
        await asyncio.sleep(60)
        return loop.time() - t

    assert looplet.run(main()) == 60


def test_an_hour_of_virtual_sleep_with_a_ten_minute_timeout() -> None:
    clock = VirtualClock()
    seen: dict[str, Any] = {}

    async def main() -> None:
        loop: Any = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(600):
                await asyncio.sleep(3600)
        except TimeoutError:
            seen["elapsed"] = loop.time() - start
        seen["stats"] = loop.statistics()

    wall = time.monotonic()
    looplet.testing.run(main(), clock=clock)
    assert seen["elapsed"] == 600.0 and clock.time() == 600.0
    # The loop never blocked in the OS: it jumped over the idle time.
    assert seen["stats"].blocked_seconds == 0.0
    # Not a timing assertion: real sleeping would take 600 s; this only guards that.
    assert time.monotonic() - wall < 60


def test_timeouts_fire_in_deadline_order_on_virtual_time() -> None:
    order: list[tuple[str, float]] = []

    async def waiter(name: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(asyncio.sleep(10_000), timeout)
        except TimeoutError:
            order.append((name, loop.time()))

    async def main() -> None:
        await asyncio.gather(waiter("c", 300), waiter("a", 5), waiter("b", 60.5))

    looplet.testing.run(main())
    assert order == [("a", 5.0), ("b", 60.5), ("c", 300.0)]
