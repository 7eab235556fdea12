"""The simulation against the real thing: one client program, a real looplet loop over
127.0.0.1 and a simulated network, the same outcome.

Each scenario's client is written once, as a coroutine function taking where the
server is and how to make it die; it runs against a real server (in this process,
or a child process killed with SIGKILL, the real process death) on a real looplet
loop, and against a simulated host that a `Simulation` crashes. The outcomes compared
are what the program sees: the exception type and errno, the bytes read, EOF.
The same goes for programs written against the low-level socket API (`sock_*` calls
on socket objects they make, bind and listen on), whose servers are written once too.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import looplet
from looplet.sim import Simulation

#: A client scenario: (host, port, kill) -> outcome; kill() makes the server die.
Scenario = Callable[[str, int, Callable[[], Awaitable[None]]], Awaitable[Any]]


def outcome_of(exc: BaseException) -> tuple[str, int | None]:
    return type(exc).__name__, getattr(exc, "errno", None)


async def nothing() -> None:
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def listening(port: int) -> None:
    # Wait until the real server accepts connections (a probe the server sees and
    # drops like any client's), rather than for a guessed time.
    for _ in range(3000):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after 30 s")


async def bound(port: int) -> None:
    # A datagram server binds in its task's first step, which this one lets run.
    await asyncio.sleep(0)


def run_real(
    client: Scenario,
    server: Callable[[int], Awaitable[Any]] | None = None,
    ready: Callable[[int], Awaitable[None]] = listening,
) -> Any:
    async def main() -> Any:
        port = free_port()
        task = asyncio.create_task(server(port)) if server is not None else None
        if task is not None:
            await ready(port)
        try:
            return await client("127.0.0.1", port, nothing)
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return looplet.run(main())


def run_simulated(client: Scenario, server: Callable[[int], Awaitable[Any]] | None = None) -> Any:
    sim = Simulation()

    async def idle() -> None:
        await asyncio.sleep(3600)

    sim.host("server", (lambda: server(7)) if server is not None else idle)

    async def kill() -> None:
        sim.crash("server")

    sim.client("client", lambda: client("server", 7, kill))
    return sim.run()["client"]


async def connect_refused(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    try:
        await asyncio.open_connection(host, port)
    except OSError as exc:
        return outcome_of(exc)
    return "connected"


def test_refused() -> None:
    assert run_real(connect_refused) == run_simulated(connect_refused) == ("ConnectionRefusedError", 111)


async def bye_server(port: int) -> None:
    async def bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(bye, None if port == 7 else "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def read_to_eof(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    reader, writer = await asyncio.open_connection(host, port)
    got = [await reader.read(100), await reader.read(100)]
    writer.close()
    await writer.wait_closed()
    return got


def test_eof_after_the_data() -> None:
    assert run_real(read_to_eof, bye_server) == run_simulated(read_to_eof, bye_server) == [b"bye", b""]


async def deaf_server(port: int) -> None:
    # Takes the connection, reads nothing, closes it after a while: a reset.
    class Deaf(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.pause_reading()  # type: ignore[attr-defined]
            asyncio.get_running_loop().call_later(0.2, transport.close)

    server = await asyncio.get_running_loop().create_server(Deaf, None if port == 7 else "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def write_then_read(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"unread")
    try:
        return await reader.read(100)
    except OSError as exc:
        return outcome_of(exc)
    finally:
        writer.close()


def test_reset_when_the_peer_closes_with_data_unread() -> None:
    assert run_real(write_then_read, deaf_server) == run_simulated(write_then_read, deaf_server)
    assert run_simulated(write_then_read, deaf_server) == ("ConnectionResetError", 104)


async def bind_twice(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    address = "127.0.0.1"
    first = await loop.create_server(asyncio.Protocol, address, port)
    try:
        await loop.create_server(asyncio.Protocol, address, port)
    except OSError as exc:
        return outcome_of(exc), str(exc).replace(f", {port})", ", PORT)")
    finally:
        first.close()
        await first.wait_closed()
    return "bound"


def test_binding_a_taken_port() -> None:
    real = run_real(bind_twice)
    assert real[0] == ("OSError", 98)
    assert run_simulated(bind_twice) == real


# -- process death: a child process killed with SIGKILL, against Simulation.crash --------

#: The real server: accepts one connection, reads what it was told to (or nothing),
#: says so on stdout, and sleeps until it is killed.
CHILD = textwrap.dedent(
    """
    import socket, sys, time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    if sys.argv[1] == "read":
        conn.recv(100)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def run_killed(client: Scenario, mode: str) -> Any:
    async def main() -> Any:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, mode, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        try:
            port = int(await proc.stdout.readline())

            async def kill() -> None:
                assert proc.stdout is not None
                assert await proc.stdout.readline() == b"ready\n"
                proc.kill()
                await proc.wait()

            return await client("127.0.0.1", port, kill)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    return looplet.run(main())


