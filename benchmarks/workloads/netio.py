"""Other I/O workloads: sock_* ping-pong, UDP echo, keep-alive HTTP, sendfile.

Role: the I/O paths that are not the echo server's. ``sock_pingpong`` runs both ends
on the loop (socket operations, no transports); the others serve a client process
(``benchmarks.clients``, or wrk for HTTP when it is installed) that times itself.

Invariant owned here: every server checks or is checked for the exact byte counts
(the client fails on a short or long reply), and a server-side error is raised in
the worker at once rather than leaving the client waiting.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import tempfile
import time
from typing import Any, cast

from benchmarks.workloads.base import ClientProcess, Context, Measurement, first_error
from benchmarks.workloads.echo import serve_client

PINGPONG_SIZE: int = 1024
HTTP_CONNECTIONS: int = 16
HTTP_RESPONSE: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
# The largest file sendfile sends; more data is the same file sent again on the same
# connection, so the file stays in the page cache and the disk is never measured.
SENDFILE_FILE_MIB: int = 64
MIB: int = 1024 * 1024


async def sock_pingpong(ctx: Context, n: int) -> Measurement:
    """``n`` round trips of 1 KiB over a socketpair with ``sock_sendall``/``sock_recv``."""
    loop = asyncio.get_running_loop()
    near, far = socket.socketpair()
    near.setblocking(False)
    far.setblocking(False)
    message = b"x" * PINGPONG_SIZE

    async def echo_back() -> None:
        while data := await loop.sock_recv(far, 65536):
            await loop.sock_sendall(far, data)

    echo = loop.create_task(echo_back())
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            await loop.sock_sendall(near, message)
            got = 0
            while got < PINGPONG_SIZE:
                chunk = await loop.sock_recv(near, 65536)
                if not chunk:
                    raise ConnectionError("echo side closed")
                got += len(chunk)
        elapsed = time.perf_counter() - t0
        near.shutdown(socket.SHUT_WR)
        await echo
    finally:
        echo.cancel()
        near.close()
        far.close()
    return Measurement.rate(n, elapsed)


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's classes, only alike.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def udp_echo(ctx: Context, n: int, *, size: int) -> Measurement:
    """``n`` datagram round trips of ``size`` bytes from one client process."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
    try:
        host, port = transport.get_extra_info("sockname")[:2]
        with ClientProcess.python("udp", "--address", f"{host}:{port}", "--size", size, "--count", n) as client:
            report = await client.result()
    finally:
        transport.close()
    return Measurement.rate(report["ops"], report["seconds"])


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: one fixed response per GET (no bodies).

    Requests may arrive split or pipelined; each complete header block is answered.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's classes, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        complete = buffer.count(b"\r\n\r\n")
        if complete:
            self.transport.write(HTTP_RESPONSE * complete)
            buffer = buffer[buffer.rfind(b"\r\n\r\n") + 4 :]
        self.buffer = buffer


_WRK_RATE = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(output: str) -> tuple[int, float]:
    """(requests, seconds) from wrk's summary; errors in it make the run a failure."""
    if "Socket errors" in output or "Non-2xx" in output:
        raise RuntimeError(f"wrk reported errors:\n{output}")
    match = _WRK_RATE.search(output)
    if not match:
        raise RuntimeError(f"unrecognised wrk output:\n{output}")
    return int(match.group(1)), float(match.group(2)) * _WRK_UNITS[match.group(3)]


async def http_keepalive(ctx: Context, n: int) -> Measurement:
    """``n`` keep-alive GETs over ``HTTP_CONNECTIONS`` connections (wrk: 1 s per 20k)."""
    loop = asyncio.get_running_loop()
    wrk = shutil.which("wrk")
    if wrk is None:
        report = await serve_client(
            lambda: _http_server(loop), ["--http", "--conns", HTTP_CONNECTIONS, "--count", n], kind="exchange"
        )
        return Measurement.rate(report["ops"], report["seconds"], generator="python")
    server, address = await _http_server(loop)
    try:
        # wrk runs for a duration, not a count: the duration is scaled from n.
        duration = max(1, round(n / 20_000))
        argv = [wrk, "-t1", f"-c{HTTP_CONNECTIONS}", f"-d{duration}s", f"http://{address}/"]
        with ClientProcess(argv) as client:
            requests, seconds = parse_wrk(await client.output())
    finally:
        server.close()
        await server.wait_closed()
    return Measurement.rate(requests, seconds, generator="wrk")


async def _http_server(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Server, str]:
    server = await loop.create_server(HttpProtocol, "127.0.0.1", 0, backlog=128)
    host, port = server.sockets[0].getsockname()[:2]
    return server, f"{host}:{port}"


class SendfileProtocol(asyncio.Protocol):
    """On connection: ``loop.sendfile`` the file ``repeat`` times, then close."""

    def __init__(self, path: str, repeat: int, done: asyncio.Future[None]) -> None:
        self.path = path
        self.repeat = repeat
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.task = asyncio.get_running_loop().create_task(self.send(cast(asyncio.Transport, transport)))

    async def send(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            with open(self.path, "rb") as file:
                for _ in range(self.repeat):
                    file.seek(0)
                    await loop.sendfile(transport, file)
            transport.close()
            self.done.set_result(None)
        except Exception as exc:  # reported through `done`, which the worker awaits
            transport.abort()  # the client sees a short read and stops waiting
            if not self.done.done():
                self.done.set_exception(exc)


async def sendfile(ctx: Context, n: int) -> Measurement:
    """``loop.sendfile`` of ``n`` MiB in all (a file of up to 64 MiB, sent repeatedly)."""
    loop = asyncio.get_running_loop()
    file_mib = min(n, SENDFILE_FILE_MIB)
    repeat = n // file_mib
    done: asyncio.Future[None] = loop.create_future()
    with tempfile.TemporaryDirectory(prefix="looplet-bench-") as directory:
        path = os.path.join(directory, "payload")
        with open(path, "wb") as file:
            block = bytes(range(256)) * (MIB // 256)
            for _ in range(file_mib):
                file.write(block)
        server = await loop.create_server(lambda: SendfileProtocol(path, repeat, done), "127.0.0.1", 0)
        try:
            host, port = server.sockets[0].getsockname()[:2]
            expect = file_mib * repeat * MIB
            with ClientProcess.python("drain", "--address", f"{host}:{port}", "--expect", expect) as client:
                # The server's error is the real one; the client's short read follows it.
                _, report = await first_error(done, client.result())
        finally:
            server.close()
            await server.wait_closed()
    return Measurement.rate(report["bytes"] / MIB, report["seconds"], file_mib=file_mib, repeat=repeat)
