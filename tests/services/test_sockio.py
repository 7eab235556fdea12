"""Low-level socket operations (looplet/services/sockio.py): sock_recv ... sock_accept.

Covers sock_recv / sock_recv_into (data already there, data arriving later, EOF),
sock_sendall of several MiB to a peer that reads concurrently, sending to a closed
peer, UDP with sock_sendto / sock_recvfrom / sock_recvfrom_into, sock_connect (to a
listening loopback port, by name, to a refused port) and sock_accept, cancellation of
a waiting operation (its registration is dropped), and the socket checks (blocking
socket in debug mode, SSL sockets). Also the bad-input cases of each of them
(tests/bad_input.py). sock_sendfile is tested in tests/endpoints/test_sendfile.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import tempfile

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401


async def recv_exactly(loop, sock, n):
    """Read n bytes (or up to EOF) with sock_recv."""
    chunks = []
    received = 0
    while received < n:
        data = await loop.sock_recv(sock, min(65536, n - received))
        if not data:
            break
        chunks.append(data)
        received += len(data)
    return b"".join(chunks)


async def recv_until_eof(loop, sock):
    chunks = []
    while data := await loop.sock_recv(sock, 65536):
        chunks.append(data)
    return b"".join(chunks)


# -- stream sockets ----------------------------------------------------------------------


def test_sock_recv_data_already_there(loop, socketpair):
    a, b = socketpair
    b.send(b"ready")
    assert loop.run_until_complete(loop.sock_recv(a, 100)) == b"ready"


def test_sock_recv_waits_for_data(loop, socketpair):
    a, b = socketpair
    order = []

    async def main():
        async def reader():
            data = await loop.sock_recv(a, 100)
            order.append(("received", data))

        task = loop.create_task(reader())
        await asyncio.sleep(0)
        order.append("sending")
        await loop.sock_sendall(b, b"later")
        await task

    loop.run_until_complete(main())
    assert order == ["sending", ("received", b"later")]


def test_sock_recv_eof(loop, socketpair):
    a, b = socketpair
    loop.call_later(0.001, b.shutdown, socket.SHUT_WR)
    assert loop.run_until_complete(loop.sock_recv(a, 100)) == b""


def test_sock_recv_into(loop, socketpair):
    a, b = socketpair
    buf = bytearray(10)

    async def main():
        first = await loop.sock_recv_into(a, buf)
        return first, bytes(buf[:first])

    loop.call_later(0.001, b.send, b"into")
    assert loop.run_until_complete(main()) == (4, b"into")
    view = memoryview(buf)[2:5]
    b.send(b"abcdef")
    assert loop.run_until_complete(loop.sock_recv_into(a, view)) == 3
    assert bytes(buf[:5]) == b"inabc"


def test_sock_sendall_large_payload_with_concurrent_reader(loop, socketpair):
    a, b = socketpair
    payload = os.urandom(4 * 1024 * 1024 + 123)

    async def main():
        reader = loop.create_task(recv_exactly(loop, b, len(payload)))
        result = await loop.sock_sendall(a, payload)
        return result, await reader

    result, received = loop.run_until_complete(main())
    assert result is None
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_sock_sendall_bytes_like_objects(loop, socketpair):
    a, b = socketpair

    async def main():
        await loop.sock_sendall(a, bytearray(b"bytearray|"))
        await loop.sock_sendall(a, memoryview(b"xxmemoryview|")[2:])
        await loop.sock_sendall(a, b"")
        await loop.sock_sendall(a, b"bytes")
        a.shutdown(socket.SHUT_WR)
        return await recv_until_eof(loop, b)

    assert loop.run_until_complete(main()) == b"bytearray|memoryview|bytes"


def test_sock_sendall_to_closed_peer(loop):
    a, b = socket.socketpair()
    with a:
        a.setblocking(False)
        b.close()
        with pytest.raises(ConnectionError):
            loop.run_until_complete(loop.sock_sendall(a, b"x" * (8 * 1024 * 1024)))


def test_sock_connect_and_accept(loop, tcp_listener, tcp_client):
    address = tcp_listener.getsockname()

    async def main():
        accept = loop.create_task(loop.sock_accept(tcp_listener))
        await asyncio.sleep(0)
        assert not accept.done()
        result = await loop.sock_connect(tcp_client, address)
        conn, peer = await accept
        with conn:
            assert conn.gettimeout() == 0  # accepted sockets are non-blocking
            assert peer == tcp_client.getsockname()
            await loop.sock_sendall(tcp_client, b"over tcp")
            got = await recv_exactly(loop, conn, 8)
            await loop.sock_sendall(conn, b"reply")
            back = await recv_exactly(loop, tcp_client, 5)
        return result, got, back

    assert loop.run_until_complete(main()) == (None, b"over tcp", b"reply")


def test_sock_accept_connection_already_pending(loop, tcp_listener, tcp_client):
    loop.run_until_complete(loop.sock_connect(tcp_client, tcp_listener.getsockname()))
    conn, peer = loop.run_until_complete(loop.sock_accept(tcp_listener))
    with conn:
        assert peer == tcp_client.getsockname()


def test_sock_connect_by_name(loop, tcp_listener, tcp_client):
    port = tcp_listener.getsockname()[1]
    loop.run_until_complete(loop.sock_connect(tcp_client, ("localhost", port)))
    conn, _ = loop.run_until_complete(loop.sock_accept(tcp_listener))
    with conn:
        assert tcp_client.getpeername() == ("127.0.0.1", port)


def test_sock_connect_refused(loop, tcp_client):
    # A bound but not listening socket: its port refuses connections, and stays ours.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        with pytest.raises(ConnectionRefusedError):
            loop.run_until_complete(loop.sock_connect(tcp_client, closed_port.getsockname()))


def test_cancelled_sock_recv_drops_its_reader(loop, socketpair):
    a, b = socketpair

    async def main():
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # Nobody waits for a any more; the next sock_recv still works.
        removed = loop.remove_reader(a.fileno())
        b.send(b"after cancel")
        return removed, await loop.sock_recv(a, 100)

    assert loop.run_until_complete(main()) == (False, b"after cancel")


def test_cancelled_sock_sendall_drops_its_writer(loop, socketpair):
    a, _ = socketpair

    async def main():
        task = loop.create_task(loop.sock_sendall(a, b"x" * (16 * 1024 * 1024)))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()  # the peer reads nothing: the send is stuck
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return loop.remove_writer(a.fileno())

    assert loop.run_until_complete(main()) is False


@pytest.mark.parametrize("operation", ["sock_recv", "sock_sendall"])
def test_cancelled_sock_op_on_a_socket_closed_meanwhile(loop, operation):
    # Another task closes the socket while the operation waits; cancelling the waiter
    # then drops its registration without an error, and nothing of it is left behind
    # for the next owner of the fd number.
    async def main():
        a, b = socket.socketpair()
        with b:
            a.setblocking(False)
            if operation == "sock_recv":
                task = loop.create_task(loop.sock_recv(a, 100))
            else:
                task = loop.create_task(loop.sock_sendall(a, b"x" * (16 * 1024 * 1024)))
            for _ in range(3):
                await asyncio.sleep(0)
            assert not task.done()
            old_fd = a.fileno()
            a.close()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            c, d = socket.socketpair()
            with c, d:
                assert old_fd in (c.fileno(), d.fileno())
                c.setblocking(False)
                d.setblocking(False)
                d.send(b"new owner")
                assert await loop.sock_recv(c, 100) == b"new owner"
                await loop.sock_sendall(c, b"back")
                assert await loop.sock_recv(d, 100) == b"back"

    loop.run_until_complete(main())


# -- datagram sockets ---------------------------------------------------------------------


def test_sock_sendto_and_recvfrom(loop, udp_pair):
    a, b = udp_pair

    async def main():
        receiver = loop.create_task(loop.sock_recvfrom(b, 100))
        await asyncio.sleep(0)
        sent = await loop.sock_sendto(a, b"datagram", b.getsockname())
        return sent, await receiver

    sent, (data, addr) = loop.run_until_complete(main())
    assert sent == 8
    assert data == b"datagram"
    assert addr == a.getsockname()


def test_sock_recvfrom_into(loop, udp_pair):
    a, b = udp_pair
    buf = bytearray(64)

    async def main():
        await loop.sock_sendto(a, b"into buffer", b.getsockname())
        n, addr = await loop.sock_recvfrom_into(b, buf)
        await loop.sock_sendto(a, b"0123456789", b.getsockname())
        m, _ = await loop.sock_recvfrom_into(b, memoryview(buf)[20:], 4)
        return n, addr, m

    n, addr, m = loop.run_until_complete(main())
    assert (n, bytes(buf[:n]), addr) == (11, b"into buffer", a.getsockname())
    # nbytes limits the read: the rest of the datagram is discarded.
    assert (m, bytes(buf[20:24])) == (4, b"0123")


# -- socket checks ------------------------------------------------------------------------


def test_debug_blocking_socket_is_value_error(loop):
    loop.set_debug(True)
    a, b = socket.socketpair()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b, u, tempfile.TemporaryFile() as f:
        assert a.gettimeout() is None
        calls = [
            loop.sock_recv(a, 1),
            loop.sock_recv_into(a, bytearray(1)),
            loop.sock_recvfrom(u, 1),
            loop.sock_recvfrom_into(u, bytearray(1)),
            loop.sock_sendall(a, b"x"),
            loop.sock_sendto(u, b"x", ("127.0.0.1", 9)),
            loop.sock_connect(a, "nowhere"),
            loop.sock_accept(a),
            loop.sock_sendfile(a, f),
        ]
        for coro in calls:
            with pytest.raises(ValueError, match=r"^the socket must be non-blocking$"):
                loop.run_until_complete(coro)


def test_ssl_socket_is_type_error(loop):
    ctx = ssl.create_default_context()
    with ctx.wrap_socket(socket.socket(), server_hostname="example.invalid", do_handshake_on_connect=False) as s:
        s.setblocking(False)
        for coro in (loop.sock_recv(s, 1), loop.sock_sendall(s, b"x"), loop.sock_accept(s)):
            with pytest.raises(TypeError, match=r"^Socket cannot be of type SSLSocket$"):
                loop.run_until_complete(coro)
