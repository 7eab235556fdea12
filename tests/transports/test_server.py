"""Servers and loop.sendfile on both loops: the asyncio.Server surface (async with,
serve_forever, start_serving, 3.13's close_clients/abort_clients), eof_received
keeping a transport open, and sendfile over plain TCP (zero-copy) and over TLS
(the fallback).

Every test runs on asyncio and on looplet through the `loop` fixture.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest

PY313 = sys.version_info >= (3, 13)
PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several sendfile calls


class Collect(asyncio.Protocol):
    """Gathers what arrives; `done` resolves with it at EOF."""

    def __init__(self, keep_open_on_eof: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.done: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.keep_open_on_eof = keep_open_on_eof
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.done.set_result(bytes(self.data))
        return self.keep_open_on_eof

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(bytes(self.data))
        self.lost.set_result(exc)


@pytest.fixture
def datafile(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    return path


async def _sendfile_to_server(datafile: Path, **ssl_args: Any) -> tuple[bytes, int]:
    loop = asyncio.get_running_loop()
    receiver: asyncio.Future[Collect] = loop.create_future()

    def factory() -> Collect:
        proto = Collect()
        receiver.set_result(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=ssl_args.pop("server_ssl", None))
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, **ssl_args)
    try:
        with datafile.open("rb") as f:
            sent = await loop.sendfile(transport, f, offset=1, count=len(PAYLOAD) - 1)
            position = f.tell()
        transport.close()
        data = await (await receiver).done
        assert position == len(PAYLOAD)  # the file is left just after what was sent
        return data, sent
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def os_sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts os.sendfile calls: both loops look it up on the os module at each call."""
    calls: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)
    return calls


def test_sendfile_over_tcp_is_zero_copy(
    loop: asyncio.AbstractEventLoop, datafile: Path, os_sendfile_calls: list[int]
) -> None:
    data, sent = loop.run_until_complete(_sendfile_to_server(datafile))
    assert sent == len(PAYLOAD) - 1
    assert data == PAYLOAD[1:]
    assert os_sendfile_calls


def test_sendfile_over_tls_uses_the_fallback(
    loop: asyncio.AbstractEventLoop, datafile: Path, os_sendfile_calls: list[int]
) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    data, sent = loop.run_until_complete(_sendfile_to_server(datafile, server_ssl=server_ctx, ssl=client_ctx))
    assert sent == len(PAYLOAD) - 1
    assert data == PAYLOAD[1:]
    assert not os_sendfile_calls  # TLS has to see the bytes: read and write them


def test_eof_received_returning_true_keeps_the_transport_writable(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        lp = asyncio.get_running_loop()
        server_side: asyncio.Future[Collect] = lp.create_future()

        def factory() -> Collect:
            proto = Collect(keep_open_on_eof=True)
            server_side.set_result(proto)
            return proto

        server = await lp.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"question")
        writer.write_eof()
        proto = await server_side
        assert await proto.done == b"question"
        proto.transport.write(b"answer after your EOF")
        proto.transport.close()
        reply = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return reply

    assert loop.run_until_complete(main()) == b"answer after your EOF"


def test_server_async_with_start_serving_and_serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        assert server.get_loop() is asyncio.get_running_loop()
        async with server:
            forever = asyncio.create_task(server.serve_forever())
            await asyncio.sleep(0)
            assert server.is_serving()
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            writer.write_eof()
            assert await reader.read() == b"ping"
            writer.close()
            await writer.wait_closed()
            forever.cancel()
            with pytest.raises(asyncio.CancelledError):
                await forever
            # Cancelling serve_forever closes the server.
            assert not server.is_serving()
        assert server.sockets == ()

    loop.run_until_complete(main())


@pytest.mark.skipif(not PY313, reason="Server.close_clients/abort_clients are new in 3.13")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_close_or_abort_clients(loop: asyncio.AbstractEventLoop, how: str) -> None:
    async def main() -> list[BaseException | None]:
        lp = asyncio.get_running_loop()
        protos: list[Collect] = []

        def factory() -> Collect:
            protos.append(Collect())
            return protos[-1]

        server = await lp.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        while len(protos) < 3 or any(p.transport is None for p in protos):
            await asyncio.sleep(0)
        server.close()
        getattr(server, how)()
        lost = [await p.lost for p in protos]
        await server.wait_closed()
        for reader, writer in clients:
            assert await reader.read() == b""  # the server side is gone
            writer.close()
            await writer.wait_closed()
        return lost

    assert loop.run_until_complete(main()) == [None, None, None]
