"""Stream transports (TCP and Unix) and asyncio streams, on asyncio and on looplet.

Every test runs on both loops through the `loop` fixture (tests/conftest.py), which
also checks that no fd, task or thread is left behind.

Also eof_received returning true keeping a transport writable, and faults:

- A peer that resets the connection (SO_LINGER 0, then close: a TCP RST) in the middle
  of a read or of a write: the protocol's `connection_lost` runs once, with
  ConnectionResetError (what asyncio reports), the transport is closed, and nothing
  reaches the exception handler; streams raise ConnectionResetError from `read()` and
  `drain()`.
- Half-open connections: a peer that shuts down its write side is seen as
  `eof_received` and the server can still write to it (protocols and streams), or is
  closed by the transport when `eof_received` says so; a server that shut down its own
  write side still receives.
- A client that never reads: the writer is paused (`pause_writing`; `drain()` blocks),
  the transport's buffer stays under the high-water mark plus one write, the process's
  memory stays within a stated limit, and once the client reads, every byte arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import hashlib
import os
import random
import re
import socket
import struct
import sys
import tempfile
import warnings
from typing import Any

import pytest
from support import Collect, EventRecorder, close_server, recv_until_eof, report_collector, ticks

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


async def _until(predicate: Any) -> None:
    # Loopback delivers within a few ticks; the bound turns data that went elsewhere
    # into a failure rather than a hang.
    for _ in range(100_000):
        if predicate():
            return
        await asyncio.sleep(0)
    pytest.fail("the data never arrived where it was expected")


def test_set_protocol_redirects_what_arrives_next(loop: asyncio.AbstractEventLoop) -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(64)
            self.got = bytearray()
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def main() -> None:
        first, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(first, cli)
        ct.write(b"one")
        await _until(lambda: first.data == b"one")
        second = Recorder()
        st.set_protocol(second)
        assert st.get_protocol() is second
        ct.write(b"two")
        await _until(lambda: second.data == b"two")
        third = Buffered()
        st.set_protocol(third)
        ct.write(b"three")
        await _until(lambda: third.got == b"three")
        st.set_protocol(first)
        ct.write(b"four")
        await _until(lambda: first.data == b"onefour")
        assert (second.data, third.got) == (b"two", b"three")
        ct.close()
        await cli.lost
        await first.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_protocol_without_data_received_fails_as_asyncio_does(loop: asyncio.AbstractEventLoop) -> None:
    class Bare(asyncio.BaseProtocol):
        def __init__(self) -> None:
            self.transport: Any = None
            self.lost = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: contexts.append(context))

    async def main() -> None:
        srv, cli = Bare(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        ct.write(b"data")
        exc = await srv.lost
        assert isinstance(exc, AttributeError)
        assert st.is_closing()
        await cli.lost
        await close_server(server)

    loop.run_until_complete(main())
    assert [c["message"] for c in contexts] == ["Fatal error: protocol.data_received() call failed."]
    assert isinstance(contexts[0]["exception"], AttributeError)


def test_private_state_reads_as_on_asyncio(loop: asyncio.AbstractEventLoop) -> None:
    # Not API, but CPython's own tests read `_paused` off the loop's transports, and
    # code in the wild reads these four.
    async def main() -> None:
        srv, cli = Recorder(), Recorder()
        st, ct, server = await tcp_pair(srv, cli)
        assert (ct._paused, ct._closing, ct._conn_lost, ct._protocol) == (False, False, 0, cli)
        ct.pause_reading()
        assert ct._paused is True
        ct.resume_reading()
        assert ct._paused is False
        ct.close()
        assert (ct._closing, ct._conn_lost) == (True, 1)
        await cli.lost
        assert ct._protocol is None
        st.close()
        await srv.lost
        await close_server(server)

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


# -- EOF ---------------------------------------------------------------------------------


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


# -- a peer that resets the connection ---------------------------------------------------


# SO_LINGER on with a zero timeout: close() sends a RST instead of a FIN.
LINGER_RESET = struct.pack("ii", 1, 0)


# One write of the flooding tests, and the write buffer's high-water mark they set.
CHUNK = 64 * 1024


HIGH_WATER = 256 * 1024


def reset(sock: socket.socket) -> None:
    """Close `sock` with a RST: the peer's next recv or send fails with ECONNRESET."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