def crash_server(mode: str) -> Callable[[int], Awaitable[None]]:
    async def server(port: int) -> None:
        class Server(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if mode != "read":
                    transport.pause_reading()  # type: ignore[attr-defined]

        srv = await asyncio.get_running_loop().create_server(Server, None, port)
        await srv.serve_forever()

    return server


def run_crashed(client: Scenario, mode: str) -> Any:
    sim = Simulation()
    sim.host("server", lambda: crash_server(mode)(7))

    async def kill() -> None:
        await asyncio.sleep(1)
        sim.crash("server")

    sim.client("client", lambda: client("server", 7, kill))
    return sim.run()["client"]


async def write_kill_read(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"hello")
    await writer.drain()
    await kill()
    try:
        return await reader.read(100)
    except OSError as exc:
        return outcome_of(exc)
    finally:
        writer.close()


def test_process_death_after_reading_everything_is_eof() -> None:
    assert run_killed(write_kill_read, "read") == run_crashed(write_kill_read, "read") == b""


def test_process_death_with_data_unread_is_a_reset() -> None:
    assert run_killed(write_kill_read, "deaf") == run_crashed(write_kill_read, "deaf") == ("ConnectionResetError", 104)


async def connect_after_death(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    _reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"hello")
    await kill()
    writer.close()
    try:
        await asyncio.open_connection(host, port)
    except OSError as exc:
        return outcome_of(exc)
    return "connected"


def test_connecting_to_a_dead_process_is_refused() -> None:
    assert run_killed(connect_after_death, "read") == run_crashed(connect_after_death, "read")
    assert run_crashed(connect_after_death, "read") == ("ConnectionRefusedError", 111)


async def datagram_to_nobody(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.error: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

        def error_received(self, exc: Exception) -> None:
            if not self.error.done():
                self.error.set_result(exc)

    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
    transport.sendto(b"anyone?")
    try:
        return outcome_of(await asyncio.wait_for(protocol.error, 5))
    finally:
        transport.close()


def test_a_datagram_to_a_closed_port_is_refused() -> None:
    assert run_real(datagram_to_nobody) == run_simulated(datagram_to_nobody) == ("ConnectionRefusedError", 111)


async def hang_up_server(port: int) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, None if port == 7 else "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def write_after_eof(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    reader, writer = await asyncio.open_connection(host, port)
    outcome: list[Any] = [await reader.read()]
    writer.write(b"too late")
    # The peer answers with a reset, which arrives when it arrives: keep writing until
    # a write fails (a bound, not a guess: 30 s of loopback, 3000 s simulated).
    for _ in range(3000):
        await asyncio.sleep(0.01 if host == "127.0.0.1" else 1.0)
        try:
            writer.write(b"again")
            await writer.drain()
        except OSError as exc:
            outcome.append(type(exc).__name__)
            break
    writer.close()
    return outcome


def test_writing_to_a_peer_that_closed_is_reset() -> None:
    assert run_real(write_after_eof, hang_up_server) == run_simulated(write_after_eof, hang_up_server)
    assert run_simulated(write_after_eof, hang_up_server) == [b"", "ConnectionResetError"]


BIG = bytes(range(256)) * 1200  # 300 kB: more than a StreamReader holds before it pauses reading


async def big_then_reset_server(port: int) -> None:
    class Talker(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()  # what the client sends stays unread: close() resets
            transport.write(BIG)
            asyncio.get_running_loop().call_later(0.2, transport.close)

    server = await asyncio.get_running_loop().create_server(Talker, None if port == 7 else "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def slow_reader(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"never read")
    await asyncio.sleep(1)
    outcome: list[Any] = [await reader.readexactly(len(BIG)) == BIG]
    try:
        outcome.append(await reader.read(100))
    except OSError as exc:
        outcome.append(outcome_of(exc))
    writer.close()
    return outcome


def test_a_paused_reader_reads_everything_sent_before_a_reset_then_the_reset() -> None:
    expected = [True, ("ConnectionResetError", 104)]
    assert run_real(slow_reader, big_then_reset_server) == run_simulated(slow_reader, big_then_reset_server) == expected


# -- the low-level socket API: the same sock_* program on real sockets and simulated ones --


def nonblocking(kind: int = socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setblocking(False)
    return sock


def sock_server(handle: Callable[[socket.socket], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
    """A server written against the low-level API: bind, listen, sock_accept, a task per connection."""

    async def server(port: int) -> None:
        loop = asyncio.get_running_loop()
        listener = nonblocking()
        listener.bind(("" if port == 7 else "127.0.0.1", port))
        listener.listen()
        tasks: set[asyncio.Task[None]] = set()
        with listener:
            while True:
                conn, _ = await loop.sock_accept(listener)
                task = asyncio.create_task(handle(conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    return server


async def sock_echo(conn: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    with conn:
        while data := await loop.sock_recv(conn, 1000):
            await loop.sock_sendall(conn, data)


async def sock_deaf(conn: socket.socket) -> None:
    # Reads nothing and closes after a while: what the client sent is unread, a reset.
    await asyncio.sleep(0.2)
    conn.close()


async def sock_hang_up(conn: socket.socket) -> None:
    conn.close()


async def sock_refused(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    with nonblocking() as sock:
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError as exc:
            return outcome_of(exc)
    return "connected"


def test_sock_connect_to_a_closed_port_is_refused() -> None:
    assert run_real(sock_refused) == run_simulated(sock_refused) == ("ConnectionRefusedError", 111)


async def sock_echo_to_eof(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    sock = nonblocking()
    await loop.sock_connect(sock, (host, port))
    payload = bytes(range(256)) * 40
    await loop.sock_sendall(sock, payload)
    sock.shutdown(socket.SHUT_WR)
    got = bytearray()
    buf = bytearray(4096)
    while n := await loop.sock_recv_into(sock, buf):
        got += buf[:n]
    outcome = [bytes(got) == payload, await loop.sock_recv(sock, 10), await loop.sock_recv_into(sock, buf)]
    sock.close()
    return outcome


def test_sock_calls_echo_and_see_eof() -> None:
    server = sock_server(sock_echo)
    assert run_real(sock_echo_to_eof, server) == run_simulated(sock_echo_to_eof, server) == [True, b"", 0]


async def sock_write_then_read(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    sock = nonblocking()
    await loop.sock_connect(sock, (host, port))
    await loop.sock_sendall(sock, b"unread")
    outcome: list[Any] = []
    for _ in range(2):
        try:
            outcome.append(await loop.sock_recv(sock, 100))
        except OSError as exc:
            outcome.append(outcome_of(exc))
    try:
        await loop.sock_sendall(sock, b"more")
    except OSError as exc:
        outcome.append(outcome_of(exc))
    sock.close()
    return outcome


def test_sock_recv_raises_a_reset_once_then_reads_eof_and_writes_fail() -> None:
    server = sock_server(sock_deaf)
    expected = [("ConnectionResetError", 104), b"", ("BrokenPipeError", 32)]
    assert run_real(sock_write_then_read, server) == run_simulated(sock_write_then_read, server) == expected


async def sock_write_after_eof(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    sock = nonblocking()
    await loop.sock_connect(sock, (host, port))
    outcome: list[Any] = [await loop.sock_recv(sock, 100)]
    await loop.sock_sendall(sock, b"too late")
    # The peer answers with a reset, which arrives when it arrives: write until a
    # write fails (a bound, not a guess: 30 s of loopback, 3000 s simulated).
    for _ in range(3000):
        await asyncio.sleep(0.01 if host == "127.0.0.1" else 1.0)
        try:
            await loop.sock_sendall(sock, b"again")
        except OSError as exc:
            outcome.append(outcome_of(exc))
            break
    outcome.append(await loop.sock_recv(sock, 100))
    sock.close()
    return outcome


def test_sock_writing_to_a_peer_that_closed_fails_once_its_reset_arrives() -> None:
    server = sock_server(sock_hang_up)
    # EPIPE, not ECONNRESET: Linux reports a reset that follows the peer's FIN so.
    expected = [b"", ("BrokenPipeError", 32), b""]
    assert run_real(sock_write_after_eof, server) == run_simulated(sock_write_after_eof, server) == expected


async def sock_datagram_to_nobody(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    with nonblocking(socket.SOCK_DGRAM) as sock:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, b"anyone?")
        try:
            await asyncio.wait_for(loop.sock_recv(sock, 100), 5)
        except OSError as exc:
            return outcome_of(exc)
    return "answered"


def test_sock_a_connected_datagram_socket_hears_the_port_is_closed() -> None:
    assert (
        run_real(sock_datagram_to_nobody) == run_simulated(sock_datagram_to_nobody) == ("ConnectionRefusedError", 111)
    )


async def udp_sock_echo_server(port: int) -> None:
    loop = asyncio.get_running_loop()
    with nonblocking(socket.SOCK_DGRAM) as sock:
        sock.bind(("" if port == 7 else "127.0.0.1", port))
        while True:
            data, source = await loop.sock_recvfrom(sock, 100)
            await loop.sock_sendto(sock, data.upper(), source)


async def sock_datagrams(host: str, port: int, kill: Callable[[], Awaitable[None]]) -> Any:
    loop = asyncio.get_running_loop()
    with nonblocking(socket.SOCK_DGRAM) as sock:
        address = (host, port) if host == "127.0.0.1" else ("10.0.0.1", port)
        outcome: list[Any] = []
        for message in (b"one", b"two"):
            # Loopback loses nothing, and nor does the simulation unless told.
            await loop.sock_sendto(sock, message, address)
            data, source = await loop.sock_recvfrom(sock, 100)
            outcome.append((data, source == address))
        await loop.sock_sendto(sock, b"longer than four", address)
        buf = bytearray(4)
        outcome.append((await loop.sock_recvfrom_into(sock, buf))[0])
        outcome.append(bytes(buf))
    return outcome


def test_sock_datagrams_cross_whole_and_a_short_buffer_cuts_them() -> None:
    server = udp_sock_echo_server
    expected = [(b"ONE", True), (b"TWO", True), 4, b"LONG"]
    assert run_real(sock_datagrams, server, bound) == run_simulated(sock_datagrams, server) == expected
