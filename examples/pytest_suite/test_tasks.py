"""Tasks: a TaskGroup, a Queue of producers and consumers, threads and a subprocess."""

from __future__ import annotations

import asyncio
import sys

import pytest


@pytest.mark.asyncio
async def test_taskgroup_gathers_results(record_loop):
    record_loop()
    async with asyncio.TaskGroup() as tg:
        squares = [tg.create_task(asyncio.sleep(0.001 * (5 - i), result=i * i)) for i in range(5)]
    assert [t.result() for t in squares] == [0, 1, 4, 9, 16]


@pytest.mark.asyncio
async def test_taskgroup_failure_cancels_the_others(record_loop):
    record_loop()

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup) as excinfo:
        async with asyncio.TaskGroup() as tg:
            sleeper = tg.create_task(asyncio.sleep(3600))
            tg.create_task(fail())
    assert [repr(e) for e in excinfo.value.exceptions] == ["ValueError('boom')"]
    assert sleeper.cancelled()


@pytest.mark.asyncio
async def test_queue_producers_and_consumers(record_loop):
    record_loop()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=2)
    consumed: list[int] = []

    async def produce(start: int) -> None:
        for n in range(start, start + 10):
            await queue.put(n)

    async def consume() -> None:
        while True:
            consumed.append(await queue.get())
            queue.task_done()

    consumers = [asyncio.create_task(consume()) for _ in range(3)]
    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce(0))
        tg.create_task(produce(100))
    await queue.join()
    for c in consumers:
        c.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    assert sorted(consumed) == [*range(10), *range(100, 110)]


@pytest.mark.asyncio
async def test_blocking_work_in_a_thread(record_loop):
    record_loop()
    assert await asyncio.to_thread(sum, range(101)) == 5050


@pytest.mark.asyncio
async def test_subprocess_round_trip(record_loop):
    record_loop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "print(input().upper())",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(b"from a child\n")
    assert (out, proc.returncode) == (b"FROM A CHILD\n", 0)