# Bytes that look random, the same on every run (a seeded generator).
_NOISE = random.Random(8).randbytes(1 << 20)


def pattern(offset: int, size: int) -> bytes:
    """`size` bytes of a test stream starting at `offset`: the offset itself, then noise.
    A chunk lost, repeated or reordered changes the stream's hash."""
    assert 8 <= size <= len(_NOISE)
    return offset.to_bytes(8, "big") + _NOISE[8:size]


async def accept_one(proto: asyncio.Protocol) -> tuple[asyncio.Server, socket.socket]:
    """A server on loopback that hands its one connection to `proto`, and a plain
    non-blocking client socket connected to it (the misbehaving peer)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: proto, "127.0.0.1", 0)
    peer = socket.create_connection(server.sockets[0].getsockname())
    peer.setblocking(False)
    return server, peer


def test_reset_mid_read_reaches_connection_lost_once(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)
    payload = pattern(0, CHUNK)

    async def main() -> EventRecorder:
        proto = EventRecorder()
        server, peer = await accept_one(proto)
        await proto.made
        # The data waits in the kernel while reading is paused: the RST lands behind it,
        # in the middle of what the transport still has to read.
        proto.transport.pause_reading()
        assert peer.send(payload) == len(payload)
        reset(peer)
        proto.transport.resume_reading()
        await proto.lost
        await ticks(5)  # room for a second, wrong, connection_lost
        await close_server(server)
        return proto

    proto = loop.run_until_complete(main())
    # Linux delivers the bytes queued before the RST, then ECONNRESET.
    assert bytes(proto.data) == payload
    assert proto.events == ["made", "lost"]
    assert len(proto.lost_calls) == 1
    assert type(proto.lost_calls[0]) is ConnectionResetError
    assert proto.transport.is_closing()
    assert reports == []


def test_reset_mid_write_reaches_connection_lost_once(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)

    async def main() -> EventRecorder:
        proto = EventRecorder()
        server, peer = await accept_one(proto)
        await proto.made
        proto.transport.set_write_buffer_limits(high=HIGH_WATER)
        # Fill the socket buffers and the transport's own: the peer never reads.
        offset = 0
        while not proto.paused:
            proto.transport.write(pattern(offset, CHUNK))
            offset += CHUNK
            await asyncio.sleep(0)
        assert proto.transport.get_write_buffer_size() > 0
        reset(peer)
        await proto.lost
        proto.transport.write(b"after the loss")  # dropped, never raises
        await ticks(5)
        await close_server(server)
        return proto

    proto = loop.run_until_complete(main())
    assert proto.events == ["made", "pause", "lost"]
    assert len(proto.lost_calls) == 1
    assert type(proto.lost_calls[0]) is ConnectionResetError
    assert proto.transport.is_closing()
    assert proto.transport.get_write_buffer_size() == 0
    assert reports == []


def test_reset_reaches_stream_reader_and_drain(loop: asyncio.AbstractEventLoop) -> None:
    """The client side, through asyncio streams: a reader blocked in read() and a writer
    blocked in drain() both see the reset as ConnectionResetError."""
    reports = report_collector(loop)

    async def main() -> tuple[BaseException, BaseException, bool]:
        listener = socket.create_server(("127.0.0.1", 0))
        with listener:
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            conn, _ = listener.accept()
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)
        read = asyncio.ensure_future(reader.read(1 << 20))
        # Write until drain() has to wait: the server side never reads.
        offset = 0
        while True:
            writer.write(pattern(offset, CHUNK))
            offset += CHUNK
            drain = asyncio.ensure_future(writer.drain())
            await asyncio.sleep(0)
            if not drain.done():
                break
            await drain
        await ticks(3)
        assert not drain.done() and not read.done()
        reset(conn)
        results = await asyncio.gather(read, drain, return_exceptions=True)
        closing = writer.transport.is_closing()
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
        return results[0], results[1], closing

    read_exc, drain_exc, closing = loop.run_until_complete(main())
    assert type(read_exc) is ConnectionResetError
    assert type(drain_exc) is ConnectionResetError
    assert closing
    assert reports == []


# -- half-open connections ---------------------------------------------------------------


def test_peer_shut_down_writing_server_still_writes(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)
    request = pattern(0, 4096)
    response_size = 4 * 1024 * 1024

    async def main() -> tuple[EventRecorder, bytes]:
        proto = EventRecorder(keep_open_on_eof=True)
        server, peer = await accept_one(proto)
        with peer:
            await proto.made
            await loop.sock_sendall(peer, request)
            peer.shutdown(socket.SHUT_WR)
            await proto.got_eof
            assert bytes(proto.data) == request
            # Half-open: the peer's direction is finished, the server's is not.
            assert not proto.transport.is_closing()
            reading = asyncio.ensure_future(recv_until_eof(peer))
            for offset in range(0, response_size, CHUNK):
                proto.transport.write(pattern(offset, CHUNK))
            proto.transport.close()  # after the buffered data is sent: then the FIN
            got = await reading
        await proto.lost
        await close_server(server)
        return proto, got

    proto, got = loop.run_until_complete(main())
    assert got == b"".join(pattern(o, CHUNK) for o in range(0, response_size, CHUNK))
    assert proto.events.count("eof") == 1
    assert proto.events[0] == "made" and proto.events[-1] == "lost"
    assert proto.lost_calls == [None]
    assert reports == []


def test_peer_shut_down_writing_transport_closes_when_eof_received_says_so(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[EventRecorder, bytes]:
        proto = EventRecorder(keep_open_on_eof=False)
        server, peer = await accept_one(proto)
        with peer:
            await proto.made
            await loop.sock_sendall(peer, b"last words")
            peer.shutdown(socket.SHUT_WR)
            # eof_received() returning false closes the transport: the peer reads EOF.
            got = await recv_until_eof(peer)
        await proto.lost
        await close_server(server)
        return proto, got

    proto, got = loop.run_until_complete(main())
    assert got == b""
    assert bytes(proto.data) == b"last words"
    assert proto.events == ["made", "eof", "lost"]
    assert proto.lost_calls == [None]


def test_streams_half_open_request_then_response(loop: asyncio.AbstractEventLoop) -> None:
    request = pattern(0, 300_000)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await reader.read()  # until the client's EOF
        writer.write(hashlib.sha256(body).hexdigest().encode() + body[::-1])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        peer = socket.create_connection(server.sockets[0].getsockname())
        peer.setblocking(False)
        with peer:
            await loop.sock_sendall(peer, request)
            peer.shutdown(socket.SHUT_WR)
            got = await recv_until_eof(peer)
        await close_server(server)
        return got

    got = loop.run_until_complete(main())
    assert got == hashlib.sha256(request).hexdigest().encode() + request[::-1]


def test_server_shut_down_writing_still_receives(loop: asyncio.AbstractEventLoop) -> None:
    upload_size = 4 * 1024 * 1024

    async def main() -> EventRecorder:
        proto = EventRecorder()
        server, peer = await accept_one(proto)
        with peer:
            await proto.made
            proto.transport.write(b"no more from me")
            proto.transport.write_eof()
            assert await recv_until_eof(peer) == b"no more from me"
            for offset in range(0, upload_size, CHUNK):
                await loop.sock_sendall(peer, pattern(offset, CHUNK))
        # The peer's close is the EOF after its upload; connection_lost follows it.
        await proto.lost
        await close_server(server)
        return proto

    proto = loop.run_until_complete(main())
    assert bytes(proto.data) == b"".join(pattern(o, CHUNK) for o in range(0, upload_size, CHUNK))
    assert proto.lost_calls == [None]


# -- a client that never reads -----------------------------------------------------------


# Loopback TCP buffers can hold several MiB; 48 MiB is far more than fits in flight,
# so a writer that ignored flow control would hold most of it in memory.
FLOOD_TOTAL = 48 * 1024 * 1024


# The memory the flooding tests may add to the process (resident set, sampled after
# every write): the transport holds at most HIGH_WATER + CHUNK, so 16 MiB leaves room
# for the allocator and still fails a transport that kept even a third of FLOOD_TOTAL.
FLOOD_RSS_LIMIT = 16 * 1024 * 1024


def rss() -> int:
    """This process's resident set size now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@functools.cache
