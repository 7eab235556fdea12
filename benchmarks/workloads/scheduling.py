"""Scheduling workloads: callbacks, timers, ticks, tasks, futures and queues, no I/O.

Role: measure the loop's own machinery (run queue, timer heap, thread wake-up, task
stepping) with nothing else in the way. Each workload does a fixed amount of work
``n`` and returns ops/s over the timed part only.

Invariant owned here: each workload checks that all ``n`` operations really happened
before it reports a rate, so a loop that drops or duplicates callbacks fails instead
of looking fast.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time

from benchmarks.workloads.base import Context, Measurement

# Callbacks or tasks per tick in the fan-out workloads: large enough that the per-tick
# cost (poll, timer check) is amortised, small enough that the run queue stays
# cache-friendly; the same for every loop.
FANOUT: int = 1000
# The consumer blocks as often as the producer does, so both sides really wait.
QUEUE_SIZE: int = 64
# Timer delays spread over 0..1 ms: due almost at once, but still in heap order.
TIMER_SPREAD: int = 1000


def _check(what: str, got: int, want: int) -> None:
    if got != want:
        raise AssertionError(f"{what}: {got} of {want}")


async def call_soon_chain(ctx: Context, n: int) -> Measurement:
    """A callback that schedules the next one: one callback per tick, ``n`` ticks."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = n

    def step() -> None:
        nonlocal left
        left -= 1
        if left:
            loop.call_soon(step)
        else:
            done.set_result(None)

    t0 = time.perf_counter()
    loop.call_soon(step)
    await done
    return Measurement.rate(n, time.perf_counter() - t0)


async def call_soon_fanout(ctx: Context, n: int) -> Measurement:
    """``FANOUT`` callbacks scheduled at once, run in one tick; ``n`` in all."""
    loop = asyncio.get_running_loop()
    ran = 0

    def callback() -> None:
        nonlocal ran
        ran += 1

    t0 = time.perf_counter()
    for _ in range(n // FANOUT):
        for _ in range(FANOUT):
            loop.call_soon(callback)
        await asyncio.sleep(0)  # resumed after the batch, in the same tick
    elapsed = time.perf_counter() - t0
    _check("callbacks run", ran, n // FANOUT * FANOUT)
    return Measurement.rate(ran, elapsed)


async def call_soon_threadsafe(ctx: Context, n: int) -> Measurement:
    """Another thread schedules ``n`` callbacks; timed until the last has run."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    ran = 0

    def callback() -> None:
        nonlocal ran
        ran += 1
        if ran == n:
            done.set_result(None)

    def produce() -> None:
        for _ in range(n):
            loop.call_soon_threadsafe(callback)

    thread = threading.Thread(target=produce, name="threadsafe-producer")
    t0 = time.perf_counter()
    thread.start()
    await done
    elapsed = time.perf_counter() - t0
    thread.join()
    return Measurement.rate(n, elapsed)


async def timers(ctx: Context, n: int) -> Measurement:
    """Schedule ``n`` timers 0..1 ms ahead, cancel 90%, wait for the rest to fire."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    want = sum(1 for i in range(n) if i % 10 == 0)
    fired = 0

    def callback() -> None:
        nonlocal fired
        fired += 1
        if fired == want:
            done.set_result(None)

    t0 = time.perf_counter()
    handles = [loop.call_later((i % TIMER_SPREAD) / 1e6, callback) for i in range(n)]
    for i, handle in enumerate(handles):
        if i % 10:
            handle.cancel()
    await done
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(0.002)  # a cancelled timer that fires late would show now
    _check("timers fired", fired, want)
    return Measurement.rate(n, elapsed)


async def idle_tick(ctx: Context, n: int) -> Measurement:
    """One task doing nothing but ``await sleep(0)``: the cost of an empty tick."""
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    return Measurement.rate(n, time.perf_counter() - t0)


async def sleep0_pingpong(ctx: Context, n: int) -> Measurement:
    """Two tasks taking turns with ``sleep(0)``: ``n`` task steps, two per tick."""
    steps = 0

    async def player() -> None:
        nonlocal steps
        for _ in range(n // 2):
            await asyncio.sleep(0)
            steps += 1

    t0 = time.perf_counter()
    await asyncio.gather(player(), player())
    elapsed = time.perf_counter() - t0
    _check("steps", steps, n // 2 * 2)
    return Measurement.rate(steps, elapsed)


async def _nothing() -> None:
    pass


async def create_task_gather(ctx: Context, n: int) -> Measurement:
    """``create_task`` of a trivial coroutine and ``gather``, ``FANOUT`` at a time."""
    loop = asyncio.get_running_loop()
    made = 0
    t0 = time.perf_counter()
    for _ in range(n // FANOUT):
        await asyncio.gather(*[loop.create_task(_nothing()) for _ in range(FANOUT)])
        made += FANOUT
    return Measurement.rate(made, time.perf_counter() - t0)


def _resolve(following: asyncio.Future[None], _done: asyncio.Future[None]) -> None:
    following.set_result(None)


async def future_chain(ctx: Context, n: int) -> Measurement:
    """``n`` futures, each resolved by a done-callback of the one before: ``n`` ticks."""
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(n)]
    for current, following in itertools.pairwise(futures):
        current.add_done_callback(functools.partial(_resolve, following))
    t0 = time.perf_counter()
    futures[0].set_result(None)
    await futures[-1]
    return Measurement.rate(n, time.perf_counter() - t0)


async def queue(ctx: Context, n: int) -> Measurement:
    """``asyncio.Queue(QUEUE_SIZE)``: one producer puts ``n`` items, one consumer gets them."""
    items: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)

    async def produce() -> None:
        for i in range(n):
            await items.put(i)

    async def consume() -> int:
        total = 0
        for _ in range(n):
            total += await items.get()
        return total

    t0 = time.perf_counter()
    _, total = await asyncio.gather(produce(), consume())
    elapsed = time.perf_counter() - t0
    _check("sum of items", total, n * (n - 1) // 2)
    return Measurement.rate(n, elapsed)
