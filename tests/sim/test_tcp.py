"""Simulated TCP (looplet/sim/tcp.py) through asyncio's streams and protocols.

A connection takes a round trip; bytes arrive in order, once, a latency after they
were sent; EOF follows the last byte; a port with nothing listening refuses after
the round trip; an address nobody answers times out after the SYN timeout; closing
with received data unread resets the peer, and so does writing to a closed peer;
Server.close() stops new connections and leaves existing ones alone; ports bind
and conflict as on Linux, with asyncio's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from looplet.sim import Simulation


def run_client(
    client: Callable[[], Awaitable[Any]], *, server: Callable[[], Awaitable[Any]] | None = None, **kwargs: Any
) -> Any:
    sim = Simulation(**kwargs)
    if server is not None:
        sim.host("server", server)
    sim.client("client", client)
    return sim.run()["client"]


def now() -> float:
    return asyncio.get_running_loop().time()


async def echo_server() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, None, 7)
    await server.serve_forever()


def test_a_connection_takes_a_round_trip_and_bytes_a_latency() -> None:
    async def client() -> list[float]:
        times = [now()]
        reader, writer = await asyncio.open_connection("server", 7)
        times.append(now())
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        times.append(now())
        writer.close()
        await writer.wait_closed()
        return times

    # SYN 0 -> 0.01, SYN-ACK -> 0.02; data out at 0.02, at the server 0.03, back 0.04.
    assert run_client(client, server=echo_server, latency=0.01) == [0.0, 0.02, 0.04]


def test_bytes_arrive_in_order_and_once_even_when_latency_varies_and_segments_are_lost() -> None:
    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        for i in range(200):
            writer.write(b"%05d," % i)
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data

    expected = b"".join(b"%05d," % i for i in range(200))
    for seed in range(5):
        assert run_client(client, server=echo_server, seed=seed, latency=(0.001, 0.05), loss=0.2) == expected


def test_a_megabyte_crosses_whole_and_in_order() -> None:
    payload = bytes(range(256)) * 4096

    async def client() -> bool:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(payload)
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data == payload

    assert run_client(client, server=echo_server) is True


def test_eof_follows_the_last_byte() -> None:
    async def server() -> None:
        async def bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"bye")
            writer.close()

        srv = await asyncio.start_server(bye, None, 7)
        await srv.serve_forever()

    async def client() -> list[bytes]:
        reader, writer = await asyncio.open_connection("server", 7)
        got = [await reader.read(100), await reader.read(100)]
        writer.close()
        return got

    assert run_client(client, server=server) == [b"bye", b""]


def test_write_eof_half_closes_and_the_peer_can_still_answer() -> None:
    async def server() -> None:
        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()
            writer.write(str(len(data)).encode())
            writer.close()

        srv = await asyncio.start_server(count, None, 7)
        await srv.serve_forever()

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("server", 7)
        assert writer.can_write_eof()
        writer.write(b"12345")
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data

    assert run_client(client, server=server) == b"5"


def test_nothing_listening_refuses_after_the_round_trip() -> None:
    async def server() -> None:
        await asyncio.sleep(100)

    async def client() -> tuple[str, float]:
        try:
            await asyncio.open_connection("server", 80)
        except ConnectionRefusedError as exc:
            return str(exc), now()
        raise AssertionError("connected")

    message, when = run_client(client, server=server, latency=0.005)
    assert message == "[Errno 111] Connect call failed ('10.0.0.1', 80)"
    assert when == 0.01


def test_an_address_nobody_answers_times_out_after_the_syn_timeout() -> None:
    async def client() -> tuple[int | None, float]:
        try:
            await asyncio.open_connection("10.9.9.9", 80)
        except TimeoutError as exc:
            return exc.errno, now()
        raise AssertionError("connected")

    assert run_client(client) == (errno.ETIMEDOUT, 127.0)
    assert run_client(client, syn_timeout=3.0) == (errno.ETIMEDOUT, 3.0)


def test_an_unknown_name_fails_to_resolve() -> None:
    async def client() -> int:
        with pytest.raises(socket.gaierror) as info:
            await asyncio.open_connection("nowhere", 80)
        return info.value.errno

    assert run_client(client) == socket.EAI_NONAME


def test_closing_with_unread_data_resets_the_peer() -> None:
    class Deaf(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            asyncio.get_running_loop().call_later(1, transport.close)

    async def server() -> None:
        srv = await asyncio.get_running_loop().create_server(Deaf, None, 7)
        await srv.serve_forever()

    async def client() -> str:
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"unread")
        with pytest.raises(ConnectionResetError) as info:
            await reader.read(100)
        writer.close()
        return str(info.value)

    assert run_client(client, server=server) == "[Errno 104] Connection reset by peer"


def test_writing_to_a_closed_peer_resets_the_connection() -> None:
    async def server() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        srv = await asyncio.start_server(hang_up, None, 7)
        await srv.serve_forever()

    async def client() -> type[BaseException]:
        reader, writer = await asyncio.open_connection("server", 7)
        assert await reader.read() == b""
        writer.write(b"too late")
        await asyncio.sleep(1)
        with pytest.raises(ConnectionResetError) as info:
            writer.write(b"again")
            await writer.drain()
        return type(info.value)

    assert run_client(client, server=server) is ConnectionResetError


def test_server_close_refuses_new_connections_and_keeps_open_ones() -> None:
    servers: list[asyncio.Server] = []

    async def server() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                writer.write(data)
            writer.close()

        srv = await asyncio.start_server(echo, None, 7)
        servers.append(srv)
        await asyncio.sleep(1000)

    async def client() -> list[Any]:
        reader, writer = await asyncio.open_connection("server", 7)
        # An echo: the server has accepted (the handshake's last ACK reached it).
        writer.write(b"!")
        await reader.readexactly(1)
        srv = servers[0]
        assert srv.is_serving()
        srv.close()
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("server", 7)
        writer.write(b"still here")
        got = await reader.readexactly(10)
        writer.close()
        await writer.wait_closed()
        await srv.wait_closed()
        return [got, srv.sockets]

    assert run_client(client, server=server) == [b"still here", ()]


def test_server_close_ends_serve_forever() -> None:
    async def server() -> str:
        srv = await asyncio.start_server(lambda r, w: None, None, 7)
        asyncio.get_running_loop().call_later(5, srv.close)
        try:
            await srv.serve_forever()
        except asyncio.CancelledError:
            return "stopped"
        return "returned"

    async def client() -> None:
        await asyncio.sleep(10)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("server", 7)

    run_client(client, server=server)


def test_a_server_refuses_until_it_serves() -> None:
    # asyncio calls listen() when the server starts serving: until then the port is
    # bound and refuses, as a real one does.
    async def server() -> None:
        async def hi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hi")
            writer.close()

        srv = await asyncio.start_server(hi, None, 7, start_serving=False)
        await asyncio.sleep(5)
        await srv.serve_forever()

    async def client() -> tuple[bytes, float]:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("server", 7)
        await asyncio.sleep(5)
        reader, writer = await asyncio.open_connection("server", 7)
        data = await reader.readexactly(2)
        writer.close()
        return data, now()

    data, when = run_client(client, server=server)
    assert data == b"hi"
    assert when > 5


def test_binding_a_taken_port_fails_as_asyncio_says() -> None:
    async def client() -> list[str]:
        loop = asyncio.get_running_loop()
        first = await loop.create_server(asyncio.Protocol, None, 80)
        messages = []
        for host in (None, "10.0.0.1", "127.0.0.1"):
            with pytest.raises(OSError) as info:
                await loop.create_server(asyncio.Protocol, host, 80)
            assert info.value.errno == errno.EADDRINUSE
            messages.append(str(info.value))
        with pytest.raises(OSError) as info:
            await loop.create_server(asyncio.Protocol, "10.0.0.7", 81)
        assert info.value.errno == errno.EADDRNOTAVAIL
        first.close()
        await loop.create_server(asyncio.Protocol, None, 80)
        return messages

    # asyncio's wording, which 3.13 changed (tests/sim/test_parity.py compares it with a real bind).
    reason = "[errno 98] address already in use" if sys.version_info >= (3, 13) else "address already in use"
    assert run_client(client) == [
        f"[Errno 98] error while attempting to bind on address ('0.0.0.0', 80): {reason}",
        f"[Errno 98] error while attempting to bind on address ('10.0.0.1', 80): {reason}",
        f"[Errno 98] error while attempting to bind on address ('127.0.0.1', 80): {reason}",
    ]


def test_port_zero_gets_an_ephemeral_port_the_server_shows() -> None:
    async def client() -> tuple[Any, Any]:
        srv = await asyncio.start_server(lambda r, w: w.close(), None, 0)
        (sock,) = srv.sockets
        port = sock.getsockname()[1]
        reader, writer = await asyncio.open_connection("client", port)
        assert await reader.read() == b""
        writer.close()
        return sock.getsockname(), writer.get_extra_info("peername")

    name, peer = run_client(client)
    assert name == ("0.0.0.0", 49152)
    assert peer == ("10.0.0.1", 49152)


def test_loopback_stays_on_the_host() -> None:
    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 7)
        reader, writer = await asyncio.open_connection("localhost", 7)
        assert writer.get_extra_info("sockname")[0] == "127.0.0.1"
        assert await reader.read() == b""
        writer.close()
        await asyncio.sleep(100)
        srv.close()

    async def client() -> None:
        await asyncio.sleep(1)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("server", 7)

    run_client(client, server=server)


def test_local_addr_picks_the_source_port() -> None:
    async def server() -> None:
        async def tell(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(repr(writer.get_extra_info("peername")).encode())
            writer.close()

        srv = await asyncio.start_server(tell, None, 7)
        await srv.serve_forever()

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("server", 7, local_addr=("0.0.0.0", 4000))
        assert writer.get_extra_info("sockname") == ("10.0.0.2", 4000)
        data = await reader.read()
        writer.close()
        return data

    assert run_client(client, server=server) == b"('10.0.0.2', 4000)"


def test_a_cancelled_connect_leaves_nothing_half_open() -> None:
    accepted: list[Any] = []

    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: accepted.append(w), None, 7)
        await srv.serve_forever()

    async def client() -> list[Any]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.open_connection("server", 7), 0.015)
        await asyncio.sleep(1)
        return [w.transport.is_closing() for w in accepted]

    # The SYN-ACK comes back at 0.02, after the caller gave up: the client's kernel
    # resets the connection the server may already have accepted.
    assert run_client(client, server=server, latency=0.01) == []


def test_open_connection_needs_a_host_and_refuses_real_sockets() -> None:
    from looplet.sim import NotSimulatedError

    async def client() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="host and port was not specified"):
            await loop.create_connection(asyncio.Protocol)
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_connection(asyncio.Protocol, "client", 1, ssl_handshake_timeout=1)
        with pytest.raises(NotSimulatedError, match=r"create_server\(sock=...\)"):
            await loop.create_server(asyncio.Protocol, sock=object())  # type: ignore[arg-type]

    run_client(client)


def test_create_connection_outside_a_host_says_so() -> None:
    from looplet.sim.loop import SimLoop
    from looplet.sim.network import LinkConfig, Network

    loop = SimLoop(Network(0, LinkConfig()), tcp_window=1000, syn_timeout=1.0, shuffle_seed=0)
    try:
        with pytest.raises(RuntimeError, match=r"create_connection\(\) was called outside every simulated host"):
            loop.run_until_complete(loop.create_connection(asyncio.Protocol, "x", 1))
    finally:
        loop.close()


def test_a_reset_comes_after_the_data_sent_before_it_whatever_the_latency() -> None:
    class Deaf(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            for i in range(20):
                transport.write(b"%02d" % i)
            asyncio.get_running_loop().call_later(1, transport.close)

    class Collect(asyncio.Protocol):
        def __init__(self) -> None:
            self.data = b""
            self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            self.data += data

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def server() -> None:
        srv = await asyncio.get_running_loop().create_server(Deaf, None, 7)
        await srv.serve_forever()

    async def client() -> tuple[bytes, str]:
        transport, protocol = await asyncio.get_running_loop().create_connection(Collect, "server", 7)
        transport.write(b"unread")
        exc = await protocol.lost
        return protocol.data, type(exc).__name__

    expected = (b"".join(b"%02d" % i for i in range(20)), "ConnectionResetError")
    for seed in range(6):
        assert run_client(client, server=server, seed=seed, latency=(0.001, 2.0)) == expected


def test_sock_connect_then_create_connection_sock_is_a_simulated_connection() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        refused = socket.socket()
        refused.setblocking(False)
        with refused, pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(refused, ("server", 8))
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("server", 7))
        with pytest.raises(OSError) as info:
            await loop.sock_connect(sock, ("server", 7))
        assert info.value.errno == errno.EISCONN
        reader = asyncio.StreamReader()
        transport, _ = await loop.create_connection(lambda: asyncio.StreamReaderProtocol(reader), sock=sock)
        assert sock.fileno() == -1  # it named the connection; the transport has it now
        transport.write(b"via sock_connect")
        data = await reader.readexactly(16)
        transport.close()
        return [data, transport.get_extra_info("peername")]

    assert run_client(client, server=echo_server) == [b"via sock_connect", ("10.0.0.1", 7)]


def chaos_run(seed: int) -> tuple[dict[str, Any], float]:
    """Three clients echoing random payloads through partitions, holds, a bouncing
    server that sometimes aborts, loss, latency and bandwidth drawn from the seed."""
    import random

    async def server() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(random.randint(1, 5000)):
                    writer.write(data)
                    if random.random() < 0.3:
                        await writer.drain()
                    if random.random() < 0.01:
                        writer.transport.abort()
                        return
            writer.close()

        srv = await asyncio.start_server(echo, None, 7)
        await srv.serve_forever()

    async def client() -> list[str]:
        outcomes = []
        for _ in range(4):
            payload = random.randbytes(random.randint(1, 20000))
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("server", 7), 30)
                writer.write(payload)
                if random.random() < 0.5:
                    writer.write_eof()
                got = await asyncio.wait_for(reader.readexactly(len(payload)), 60)
                # Whole and in order, or not at all: never different bytes.
                assert got == payload
                outcomes.append("ok")
            except (OSError, asyncio.IncompleteReadError) as exc:
                outcomes.append(type(exc).__name__)
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(random.random())
        return outcomes

    async def chaos() -> None:
        clients = ["c0", "c1", "c2"]
        for _ in range(6):
            await asyncio.sleep(random.uniform(0.1, 3))
            roll = random.random()
            if roll < 0.3:
                sim.partition("server", random.choice(clients))
            elif roll < 0.5:
                for name in clients:
                    sim.repair("server", name)
            elif roll < 0.6:
                sim.bounce("server")
            elif roll < 0.8:
                name = random.choice(clients)
                sim.hold("server", name)
                await asyncio.sleep(random.uniform(0, 2))
                sim.release("server", name)
        for name in clients:
            sim.repair("server", name)

    sim = Simulation(
        seed, latency=(0.001, 0.1), loss=0.1, bandwidth=100_000, tcp_window=1000, syn_timeout=10, tcp_timeout=20
    )
    sim.host("server", server)
    for name in ("c0", "c1", "c2"):
        sim.client(name, client)
    sim.client("chaos", chaos)
    return sim.run(), sim.time()


def test_under_random_faults_bytes_arrive_whole_or_the_connection_fails_and_a_seed_replays() -> None:
    outcomes: set[str] = set()
    for seed in range(4):
        first = chaos_run(seed)
        assert chaos_run(seed) == first
        for name in ("c0", "c1", "c2"):
            outcomes.update(first[0][name])
    assert "ok" in outcomes
    assert len(outcomes) > 1


@pytest.mark.parametrize("window", [1024, 4096, 65536])
def test_a_one_way_transfer_far_larger_than_the_window_completes(window: int) -> None:
    # Only the reader's window updates let the writer go on: none may be lost to the
    # piggybacking of acknowledgements on segments the reader never sends.
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def server() -> None:
        async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(payload)
            await writer.drain()
            writer.close()

        srv = await asyncio.start_server(send, None, 7)
        await srv.serve_forever()

    async def client() -> int:
        reader, writer = await asyncio.open_connection("server", 7)
        got = await reader.read()
        writer.close()
        assert got == payload
        return len(got)

    sim = Simulation(seed=3, latency=(0.001, 0.01), tcp_window=window)
    sim.host("server", server)
    sim.client("client", client)
    assert sim.run() == {"client": len(payload)}


@pytest.mark.parametrize(
    ("call", "since"),
    [
        (lambda loop: loop.create_server(asyncio.Protocol, None, 7, keep_alive=True), (3, 13)),
        (lambda loop: loop.create_connection(asyncio.Protocol, "server", 7, all_errors=True), (3, 12)),
    ],
    ids=["create_server-keep_alive", "create_connection-all_errors"],
)
def test_an_argument_newer_than_the_python_fails_as_on_a_real_loop(call: Any, since: tuple[int, int]) -> None:
    # The simulation's loop checks create_server's and create_connection's arguments
    # with the real loop's own checks: what a Python does not have is a TypeError.
    async def outcome(loop: asyncio.AbstractEventLoop) -> str:
        try:
            made = await call(loop)
        except TypeError as exc:
            return f"TypeError: {exc}".replace("SimLoop", "EventLoop")
        except OSError:
            return "accepted"  # got past the arguments (nothing listens on the real side)
        (made if isinstance(made, asyncio.AbstractServer) else made[0]).close()
        return "accepted"

    async def real() -> str:
        return await outcome(asyncio.get_running_loop())

    async def server() -> None:
        srv = await asyncio.start_server(lambda r, w: None, None, 7)
        await srv.serve_forever()

    sim = Simulation()
    sim.host("server", server)
    sim.client("client", lambda: outcome(asyncio.get_running_loop()))
    simulated = sim.run()["client"]
    if sys.version_info >= since:
        assert simulated == "accepted"
    else:
        assert simulated.startswith("TypeError: ") and simulated == looplet_run(real)


def looplet_run(main: Callable[[], Awaitable[str]]) -> str:
    import looplet

    return looplet.run(main())
