"""SimStreamTransport and SimDatagramTransport (looplet/sim/transports.py): asyncio's transport API.

The protocol hears connection_made, data (data_received, or get_buffer and
buffer_updated for a BufferedProtocol), eof_received and connection_lost in that
order, connection_lost once; a writer faster than its reader fills the write buffer
and gets pause_writing, then resume_writing as the reader catches up; extra info
names both ends and gives a socket object that takes options; writes after the
connection is lost are dropped; close() sends what is buffered first, abort() does
not.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from looplet.sim import Simulation


def run(server: Callable[[], Awaitable[Any]], client: Callable[[], Awaitable[Any]], **kwargs: Any) -> Any:
    sim = Simulation(**kwargs)
    sim.host("server", server)
    sim.client("client", client)
    return sim.run()["client"]


class Recorder(asyncio.Protocol):
    """Records every callback it gets, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.transport: Any = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")


async def sender(payloads: list[bytes], *, eof: bool = True) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for payload in payloads:
            writer.write(payload)
            await asyncio.sleep(1)
        if eof:
            writer.close()

    server = await asyncio.start_server(handle, None, 7)
    await server.serve_forever()


def test_a_protocol_hears_made_data_eof_lost_in_order() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(Recorder, "server", 7)
        assert protocol.events == ["made"]
        await protocol.lost
        assert transport.is_closing()
        return protocol.events

    events = run(lambda: sender([b"one", b"two"]), client)
    assert events == ["made", b"one", b"two", "eof", ("lost", None)]


def test_a_buffered_protocol_gets_every_byte_through_its_buffer() -> None:
    class Small(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(3)
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.got))

    async def client() -> bytes:
        transport, protocol = await asyncio.get_running_loop().create_connection(Small, "server", 7)
        data = await protocol.done
        transport.close()
        return data

    assert run(lambda: sender([b"abcdefgh", b"ij"]), client) == b"abcdefghij"


def test_a_slow_reader_fills_the_write_buffer_and_pauses_the_writer() -> None:
    async def server() -> None:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(1000):
                await asyncio.sleep(0.01)
            writer.close()

        srv = await asyncio.start_server(slow, None, 7)
        await srv.serve_forever()

    async def client() -> tuple[list[Any], int, tuple[int, int]]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(Recorder, "server", 7)
        transport.set_write_buffer_limits(high=20000)
        transport.write(b"x" * 200_000)
        buffered = transport.get_write_buffer_size()
        limits = transport.get_write_buffer_limits()
        while "resume" not in protocol.events:
            await asyncio.sleep(0.1)
        transport.close()
        await protocol.lost
        return protocol.events, buffered, limits

    events, buffered, limits = run(server, client, tcp_window=10_000)
    assert events == ["made", "pause", "resume", ("lost", None)]
    assert buffered == 190_000
    assert limits == (5000, 20000)


def test_close_sends_what_is_buffered_first_and_abort_drops_it() -> None:
    received: dict[str, int] = {}

    async def server() -> None:
        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            name = (await reader.readexactly(5)).decode()
            received[name] = len(await reader.read())
            writer.close()

        srv = await asyncio.start_server(count, None, 7)
        await srv.serve_forever()

    async def client() -> None:
        loop = asyncio.get_running_loop()
        for name, end in (("close", "close"), ("abort", "abort")):
            transport, protocol = await loop.create_connection(Recorder, "server", 7)
            transport.write(name.encode().ljust(5))
            transport.write(b"y" * 50_000)
            getattr(transport, end)()
            await protocol.lost
            await asyncio.sleep(1)

    run(server, client, tcp_window=20_000)
    assert received["close"] == 50_000
    # Only what the window let out before abort() (the kernel still sends that).
    assert received["abort"] == 20_000 - 5


