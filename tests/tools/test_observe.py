"""looplet's tools (looplet/tools/): statistics(), timings, the seeded shuffle, set_clock, the trace.

These are looplet's own tools, which stock asyncio does not have, so most tests here
run on looplet only; where a behaviour has an asyncio counterpart (FIFO order without
a seed, the interleaving a program gives whether or not it is observed) the test runs
on both loops. Virtual time is tested in tests/test_testing.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import socket
import subprocess
import sys
import time
import types
from collections import deque
from pathlib import Path
from typing import Any

import pytest

import looplet
from looplet.engine.handles import Handle
from looplet.engine.reactor import READ, pick_reactor
from looplet.engine.watch import Watch
from looplet.testing import VirtualClock

# -- statistics --------------------------------------------------------------------------


def noop() -> None:
    pass


@pytest.fixture
def lloop(leakcheck: Any) -> Any:
    """A looplet loop (the tools below are looplet's), closed at teardown."""
    loop = looplet.new_event_loop()
    yield loop
    loop.close()


def test_statistics_count_a_known_workload_exactly(lloop: Any) -> None:
    before = lloop.statistics()
    for _ in range(100):
        lloop.call_soon(noop)
    timers = [lloop.call_later(3600 + i, noop) for i in range(10)]
    for timer in timers[1:]:
        timer.cancel()
    lloop.call_soon(lloop.stop)
    lloop.run_forever()
    after = lloop.statistics()
    # One tick ran the 100 callbacks and stop(); nothing else was queued.
    assert after.ticks - before.ticks == 1
    assert after.callbacks_run - before.callbacks_run == 101
    assert (after.timers_scheduled, after.timers_cancelled, after.timers_pending) == (10, 9, 1)
    assert after.registered_fds == 0  # the loop's own wake-up fd is not counted
    assert after.tasks_alive == 0 and after.wakes == 0
    # A cancelled handle in the queue is skipped, not counted as run.
    handles = [lloop.call_soon(noop) for _ in range(5)]
    handles[2].cancel()
    lloop.call_soon(lloop.stop)
    lloop.run_forever()
    assert lloop.statistics().callbacks_run - after.callbacks_run == 5
    timers[0].cancel()


def test_statistics_count_wakes_and_tasks(lloop: Any) -> None:
    a, b = socket.socketpair()
    got: list[bytes] = []

    def on_readable() -> None:
        got.append(a.recv(100))
        if len(got) == 3:
            lloop.remove_reader(a)
            lloop.stop()

    async def sender() -> None:
        for chunk in (b"x", b"y", b"z"):
            b.send(chunk)
            await asyncio.sleep(0.001)

    try:
        lloop.add_reader(a, on_readable)
        task = lloop.create_task(sender())
        assert lloop.statistics().tasks_alive == 1 and lloop.statistics().registered_fds == 1
        start = lloop.statistics()
        lloop.run_forever()
        lloop.run_until_complete(task)
        stats = lloop.statistics()
        assert got == [b"x", b"y", b"z"]
        assert stats.wakes - start.wakes == 3 and stats.coalesced_wakes == 0
        assert stats.tasks_alive == 0 and stats.polls > start.polls
    finally:
        a.close()
        b.close()


def test_a_wake_of_a_queued_watch_is_counted_as_coalesced() -> None:
    ready: deque[object] = deque()
    reactor = pick_reactor(ready, None)
    a, b = socket.socketpair()
    try:
        loop = types.SimpleNamespace(get_debug=lambda: False)  # all a handle asks of its loop here
        reactor.add(a.fileno(), READ, Handle(noop, (), loop, contextvars.copy_context()))
        b.send(b"!")
        events = reactor.poll(0.0)
        reactor.dispatch(events)
        reactor.dispatch(events)  # before the watch ran: queued once, the second coalesced
        assert len(ready) == 1 and isinstance(ready[0], Watch)
        assert (reactor.wakes, reactor.coalesced_wakes) == (2, 1)
    finally:
        reactor.close()
        a.close()
        b.close()


def test_timing_is_off_by_default_and_fills_the_timed_fields(lloop: Any) -> None:
    stats = lloop.statistics()
    assert (stats.timing, stats.busy_seconds, stats.slowest_callbacks, stats.lag) == (False, 0.0, (), None)
    assert lloop._scheduler.observed == lloop.get_debug()  # the fast path, unless in debug mode

    def named_callback() -> None:
        pass

    async def sleeper() -> None:
        await asyncio.sleep(0)

    lloop.enable_timing()
    for _ in range(20):
        lloop.call_soon(named_callback)
    for i in range(3):
        lloop.call_later(i / 1000, named_callback)
    lloop.run_until_complete(asyncio.sleep(0.01))
    lloop.run_until_complete(sleeper())
    stats = lloop.statistics()
    assert stats.timing and stats.busy_seconds > 0
    names = [name for name, _ in stats.slowest_callbacks]
    assert len(names) == 10
    assert all(seconds >= 0 for _, seconds in stats.slowest_callbacks)
    assert [s for _, s in stats.slowest_callbacks] == sorted((s for _, s in stats.slowest_callbacks), reverse=True)
    assert stats.lag is not None and stats.lag.count == 4  # 3 call_later + sleep(0.01)'s timer
    assert 0.0 <= stats.lag.percentile(50) <= stats.lag.percentile(99) <= stats.lag.max or stats.lag.max == 0.0
    lloop.enable_timing(False)
    assert lloop._scheduler.observed == lloop.get_debug() and lloop.statistics().lag is None


def test_slowest_callbacks_name_tasks_and_callables() -> None:
    async def main() -> None:
        loop: Any = asyncio.get_running_loop()
        loop.enable_timing()
        loop.call_soon(noop)
        await asyncio.create_task(asyncio.sleep(0), name="napper")
        await asyncio.sleep(0)
        names = {name for name, _ in loop.statistics().slowest_callbacks}
        assert "noop" in names
        assert any(name.startswith("napper ") for name in names)

    looplet.testing.run(main())


def test_lag_histogram_percentiles() -> None:
    lag = looplet.LagHistogram(bounds=(0.001, 0.01, 0.1), counts=(5, 3, 2, 0), max=0.05, mean=0.01)
    assert lag.count == 10
    assert lag.percentile(50) == 0.001 and lag.percentile(80) == 0.01 and lag.percentile(100) == 0.05
    with pytest.raises(ValueError, match="percentile"):
        lag.percentile(101)


def test_statistics_of_a_closed_loop() -> None:
    loop: Any = looplet.new_event_loop()
    loop.close()
    assert loop.statistics().registered_fds == 0


# -- the seeded shuffle and the clock ----------------------------------------------------


async def _interleaved(log: list[str], pause: float = 0.5) -> None:
    # Several tasks that become ready in the same ticks: their order is what a
    # shuffle changes and what a seed must reproduce.
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def worker(name: str) -> None:
        for i in range(5):
            await asyncio.sleep(pause * (i % 2))
            log.append(f"{name}{i}")
            await queue.put(i)

    async def consumer() -> None:
        for _ in range(20):
            await queue.get()
            log.append("got")

    await asyncio.gather(*(worker(n) for n in "abcd"), consumer())


def _traced_run(path: Path, seed: int | None) -> tuple[str, list[str]]:
    log: list[str] = []
    with looplet.trace(path):
        looplet.testing.run(_interleaved(log), shuffle_seed=seed)
    return path.read_text(), log


def test_the_same_seed_gives_the_same_trace(tmp_path: Path) -> None:
    first, log1 = _traced_run(tmp_path / "1.json", seed=7)
    second, log2 = _traced_run(tmp_path / "2.json", seed=7)
    assert log1 == log2 and first == second
    fifo_a, fifo_log = _traced_run(tmp_path / "3.json", seed=None)
    fifo_b, _ = _traced_run(tmp_path / "4.json", seed=None)
    assert fifo_a == fifo_b
    # The shuffle really reorders same-tick work: some seed among a few differs from FIFO.
    logs = {tuple(_traced_run(tmp_path / f"s{seed}.json", seed)[1]) for seed in range(5)}
    assert len(logs | {tuple(fifo_log)}) > 1


def test_without_a_seed_ready_work_is_fifo(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[int] = []
    for i in range(50):
        loop.call_soon(ran.append, i)
    loop.run_until_complete(asyncio.sleep(0))
    assert ran == list(range(50))


def test_a_seed_shuffles_each_tick_and_none_restores_fifo(lloop: Any) -> None:
    ran: list[int] = []
    lloop.set_shuffle(3)
    for i in range(50):
        lloop.call_soon(ran.append, i)
    lloop.call_soon(lloop.stop)
    lloop.run_forever()
    assert sorted(ran) == list(range(50)) and ran != list(range(50))
    lloop.set_shuffle(None)
    assert lloop._scheduler.observed == lloop.get_debug()
    with pytest.raises(TypeError, match="seed"):
        lloop.set_shuffle("3")


def test_set_clock_mid_run_keeps_pending_timers(lloop: Any) -> None:
    fired: list[float] = []
    timer = lloop.call_later(1800, lambda: fired.append(lloop.time()))
    clock = VirtualClock(start=lloop.time())
    lloop.set_clock(clock)
    assert lloop.get_clock() is clock
    lloop.run_until_complete(asyncio.sleep(3600))
    # The virtual clock jumped onto the timer's deadline, which the switch kept.
    assert fired == [timer.when()] and clock.time() >= timer.when() + 1800
    with pytest.raises(TypeError, match="Clock"):
        lloop.set_clock(time.monotonic)


# -- the trace ---------------------------------------------------------------------------


REPO = Path(__file__).resolve().parents[2]


def check_trace_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Assert `doc` is trace-event JSON (the JSON Object Format); return its events."""
    assert set(doc) >= {"traceEvents"} and isinstance(doc["traceEvents"], list)
    for event in doc["traceEvents"]:
        assert isinstance(event["name"], str) and event["ph"] in {"X", "i", "M"}
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "X":
            assert event["ts"] >= 0 and event["dur"] >= 0
        if event["ph"] == "i":
            assert event["s"] in {"t", "p", "g"} and event["ts"] >= 0
        if event["ph"] == "M":
            assert event["name"] in {"process_name", "thread_name"} and "name" in event["args"]
    return doc["traceEvents"]  # type: ignore[no-any-return]


def test_trace_inside_a_running_loop_records_steps_and_wakes(tmp_path: Path, leakcheck: Any) -> None:
    path = tmp_path / "trace.json"

    async def echo_once() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with a, b:
            with looplet.trace(path):
                # The receive waits for readiness: a poll, a wake, then the task's step.
                receiving = asyncio.ensure_future(loop.sock_recv(a, 4))
                await asyncio.sleep(0)
                await loop.sock_sendall(b, b"ping")
                assert await receiving == b"ping"
            loop.call_soon(noop)  # after the block: not recorded
            await asyncio.sleep(0)

    looplet.run(echo_once())
    events = check_trace_events(json.loads(path.read_text()))
    names = [e["name"] for e in events]
    assert any(n.endswith(".echo_once") for n in names)  # the task's steps, named after its coroutine
    assert any(n.startswith("wake fd ") for n in names) and "poll" in names
    assert names.count("noop") == 0
    tracks = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "loop" in tracks and any(t.startswith("task ") and t.endswith(".echo_once") for t in tracks)


def test_trace_needs_a_looplet_loop(tmp_path: Path) -> None:
    async def main() -> None:
        with looplet.trace(tmp_path / "x.json"):
            pass

    with pytest.raises(RuntimeError, match="looplet loop"):
        asyncio.run(main())
    assert not (tmp_path / "x.json").exists()


def test_trace_outside_a_loop_records_the_loops_made_in_the_block(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    with looplet.trace(path):
        looplet.run(asyncio.sleep(0))
    after_block: Any = looplet.new_event_loop()
    assert after_block._scheduler.observer is None
    after_block.close()
    events = check_trace_events(json.loads(path.read_text()))
    assert any(e["name"] == "sleep" and e["cat"] == "task" for e in events if e["ph"] == "X")


def test_looplet_trace_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    env = dict(os.environ, LOOPLET_TRACE=str(path))
    proc = subprocess.run(
        [sys.executable, "-m", "looplet", str(REPO / "examples" / "hello.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    events = check_trace_events(json.loads(path.read_text()))
    assert any(e["cat"] == "task" for e in events if e["ph"] == "X")


def test_observing_changes_no_behaviour(loop_factory: Any, is_looplet: bool, tmp_path: Path, leakcheck: Any) -> None:
    # The same program gives the same interleaving with and without timing and a
    # trace, and the same as on asyncio. No timers: on a real clock their order
    # could depend on the machine's speed.
    def run(observe: bool) -> list[str]:
        log: list[str] = []
        loop: Any = loop_factory()
        try:
            if observe:
                loop.enable_timing()
                with looplet.trace(tmp_path / "o.json"):
                    loop.run_until_complete(_interleaved(log, pause=0))
            else:
                loop.run_until_complete(_interleaved(log, pause=0))
        finally:
            loop.close()
        return log

    plain = run(False)
    if is_looplet:
        assert run(True) == plain
    # asyncio's FIFO interleaving, written out: both loops must give exactly this.
    assert plain == [entry for i in range(5) for entry in (*(f"{name}{i}" for name in "abcd"), *["got"] * 4)]
