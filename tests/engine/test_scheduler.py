"""Scheduler.tick on a real loop with a virtual clock: the batch invariant, FIFO, timers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import looplet
from looplet.testing import VirtualClock


@pytest.fixture
def vloop() -> Iterator[looplet.EventLoop]:
    loop = looplet.EventLoop(clock=VirtualClock())
    yield loop
    loop.close()


def test_work_queued_during_a_tick_runs_in_the_next(vloop: looplet.EventLoop) -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        vloop.call_soon(order.append, "queued-by-first")

    vloop.call_soon(first)
    vloop.call_soon(order.append, "second")
    vloop._scheduler.tick()
    assert order == ["first", "second"]
    vloop._scheduler.tick()
    assert order == ["first", "second", "queued-by-first"]


def test_idle_loop_jumps_to_the_next_timer(vloop: looplet.EventLoop) -> None:
    fired: list[float] = []
    vloop.call_later(3600, lambda: fired.append(vloop.time()))
    vloop.call_later(60, lambda: fired.append(vloop.time()))
    vloop._scheduler.tick()
    assert fired == [60.0]
    vloop._scheduler.tick()
    assert fired == [60.0, 3600.0]


def test_timer_fires_exactly_at_its_deadline(vloop: looplet.EventLoop) -> None:
    fired: list[float] = []
    vloop.call_at(5.0, lambda: fired.append(vloop.time()))
    vloop._scheduler.tick()
    assert fired == [5.0]


def test_counters_match_a_known_workload(vloop: looplet.EventLoop) -> None:
    s = vloop._scheduler
    ticks0, run0 = s.ticks, s.callbacks_run
    for _i in range(10):
        vloop.call_soon(lambda: None)
    s.tick()
    vloop.call_later(1, lambda: None).cancel()
    vloop.call_later(2, lambda: None)
    s.tick()
    assert s.ticks - ticks0 == 2
    assert s.callbacks_run - run0 == 11
    assert s.timers.scheduled_total == 2 and s.timers.cancelled_total == 1


def test_stop_finishes_the_current_tick(vloop: looplet.EventLoop) -> None:
    order: list[str] = []

    def stopper() -> None:
        order.append("stop")
        vloop.stop()
        vloop.call_soon(order.append, "next-run")

    vloop.call_soon(stopper)
    vloop.call_soon(order.append, "same-tick")
    vloop.run_forever()
    assert order == ["stop", "same-tick"]
    vloop.call_soon(vloop.stop)
    vloop.run_forever()
    assert order == ["stop", "same-tick", "next-run"]


def test_long_virtual_sleep_with_nested_timeout() -> None:
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(600):
                await asyncio.sleep(3600)
        except TimeoutError:
            return "timeout", loop.time() - start
        return "slept", loop.time() - start

    assert looplet.testing.run(main()) == ("timeout", 600.0)


def test_tiny_timeouts_do_not_spin_the_loop() -> None:
    # asyncio's test_timeout_rounding, through the tick counter instead of a patched
    # _run_once: a poll timeout below the backend's resolution must be rounded up,
    # not polled as 0 over and over.
    loop = looplet.new_event_loop()
    assert isinstance(loop, looplet.EventLoop)

    async def wait() -> None:
        for delay in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10):
            await asyncio.sleep(delay)

    try:
        before = loop._scheduler.ticks
        loop.run_until_complete(wait())
        assert loop._scheduler.ticks - before <= 20
    finally:
        loop.close()