def flood_stream_hash() -> str:
    digest = hashlib.sha256()
    for offset in range(0, FLOOD_TOTAL, CHUNK):
        digest.update(pattern(offset, CHUNK))
    return digest.hexdigest()


class FloodMeter:
    """What a flood did to the writer's side: the largest transport buffer and the peak
    growth of the process's resident memory, sampled after every write."""

    def __init__(self) -> None:
        gc.collect()
        self.rss_before = rss()
        self.rss_peak = self.rss_before
        self.max_buffer = 0

    def sample(self, transport: asyncio.WriteTransport) -> None:
        self.max_buffer = max(self.max_buffer, transport.get_write_buffer_size())
        self.rss_peak = max(self.rss_peak, rss())

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before


async def read_and_hash(sock: socket.socket, total: int) -> str:
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    got = 0
    while got < total:
        data = await loop.sock_recv(sock, 1 << 20)
        assert data, f"EOF after {got} of {total} bytes"
        digest.update(data)
        got += len(data)
    assert got == total
    return digest.hexdigest()


def test_client_that_never_reads_pauses_the_protocol_writer(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)

    async def main() -> tuple[EventRecorder, FloodMeter, str, int]:
        proto = EventRecorder()
        server, peer = await accept_one(proto)
        await proto.made
        transport = proto.transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        meter = FloodMeter()
        offset = 0
        # As fast as flow control allows: write until paused, then wait to be resumed.
        while not proto.paused:
            transport.write(pattern(offset, CHUNK))
            offset += CHUNK
            meter.sample(transport)
        assert offset < FLOOD_TOTAL, "never paused"
        # Nothing reads: the writer stays paused while the loop goes on turning.
        await ticks(20)
        assert proto.paused and "resume" not in proto.events
        meter.sample(transport)
        reading = asyncio.ensure_future(read_and_hash(peer, FLOOD_TOTAL))
        while offset < FLOOD_TOTAL:
            if proto.paused:
                proto.resumed = loop.create_future()
                await proto.resumed
            transport.write(pattern(offset, CHUNK))
            offset += CHUNK
            meter.sample(transport)
        digest = await reading
        pauses = proto.events.count("pause")
        transport.close()
        await proto.lost
        peer.close()
        await close_server(server)
        return proto, meter, digest, pauses

    proto, meter, digest, pauses = loop.run_until_complete(main())
    print(
        f"\nprotocol flood on {type(loop).__name__}: {FLOOD_TOTAL >> 20} MiB, {pauses} pauses, "
        f"largest buffer {meter.max_buffer} B, RSS growth {meter.rss_growth / 2**20:.1f} MiB"
    )
    assert digest == flood_stream_hash()
    assert pauses >= 1 and proto.events.count("resume") == pauses
    assert meter.max_buffer <= HIGH_WATER + CHUNK
    assert meter.rss_growth <= FLOOD_RSS_LIMIT
    assert proto.lost_calls == [None]
    assert reports == []


