"""Memory workloads: bytes per idle task and per idle connection.

Role: what a loop costs to hold things that do nothing, measured with ``tracemalloc``
(every Python allocator domain, including the raw one C extensions such as uvloop
allocate through) as the growth of traced memory while ``n`` idle things exist.
Kernel memory (socket buffers) is the same for every loop and is not counted; RSS is
not used because it moves in pages and arenas, too coarse for ``n`` in the thousands.

Invariant owned here: the baseline is taken after everything that is not the subject
exists (the loop, the server, the client process object), and the reading after all
``n`` things are idle, both after a full garbage collection.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable

from benchmarks.workloads.base import ClientProcess, Context, Measurement

# Ticks to let every new task reach its first await (one is enough on a FIFO loop; the
# extra ones absorb a loop that defers the first step).
SETTLE_TICKS: int = 3


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _settle() -> None:
    for _ in range(SETTLE_TICKS):
        await asyncio.sleep(0)


async def memory_idle_task(ctx: Context, n: int) -> Measurement:
    """Traced bytes per task, for ``n`` tasks all awaiting one future."""
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()

    async def idle() -> None:
        await gate

    tracemalloc.start()
    try:
        before = _traced()
        tasks = [loop.create_task(idle()) for _ in range(n)]
        await _settle()
        after = _traced()
    finally:
        tracemalloc.stop()
    gate.set_result(None)
    await asyncio.gather(*tasks)
    return Measurement((after - before) / n, details={"tasks": n})


class IdleProtocol(asyncio.Protocol):
    """Does nothing; tells ``on_made`` of each connection."""

    def __init__(self, on_made: Callable[[], None]) -> None:
        self.on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.on_made()


async def _first_connection(loop: asyncio.AbstractEventLoop) -> None:
    # What a loop makes once, on its first connection (looplet's read buffer, for one),
    # is the loop's, not each connection's: made here, before the baseline.
    accepted: asyncio.Future[None] = loop.create_future()

    def on_made() -> None:
        if not accepted.done():
            accepted.set_result(None)

    server = await loop.create_server(lambda: IdleProtocol(on_made), "127.0.0.1", 0)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        transport, _ = await loop.create_connection(asyncio.Protocol, host, port)
        await accepted
        transport.close()
        await _settle()
    finally:
        server.close()
        await server.wait_closed()


async def memory_idle_conn(ctx: Context, n: int) -> Measurement:
    """Traced bytes per accepted connection, for ``n`` idle TCP connections."""
    loop = asyncio.get_running_loop()
    await _first_connection(loop)
    all_made: asyncio.Future[None] = loop.create_future()
    made = 0

    def on_made() -> None:
        nonlocal made
        made += 1
        if made == n:
            all_made.set_result(None)

    server = await loop.create_server(lambda: IdleProtocol(on_made), "127.0.0.1", 0, backlog=n)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        # The client connects while this coroutine runs on; nothing is accepted before
        # the next await, so the baseline below sees none of the connections.
        with ClientProcess.python("hold", "--address", f"{host}:{port}", "--conns", n, hold_stdin=True) as client:
            tracemalloc.start()
            try:
                before = _traced()
                await all_made
                await _settle()
                after = _traced()
            finally:
                tracemalloc.stop()
            await client.result()  # closes its stdin: the client closes its connections
    finally:
        server.close()
        await server.wait_closed()
    return Measurement((after - before) / n, details={"connections": n})
