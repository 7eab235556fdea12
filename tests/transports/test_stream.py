"""Stream transports (TCP and Unix) and asyncio streams, on asyncio and on looplet.

Every test runs on both loops through the `loop` fixture (tests/conftest.py), which
also checks that no fd, task or thread is left behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import re
import socket
import sys
import tempfile
import warnings
from typing import Any

import pytest

BIG = 4 * 1024 * 1024


class Recorder(asyncio.Protocol):
    """Records every protocol event, in order."""

    def __init__(self, keep_open_on_eof: bool = False) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.keep_open_on_eof = keep_open_on_eof
        self.got_eof = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.got_eof.set_result(None)
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


async def tcp_pair(proto_server: Any, proto_client: Any) -> tuple[Any, Any, asyncio.AbstractServer]:
    """A server and a client connected to it over loopback; returns (server transport, client transport, server)."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Any] = loop.create_future()

    def factory() -> Any:
        accepted.set_result(proto_server)
        return proto_server

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctr, _ = await loop.create_connection(lambda: proto_client, "127.0.0.1", port)
    await accepted
    while proto_server.transport is None:
        await asyncio.sleep(0)
    return proto_server.transport, ctr, server


def test_echo_and_extra_info(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        ct.write(b"hello ")
        ct.writelines([b"wor", memoryview(b"ld")])
        while len(srv.data) < 11:
            await asyncio.sleep(0)
        assert bytes(srv.data) == b"hello world"
        assert ct.get_extra_info("peername") == server.sockets[0].getsockname()
        assert ct.get_extra_info("sockname") == st.get_extra_info("peername")
        assert ct.get_extra_info("socket").fileno() >= 0
        assert ct.get_extra_info("nonexistent", "default") == "default"
        assert ct.can_write_eof() and ct.is_reading() and not ct.is_closing()
        ct.close()
        assert ct.is_closing()
        assert await cli.lost is None
        await srv.got_eof
        assert await srv.lost is None
        assert srv.events == ["made", "eof", "lost"]
        assert cli.events == ["made", "lost"]
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_large_write_to_slow_reader_engages_flow_control(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        st.pause_reading()
        ct.set_write_buffer_limits(high=64 * 1024)
        assert ct.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        chunk = b"x" * 65536
        for _ in range(BIG // len(chunk)):
            ct.write(chunk)
        assert "pause" in cli.events
        assert 0 < ct.get_write_buffer_size() <= BIG
        st.resume_reading()
        while len(srv.data) < BIG:
            await asyncio.sleep(0)
        while "resume" not in cli.events:
            await asyncio.sleep(0)
        assert ct.get_write_buffer_size() == 0
        ct.close()
        st.close()
        await cli.lost
        await srv.lost
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_buffer_limits_reject_bad_values(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        with pytest.raises(ValueError, match="must be >="):
            ct.set_write_buffer_limits(high=1, low=2)
        ct.abort()
        st.abort()
        await cli.lost
        await srv.lost
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_half_close_both_directions(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(keep_open_on_eof=True), Recorder(keep_open_on_eof=True)
        st, ct, server = await tcp_pair(srv, cli)
        ct.write(b"request")
        ct.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            ct.write(b"more")
        await srv.got_eof
        assert bytes(srv.data) == b"request"
        st.write(b"response")  # the server can still write after the client's EOF
        st.write_eof()
        await cli.got_eof
        assert bytes(cli.data) == b"response"
        st.close()
        ct.close()
        assert await srv.lost is None
        assert await cli.lost is None
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_abort_drops_buffered_data(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        st.pause_reading()
        for _ in range(64):
            ct.write(b"y" * 65536)
        assert ct.get_write_buffer_size() > 0
        ct.abort()
        assert await cli.lost is None
        assert ct.get_write_buffer_size() == 0
        st.resume_reading()
        exc = await srv.lost
        assert exc is None or isinstance(exc, ConnectionError)
        assert len(srv.data) < 64 * 65536
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_peer_reset_mid_write_reaches_connection_lost(loop: asyncio.AbstractEventLoop) -> None:
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        # RST instead of FIN when the server's socket closes.
        st.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        st.abort()
        await srv.lost
        for _ in range(200):
            ct.write(b"z" * 65536)
            await asyncio.sleep(0)
            if cli.lost.done():
                break
        exc = await cli.lost
        assert exc is None or isinstance(exc, ConnectionError)
        ct.write(b"after")  # writes after the loss are dropped, never raise
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert errors == []


def test_server_close_while_clients_connected(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        server.close()
        assert not server.is_serving()
        st.write(b"still works")
        while len(cli.data) < 11:
            await asyncio.sleep(0)
        wait = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0)
        ct.close()
        st.close()
        await cli.lost
        await srv.lost
        await wait

    loop.run_until_complete(main())


def test_buffered_protocol_reads_into_its_own_buffer(loop: asyncio.AbstractEventLoop) -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.transport: Any = None
            self.done = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.got))

        def connection_lost(self, exc: BaseException | None) -> None:
            pass

    async def main() -> None:
        srv, cli = Buffered(), Recorder()
        _st, ct, server = await tcp_pair(srv, cli)
        payload = bytes(range(256)) * 100
        ct.write(payload)
        ct.write_eof()
        assert await srv.done == payload
        ct.close()
        await cli.lost
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_write_rejects_non_bytes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        # asyncio's own message, which 3.14 reworded.
        expected = (
            "data argument must be a bytes, bytearray, or memoryview object, not 'str'"
            if sys.version_info >= (3, 14)
            else "data argument must be a bytes-like object, not 'str'"
        )
        with pytest.raises(TypeError, match=f"^{re.escape(expected)}$"):
            ct.write("text")
        ct.close()
        st.close()
        await cli.lost
        await srv.lost
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_streams_echo_server(loop: asyncio.AbstractEventLoop) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for word in (b"alpha\n", b"beta\n"):
                writer.write(word)
                assert await reader.readline() == word.upper()
            writer.write(b"x" * 60_000 + b"\n")  # within StreamReader's 64 KiB line limit
            assert len(await reader.readline()) == 60_001
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_streams(loop: asyncio.AbstractEventLoop) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(5))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main(path: str) -> None:
        server = await asyncio.start_unix_server(handle, path)
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"hello")
            assert await reader.read() == b"hello"
            writer.close()
            await writer.wait_closed()

    with tempfile.TemporaryDirectory() as d:
        loop.run_until_complete(main(os.path.join(d, "sock")))


def test_unclosed_transport_warns(loop_factory: Any, leakcheck: Any) -> None:
    loop = loop_factory()
    a, b = socket.socketpair()

    async def main() -> None:
        await loop.connect_accepted_socket(asyncio.Protocol, a)

    with warnings.catch_warnings(record=True) as caught, b:
        warnings.simplefilter("always")
        loop.run_until_complete(main())
        loop.close()  # drops the loop's references to the transport's callbacks
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed transport" in str(w.message) for w in caught)


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_ipv6_loopback(loop: asyncio.AbstractEventLoop) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(2))
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "::1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("::1", port)
            writer.write(b"v6")
            assert await reader.read() == b"v6"
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="transport tests are written for Linux")