def test_client_that_never_reads_blocks_stream_drain(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_collector(loop)
    meter: FloodMeter | None = None
    written = 0
    transport: Any = None

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal meter, written, transport
        transport = writer.transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        meter = FloodMeter()
        while written < FLOOD_TOTAL:
            writer.write(pattern(written, CHUNK))
            written += CHUNK
            meter.sample(transport)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> str:
        server = await asyncio.start_server(flood, "127.0.0.1", 0)
        peer = socket.create_connection(server.sockets[0].getsockname())
        peer.setblocking(False)
        with peer:
            while transport is None or transport.get_write_buffer_size() <= HIGH_WATER:
                await asyncio.sleep(0)
            # Over the high-water mark and nobody reading: drain() must not return.
            stuck_at = written
            await ticks(20)
            assert written == stuck_at < FLOOD_TOTAL
            digest = await read_and_hash(peer, FLOOD_TOTAL)
            assert await loop.sock_recv(peer, 1) == b""  # the handler's close
        await close_server(server)
        return digest

    digest = loop.run_until_complete(main())
    assert meter is not None
    print(
        f"\nstreams flood on {type(loop).__name__}: {FLOOD_TOTAL >> 20} MiB, "
        f"largest buffer {meter.max_buffer} B, RSS growth {meter.rss_growth / 2**20:.1f} MiB"
    )
    assert digest == flood_stream_hash()
    assert meter.max_buffer <= HIGH_WATER + CHUNK
    assert meter.rss_growth <= FLOOD_RSS_LIMIT
    assert reports == []
