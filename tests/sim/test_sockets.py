"""The low-level socket API on the simulated network (looplet/sim/lowlevel.py).

A program's own `socket.socket` objects, bound, listening, connected with
`loop.sock_connect` and carried with `sock_sendall`/`sock_recv`/`sock_accept`/
`sock_sendto`/`sock_recvfrom`, run on the simulated network: no real port is bound,
no real fd is held, two hosts can listen on one port, and what the program sees
follows a non-blocking Linux socket (tests/sim/test_parity.py checks it against real
loopback). What has no simulated meaning is refused by name.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from looplet.sim import NotSimulatedError, Simulation


def nonblocking(kind: int = socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setblocking(False)
    return sock


def listening(port: int) -> socket.socket:
    sock = nonblocking()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", port))
    sock.listen()
    return sock


async def upper_server() -> None:
    loop = asyncio.get_running_loop()

    async def handle(conn: socket.socket) -> None:
        with conn:
            while data := await loop.sock_recv(conn, 1000):
                await loop.sock_sendall(conn, data.upper())

    tasks = set()
    with listening(7) as listener:
        while True:
            conn, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(handle(conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def run(client: Callable[[], Any], **hosts: Callable[[], Any]) -> Any:
    sim = Simulation(latency=0.01)
    for name, main in hosts.items():
        sim.host(name, main)
    sim.client("client", client)
    return sim.run()["client"]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_client_talks_to_a_server_with_sock_calls_only() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        answers: list[Any] = [
            isinstance(sock, socket.socket),
            sock.fileno(),
            sock.getsockname(),
            sock.getpeername(),
            sock.type,
            sock.family,
        ]
        await loop.sock_sendall(sock, b"hello")
        answers.append(await loop.sock_recv(sock, 100))
        answers.append(loop.time())
        sock.shutdown(socket.SHUT_WR)
        answers.append(await loop.sock_recv(sock, 100))
        sock.close()
        answers.append(repr(sock))
        return answers

    before = open_fds()
    assert run(client, server=upper_server) == [
        True,
        -1,
        ("10.0.0.2", 49152),
        ("10.0.0.1", 7),
        socket.SOCK_STREAM,
        socket.AF_INET,
        b"HELLO",
        0.04,  # a round trip to connect, one for the request and reply
        b"",
        "<simulated socket.socket family=AF_INET, type=SOCK_STREAM [closed]>",
    ]
    assert open_fds() <= before


def test_an_accepted_socket_knows_both_ends_and_is_non_blocking() -> None:
    async def server() -> None:
        loop = asyncio.get_running_loop()
        listener = listening(7)
        conn, address = await loop.sock_accept(listener)
        info = [address, conn.getsockname(), conn.getpeername(), conn.gettimeout(), conn.fileno()]
        await loop.sock_sendall(conn, repr(info).encode())
        conn.close()
        listener.close()

    async def client() -> bytes:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        data = await loop.sock_recv(sock, 1000)
        sock.close()
        return data

    expected = repr([("10.0.0.2", 49152), ("10.0.0.1", 7), ("10.0.0.2", 49152), 0.0, -1]).encode()
    assert run(client, server=server) == expected


def test_two_hosts_bind_one_port_and_port_0_is_a_simulated_ephemeral_port() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        any_port = listening(0)
        answers = [any_port.getsockname()]
        any_port.close()
        for name in ("one", "two"):
            sock = nonblocking()
            await loop.sock_connect(sock, (name, 7))
            await loop.sock_sendall(sock, name.encode())
            answers.append(await loop.sock_recv(sock, 100))
            sock.close()
        return answers

    assert run(client, one=upper_server, two=upper_server) == [("0.0.0.0", 49152), b"ONE", b"TWO"]


def test_a_host_binds_its_name_or_address_but_not_another_hosts() -> None:
    async def client() -> list[Any]:
        answers = []
        for address in (("client", 0), ("10.0.0.2", 0), ("127.0.0.1", 0), ("server", 0)):
            sock = nonblocking()
            try:
                sock.bind(address)
                answers.append(sock.getsockname()[0])
            except OSError as exc:
                answers.append(errno.errorcode[exc.errno or 0])
            sock.close()
        return answers

    assert run(client, server=upper_server) == ["10.0.0.2", "10.0.0.2", "127.0.0.1", "EADDRNOTAVAIL"]


def test_binding_a_taken_port_fails_as_bind_does() -> None:
    async def client() -> str:
        first = listening(8)
        second = nonblocking()
        try:
            second.bind(("", 8))
        except OSError as exc:
            return errno.errorcode[exc.errno or 0]
        finally:
            first.close()
            second.close()
        return "bound"

    assert run(client) == "EADDRINUSE"


def test_a_bound_client_socket_connects_from_its_port() -> None:
    async def client() -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        sock.bind(("", 5000))
        await loop.sock_connect(sock, ("server", 7))
        names = sock.getsockname(), sock.getpeername()
        sock.close()
        return names

    assert run(client, server=upper_server) == (("10.0.0.2", 5000), ("10.0.0.1", 7))


def test_closing_a_socket_reaches_the_peer_as_eof_or_a_reset() -> None:
    async def server() -> None:
        loop = asyncio.get_running_loop()
        listener = listening(7)
        polite, _ = await loop.sock_accept(listener)
        await loop.sock_sendall(polite, b"bye")
        polite.close()  # everything it got was read: a FIN
        rude, _ = await loop.sock_accept(listener)
        await asyncio.sleep(1)
        rude.close()  # what the client sent is unread: a reset

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        first = nonblocking()
        await loop.sock_connect(first, ("server", 7))
        answers: list[Any] = [await loop.sock_recv(first, 100), await loop.sock_recv(first, 100)]
        first.close()
        second = nonblocking()
        await loop.sock_connect(second, ("server", 7))
        await loop.sock_sendall(second, b"ignored")
        with pytest.raises(ConnectionResetError):
            await loop.sock_recv(second, 100)
        answers.append(await loop.sock_recv(second, 100))
        with pytest.raises(BrokenPipeError):
            await loop.sock_sendall(second, b"more")
        second.close()
        return answers

    assert run(client, server=server) == [b"bye", b"", b""]


def test_sock_sendall_waits_for_a_slow_reader_and_everything_arrives_in_order() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: eight windows

    async def server() -> None:
        loop = asyncio.get_running_loop()
        listener = listening(7)
        conn, _ = await loop.sock_accept(listener)
        got = bytearray()
        buf = bytearray(65536)
        while n := await loop.sock_recv_into(conn, buf):
            got += buf[:n]
            await asyncio.sleep(0.1)
        await loop.sock_sendall(conn, b"ok" if got == payload else b"corrupt")
        conn.close()

    async def client() -> tuple[bytes, bool]:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        start = loop.time()
        await loop.sock_sendall(sock, payload)
        # It returned once the simulated kernel held the rest: not at once, as the
        # reader takes 0.1 s a read, and not after everything was read.
        waited = loop.time() - start
        sock.shutdown(socket.SHUT_WR)
        answer = await loop.sock_recv(sock, 10)
        sock.close()
        return answer, 0.5 < waited < 1.6

    assert run(client, server=server) == (b"ok", True)


def test_socket_methods_act_as_on_a_non_blocking_socket() -> None:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        with pytest.raises(BlockingIOError):
            sock.recv(10)
        answers: list[Any] = [sock.send(b"abc")]
        await asyncio.sleep(0.1)
        buf = bytearray(2)
        answers += [sock.recv_into(buf), bytes(buf), sock.recv(10)]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        answers.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        sock.setblocking(True)
        with pytest.raises(NotSimulatedError, match=r"socket\.recv\(\) .* use loop\.sock_recv\(\)"):
            sock.recv(10)
        sock.close()
        with pytest.raises(OSError) as info:
            sock.send(b"x")
        answers.append(errno.errorcode[info.value.errno or 0])
        return answers

    assert run(client, server=upper_server) == [3, 2, b"AB", b"C", 1, "EBADF"]


def test_datagrams_with_sock_calls_and_with_the_socket_itself() -> None:
    async def server() -> None:
        loop = asyncio.get_running_loop()
        sock = nonblocking(socket.SOCK_DGRAM)
        sock.bind(("", 53))
        while True:
            data, source = await loop.sock_recvfrom(sock, 100)
            sock.sendto(data[::-1], source)  # the socket's own sendto, simulated too

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        sock = nonblocking(socket.SOCK_DGRAM)
        await loop.sock_sendto(sock, b"abc", ("server", 53))
        answers: list[Any] = [sock.getsockname(), await loop.sock_recvfrom(sock, 100)]
        sock.sendto(b"xyz", ("server", 53))
        buf = bytearray(2)
        answers.append(await loop.sock_recvfrom_into(sock, buf))
        answers.append(bytes(buf))
        with pytest.raises(BlockingIOError):
            sock.recvfrom(10)
        sock.close()
        connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        connected.setblocking(False)
        connected.connect(("server", 53))
        answers.append(connected.getpeername())
        await loop.sock_sendall(connected, b"hi")
        answers.append(await loop.sock_recv(connected, 10))
        connected.close()
        return answers

    assert run(client, server=server) == [
        ("0.0.0.0", 49152),
        (b"cba", ("10.0.0.1", 53)),
        (2, ("10.0.0.1", 53)),
        b"zy",
        ("10.0.0.1", 53),
        b"ih",
    ]


def test_simulated_sockets_go_to_the_loops_create_calls() -> None:
    async def server() -> None:
        loop = asyncio.get_running_loop()

        class Upper(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                self.transport.write(data.upper())  # type: ignore[attr-defined]

        srv = await loop.create_server(Upper, sock=listening(7))
        accepted = listening(8)
        conn, _ = await loop.sock_accept(accepted)
        await loop.connect_accepted_socket(Upper, conn)
        udp = nonblocking(socket.SOCK_DGRAM)
        udp.bind(("", 9))

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(data, addr)  # type: ignore[attr-defined]

        await loop.create_datagram_endpoint(Echo, sock=udp)
        await srv.serve_forever()

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        answers = []
        for port in (7, 8):
            reader, writer = await asyncio.open_connection("server", port)
            writer.write(b"abc")
            answers.append(await reader.readexactly(3))
            writer.close()
        sock = nonblocking(socket.SOCK_DGRAM)
        await loop.sock_sendto(sock, b"ping", ("server", 9))
        answers.append((await loop.sock_recvfrom(sock, 10))[0])
        sock.close()
        return answers

    assert run(client, server=server) == [b"ABC", b"ABC", b"ping"]


def test_a_crash_closes_the_crashed_hosts_sockets() -> None:
    sim = Simulation(latency=0.01)

    async def server() -> None:
        loop = asyncio.get_running_loop()
        listener = listening(7)
        while True:
            conn, _ = await loop.sock_accept(listener)
            await loop.sock_recv(conn, 100)  # reads the request, then waits forever
            await asyncio.Future()

    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        await loop.sock_sendall(sock, b"request")
        await asyncio.sleep(1)
        sim.crash("server")
        answers: list[Any] = [await loop.sock_recv(sock, 100)]
        sock.close()
        again = nonblocking()
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(again, ("server", 7))
        again.close()
        return answers

    sim.host("server", server)
    sim.client("client", client)
    assert sim.run()["client"] == [b""]


def test_nothing_is_left_behind_by_sockets_the_program_forgot() -> None:
    kept: list[socket.socket] = []

    async def server() -> None:
        loop = asyncio.get_running_loop()
        listener = listening(7)
        kept.append(listener)
        conn, _ = await loop.sock_accept(listener)
        kept.append(conn)
        await loop.sock_recv(conn, 100)  # waits when the simulation ends

    async def client() -> None:
        loop = asyncio.get_running_loop()
        sock = nonblocking()
        kept.append(sock)
        await loop.sock_connect(sock, ("server", 7))
        await asyncio.sleep(1)

    before = open_fds()
    sim = Simulation()
    sim.host("server", server)
    sim.client("client", client)
    sim.run()
    assert open_fds() <= before
    from looplet.sim.lowlevel import state_of

    states = [state_of(sock) for sock in kept]
    assert all(state is not None and not state._waiters for state in states)
    # The process's end closed every endpoint, as a kernel closes a dead process's sockets.
    assert [state.stream.app_closed if state and state.stream else None for state in states] == [None, True, True]
    assert states[0] is not None and states[0].listener is not None and states[0].listener.closed


def test_what_has_no_simulated_meaning_is_refused_by_name() -> None:
    async def client() -> list[str]:
        loop = asyncio.get_running_loop()
        messages = []
        sock = nonblocking()
        await loop.sock_connect(sock, ("server", 7))
        for name, call in [
            ("socket.detach()", sock.detach),
            ("socket.dup()", sock.dup),
            ("socket.makefile()", sock.makefile),
            ("socket.sendmsg()", lambda: sock.sendmsg([b"x"])),
            ("socket.recvmsg()", lambda: sock.recvmsg(1)),
            ("socket.send()", lambda: sock.send(b"x", socket.MSG_OOB)),
        ]:
            with pytest.raises(NotSimulatedError) as info:
                call()
            assert str(info.value).startswith(f"{name} is not available in a simulation: ")
            messages.append(name)
        sock.close()
        blocking = socket.socket()
        with pytest.raises(NotSimulatedError, match=r"socket\.connect\(\) of a TCP socket .* loop\.sock_connect"):
            blocking.connect(("server", 7))
        blocking.close()
        ipv6 = socket.socket(socket.AF_INET6)
        ipv6.setblocking(False)
        with pytest.raises(NotSimulatedError, match=r"loop\.sock_connect\(\) .* AF_INET6"):
            await loop.sock_connect(ipv6, ("server", 7))
        ipv6.close()
        with nonblocking() as fresh, pytest.raises(NotSimulatedError, match=r"loop\.sock_sendfile\(\)"):
            await loop.sock_sendfile(fresh, None)  # type: ignore[arg-type]
        return messages

    assert len(run(client, server=upper_server)) == 6


def test_a_socket_bound_outside_the_simulation_is_refused() -> None:
    outside = socket.socket()
    outside.bind(("127.0.0.1", 0))
    outside.setblocking(False)

    async def client() -> str:
        with pytest.raises(NotSimulatedError) as info:
            await asyncio.get_running_loop().sock_accept(outside)
        return str(info.value)

    try:
        message = run(client)
    finally:
        outside.close()
    assert message.startswith("loop.sock_accept() is not available in a simulation: the socket was bound")


def test_sockets_outside_every_host_are_left_alone() -> None:
    # The test's own code around the run binds for real, before and after.
    for _ in range(2):
        with socket.socket() as real:
            real.bind(("127.0.0.1", 0))
            assert real.fileno() != -1 and real.getsockname()[1] != 0
        if not _:
            run(lambda: asyncio.sleep(0))