def test_extra_info_names_both_ends_and_the_socket_takes_options() -> None:
    async def client() -> dict[str, Any]:
        _reader, writer = await asyncio.open_connection("server", 7)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        info = {
            "peername": writer.get_extra_info("peername"),
            "sockname": writer.get_extra_info("sockname"),
            "family": sock.family,
            "type": sock.type,
            "nodelay": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "sock-peer": sock.getpeername(),
            "missing": writer.get_extra_info("peercert", "none"),
        }
        writer.close()
        return info

    assert run(lambda: sender([]), client) == {
        "peername": ("10.0.0.1", 7),
        "sockname": ("10.0.0.2", 49152),
        "family": socket.AF_INET,
        "type": socket.SOCK_STREAM,
        "nodelay": 1,
        "keepalive": 1,
        "sock-peer": ("10.0.0.1", 7),
        "missing": "none",
    }


def test_pause_reading_holds_data_until_resume() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(Recorder, "server", 7)
        transport.pause_reading()
        assert not transport.is_reading()
        await asyncio.sleep(5)
        held = list(protocol.events)
        transport.resume_reading()
        assert transport.is_reading()
        await protocol.lost
        return [held, protocol.events]

    held, events = run(lambda: sender([b"a", b"b"]), client)
    assert held == ["made"]
    assert events == ["made", b"ab", "eof", ("lost", None)]


def test_writes_after_the_connection_is_lost_are_dropped_and_write_checks_its_argument() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(Recorder, "server", 7)
        with pytest.raises(TypeError, match="data argument must be a bytes"):
            transport.write("text")
        transport.write_eof()
        with pytest.raises(RuntimeError, match="Cannot call write\\(\\) after write_eof\\(\\)"):
            transport.write(b"x")
        transport.abort()
        await protocol.lost
        transport.close()
        return protocol.events

    assert run(lambda: sender([], eof=False), client) == ["made", ("lost", None)]


def test_a_protocol_that_raises_in_data_received_is_reported_and_closed(loop_errors: Any) -> None:
    class Broken(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ValueError("broken protocol")

    async def client() -> list[Any]:
        _transport, protocol = await asyncio.get_running_loop().create_connection(Broken, "server", 7)
        await protocol.lost
        return protocol.events

    assert run(lambda: sender([b"x"]), client) == ["made", ("lost", "ValueError")]
    loop_errors.take("Fatal error: protocol.data_received\\(\\) call failed", ValueError)


def test_datagrams_go_both_ways_with_their_addresses() -> None:
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data.upper(), addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got = asyncio.get_running_loop().create_future()

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.got.set_result((data, addr))

    async def server() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 53))
        await asyncio.sleep(100)

    async def client() -> Any:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(Client, remote_addr=("server", 53))
        assert transport.get_extra_info("peername") == ("10.0.0.1", 53)
        assert transport.get_write_buffer_size() == 0
        transport.sendto(b"hello")
        got = await protocol.got
        transport.close()
        return got, loop.time()

    assert run(server, client) == ((b"HELLO", ("10.0.0.1", 53)), 0.002)


def test_a_connected_datagram_sender_hears_port_unreachable() -> None:
    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.error = asyncio.get_running_loop().create_future()

        def error_received(self, exc: Exception) -> None:
            self.error.set_result(exc)

    async def server() -> None:
        await asyncio.sleep(100)

    async def client() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(Client, remote_addr=("server", 9))
        transport.sendto(b"anyone?")
        exc = await protocol.error
        transport.close()
        return type(exc).__name__, loop.time()

    assert run(server, client, latency=0.01) == ("ConnectionRefusedError", 0.02)


def test_a_connected_datagram_endpoint_takes_its_peer_only_and_ports_conflict() -> None:
    got: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append(data)

    async def server() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("0.0.0.0", 53))
        with pytest.raises(OSError, match="Address already in use"):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("0.0.0.0", 53))
        await asyncio.sleep(1)
        transport.sendto(b"not the peer", ("client", 5000))
        await asyncio.sleep(100)

    async def client() -> list[bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            Sink, local_addr=("0.0.0.0", 5000), remote_addr=("client", 6000)
        )
        other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("0.0.0.0", 6000))
        other.sendto(b"from the peer", ("client", 5000))
        with pytest.raises(ValueError, match="Invalid address"):
            transport.sendto(b"x", ("server", 1))
        await asyncio.sleep(2)
        transport.close()
        other.close()
        return got

    assert run(server, client) == [b"from the peer"]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients and abort_clients are new in 3.13")