_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


class ContextProbe(asyncio.Protocol):
    """Sets a context variable in connection_made; data_received says what it sees."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self.made_in = ""

    def connection_made(self, transport: Any) -> None:
        self.made_in = _where.get()
        _where.set(f"{self.name}'s connection_made")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.seen.done():
            self.seen.set_result((self.made_in, _where.get()))
        self.transport.write(data)


def test_protocol_callbacks_share_one_context_from_3_15(loop: asyncio.AbstractEventLoop) -> None:
    """3.15 gives each stream transport one context for all its callbacks: a copy of the
    caller's for a connection, of the server's creation context for an accepted one, so
    what connection_made sets, data_received sees. Before, each registration copied the
    context of its moment, and data_received did not see it."""

    async def main() -> tuple[tuple[str, str], tuple[str, str]]:
        _where.set("when the server was made")
        srv = ContextProbe("server")
        server = await loop.create_server(lambda: srv, "127.0.0.1", 0)
        _where.set("when the client connected")
        cli = ContextProbe("client")
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(lambda: cli, "127.0.0.1", port)
        _where.set("after the client connected")
        transport.write(b"ping")
        server_saw = await srv.seen
        client_saw = await cli.seen
        transport.close()
        server.close()
        await server.wait_closed()
        return server_saw, client_saw

    server_saw, client_saw = loop.run_until_complete(main())
    if sys.version_info >= (3, 15):
        assert server_saw == ("when the server was made", "server's connection_made")
        assert client_saw == ("when the client connected", "client's connection_made")
    else:
        assert server_saw == ("when the server was made", "when the server was made")
        assert client_saw == ("when the client connected", "when the client connected")
