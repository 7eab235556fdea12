"""Echo workloads: a TCP or Unix echo server on the loop under test, clients elsewhere.

Role: measure the stream transports as servers, the way applications use them:
with a ``Protocol`` (``data_received`` writes the data back) or with asyncio streams
(``reader.read`` / ``writer.write`` / ``drain``). The load comes from a separate
``benchmarks.clients exchange`` process, identical for every loop, which times the
exchanges itself; the server process only serves.

Invariant owned here: the server is torn down (and the client killed) however the
measurement ends, so a failing loop cannot leave a process behind or hang the worker.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, cast

from benchmarks.workloads.base import ClientProcess, Context, Measurement

# Read size of the streams server: large enough that a 100 KiB message takes only a
# few reads, like a real server's buffer; the Protocol server gets what the loop reads.
STREAM_READ: int = 256 * 1024

ServerStarter = Callable[[], Awaitable[tuple[asyncio.Server, str]]]


class EchoProtocol(asyncio.Protocol):
    """Writes back whatever it receives."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's classes, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(STREAM_READ):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def _address(server: asyncio.Server) -> str:
    sockname: Any = server.sockets[0].getsockname()
    return sockname if isinstance(sockname, str) else f"{sockname[0]}:{sockname[1]}"


async def _start(family: str, api: str, directory: str) -> tuple[asyncio.Server, str]:
    loop = asyncio.get_running_loop()
    path = os.path.join(directory, "echo.sock")
    server: asyncio.Server
    if api == "protocol" and family == "tcp":
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0)
    elif api == "protocol":
        server = await loop.create_unix_server(EchoProtocol, path)
    elif family == "tcp":
        server = await asyncio.start_server(echo_stream, "127.0.0.1", 0, limit=STREAM_READ)
    else:
        server = await asyncio.start_unix_server(echo_stream, path, limit=STREAM_READ)
    return server, _address(server)


async def serve_client(start: ServerStarter, client_args: list[object], *, kind: str = "exchange") -> dict[str, Any]:
    """Start a server, run one client process against it, return the client's report."""
    server, address = await start()
    try:
        with ClientProcess.python(kind, "--address", address, *client_args) as client:
            report = await client.result()
    finally:
        server.close()
        await server.wait_closed()
    return report


async def echo(ctx: Context, n: int, *, family: str, api: str, size: int, clients: int) -> Measurement:
    """``n`` echo round trips of ``size`` bytes over ``clients`` concurrent connections."""
    with tempfile.TemporaryDirectory(prefix="looplet-bench-") as directory:
        report = await serve_client(
            lambda: _start(family, api, directory),
            ["--family", family, "--conns", clients, "--size", size, "--count", n],
        )
    return Measurement.rate(report["ops"], report["seconds"], clients=clients, size=size)