def test_close_clients_closes_the_servers_connections() -> None:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: writers.append(w), None, 7)
        servers.append(srv)
        await asyncio.sleep(100)

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        await asyncio.sleep(1)
        servers[0].close()
        servers[0].close_clients()  # type: ignore[attr-defined]
        data = await reader.read()
        writer.close()
        await servers[0].wait_closed()
        return data

    assert run(server, client) == b""
    assert writers[0].transport.is_closing()


def test_writelines_writes_each_in_order() -> None:
    async def client() -> bytes:
        transport, protocol = await asyncio.get_running_loop().create_connection(Recorder, "server", 7)
        transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
        transport.write_eof()
        await protocol.lost
        return b"".join(e for e in protocol.events if isinstance(e, bytes))

    async def server() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read())
            writer.close()

        srv = await asyncio.start_server(echo, None, 7)
        await srv.serve_forever()

    assert run(server, client) == b"abc"


def test_protocol_callbacks_that_fail_are_reported_and_close_the_connection(loop_errors: Any) -> None:
    class EmptyBuffer(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return bytearray()

        def buffer_updated(self, nbytes: int) -> None:
            raise AssertionError("never called")

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(type(exc).__name__)

    class BadEof(Recorder):
        def eof_received(self) -> bool | None:
            raise KeyError("eof")

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        outcomes = []
        for factory in (EmptyBuffer, BadEof):
            _transport, protocol = await loop.create_connection(factory, "server", 7)
            outcomes.append(await protocol.lost)
        return outcomes

    assert run(lambda: sender([b"x"]), client) == ["RuntimeError", None]
    loop_errors.take("Fatal error: protocol.get_buffer\\(\\) call failed", RuntimeError)
    loop_errors.take("Fatal error: protocol.eof_received\\(\\) call failed", KeyError)


def test_a_protocol_factory_that_fails_is_reported_and_the_client_is_reset(loop_errors: Any) -> None:
    def broken() -> asyncio.Protocol:
        raise ValueError("no protocol")

    async def server() -> None:
        srv = await asyncio.get_running_loop().create_server(broken, None, 7)
        await srv.serve_forever()

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        data = await reader.read()
        writer.close()
        return data

    # Nothing was read yet when the connection is closed: a FIN, so EOF.
    assert run(server, client) == b""
    loop_errors.take("Error on transport creation for incoming connection", ValueError)


def test_writes_after_the_connection_is_lost_warn_after_a_few(caplog: Any) -> None:
    async def client() -> None:
        transport, protocol = await asyncio.get_running_loop().create_connection(Recorder, "server", 7)
        transport.abort()
        await protocol.lost
        for _ in range(6):
            transport.write(b"x")

    with caplog.at_level("WARNING", logger="asyncio"):
        run(lambda: sender([], eof=False), client)
    assert [r.getMessage() for r in caplog.records] == ["socket.send() raised exception."] * 2


def test_the_datagram_transport_api() -> None:
    class Errors(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.errors: list[str] = []
            self.lost = asyncio.get_running_loop().create_future()

        def error_received(self, exc: Exception) -> None:
            self.errors.append(str(exc))

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(Errors, local_addr=("0.0.0.0", 0))
        assert transport.get_protocol() is protocol
        assert repr(transport) == "<SimDatagramTransport open>"
        assert transport.get_extra_info("sockname") == ("0.0.0.0", 49152)
        # asyncio's datagram message, which 3.14 did not reword as it did the stream one.
        with pytest.raises(TypeError, match=r"^data argument must be a bytes-like object, not 'str'$"):
            transport.sendto("text", ("server", 1))  # type: ignore[arg-type]
        transport.sendto(b"where to?")
        transport.abort()
        assert transport.is_closing()
        await protocol.lost
        transport.sendto(b"gone", ("server", 1))
        return protocol.errors

    async def server() -> None:
        await asyncio.sleep(10)

    assert run(server, client) == ["[Errno 89] Destination address required"]
