"""sendfile (looplet/endpoints/sendfile.py): sock_sendfile on a socket, loop.sendfile on a transport.

Every test runs on asyncio and on looplet through the `loop` fixture. sock_sendfile:
whole files, offset and count, the file position afterwards, empty files, the fallback
for objects that are not regular files (and SendfileNotAvailableError without it), and
argument errors. loop.sendfile: over plain TCP (zero-copy) and over TLS (the
fallback), a file object with no fd (the fallback), and the argument checks, with
asyncio's exception types and messages. Also the bad-input cases of both
(tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
import tempfile
from asyncio import constants
from pathlib import Path
from typing import Any

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import Collect, FakeTransport, Proto, raises

# -- sock_sendfile -----------------------------------------------------------------------


async def recv_until_eof(loop, sock):
    chunks = []
    while data := await loop.sock_recv(sock, 65536):
        chunks.append(data)
    return b"".join(chunks)


CONTENT = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes


@pytest.fixture
def datafile():
    with tempfile.TemporaryFile() as f:
        f.write(CONTENT)
        f.flush()
        f.seek(0)
        yield f


def sendfile_and_receive(loop, sock, peer, file, *args, **kwargs):
    async def main():
        reader = loop.create_task(recv_until_eof(loop, peer))
        try:
            sent = await loop.sock_sendfile(sock, file, *args, **kwargs)
        finally:
            sock.shutdown(socket.SHUT_WR)
        return sent, await reader

    return loop.run_until_complete(main())


def test_sock_sendfile_regular_file(loop, socketpair, datafile):
    a, b = socketpair
    sent, received = sendfile_and_receive(loop, a, b, datafile)
    assert sent == len(CONTENT)
    assert received == CONTENT
    assert datafile.tell() == len(CONTENT)


def test_sock_sendfile_over_tcp(loop, tcp_listener, tcp_client, datafile):
    loop.run_until_complete(loop.sock_connect(tcp_client, tcp_listener.getsockname()))
    conn, _ = loop.run_until_complete(loop.sock_accept(tcp_listener))
    with conn:
        sent, received = sendfile_and_receive(loop, tcp_client, conn, datafile)
    assert sent == len(CONTENT)
    assert received == CONTENT


def test_sock_sendfile_offset_and_count(loop, socketpair, datafile):
    a, b = socketpair
    sent, received = sendfile_and_receive(loop, a, b, datafile, 1000, 70000)
    assert sent == 70000
    assert received == CONTENT[1000:71000]
    assert datafile.tell() == 71000


def test_sock_sendfile_offset_only(loop, socketpair, datafile):
    a, b = socketpair
    offset = len(CONTENT) - 5000
    sent, received = sendfile_and_receive(loop, a, b, datafile, offset=offset)
    assert sent == 5000
    assert received == CONTENT[offset:]
    assert datafile.tell() == len(CONTENT)


def test_sock_sendfile_count_past_the_end(loop, socketpair, datafile):
    a, b = socketpair
    offset = len(CONTENT) - 10
    sent, received = sendfile_and_receive(loop, a, b, datafile, offset, 1000)
    assert sent == 10
    assert received == CONTENT[offset:]
    assert datafile.tell() == len(CONTENT)


def test_sock_sendfile_empty_file(loop, socketpair):
    a, b = socketpair
    with tempfile.TemporaryFile() as empty:
        sent, received = sendfile_and_receive(loop, a, b, empty)
        assert empty.tell() == 0
    assert (sent, received) == (0, b"")


def test_sock_sendfile_fallback_for_non_regular_file(loop, socketpair):
    a, b = socketpair
    buffer = io.BytesIO(CONTENT)
    sent, received = sendfile_and_receive(loop, a, b, buffer, 10, 300000)
    assert sent == 300000
    assert received == CONTENT[10:300010]
    assert buffer.tell() == 300010


def test_sock_sendfile_no_fallback_for_non_regular_file(loop, socketpair):
    a, _ = socketpair
    buffer = io.BytesIO(CONTENT)
    with pytest.raises(asyncio.SendfileNotAvailableError, match=r"not a regular file"):
        loop.run_until_complete(loop.sock_sendfile(a, buffer, fallback=False))
    assert issubclass(asyncio.SendfileNotAvailableError, RuntimeError)
    assert buffer.tell() == 0


def test_sock_sendfile_text_file_is_value_error(loop, socketpair, tmp_path):
    a, _ = socketpair
    path = tmp_path / "text.txt"
    path.write_text("text")
    with path.open() as f, pytest.raises(ValueError, match=r"^file should be opened in binary mode$"):
        loop.run_until_complete(loop.sock_sendfile(a, f))


def test_sock_sendfile_datagram_socket_is_value_error(loop, udp_pair, datafile):
    a, _ = udp_pair
    with pytest.raises(ValueError, match=r"^only SOCK_STREAM type sockets are supported$"):
        loop.run_until_complete(loop.sock_sendfile(a, datafile))


@pytest.mark.parametrize(
    ("offset", "count", "error", "message"),
    [
        (0, 0, ValueError, r"^count must be a positive integer \(got 0\)$"),
        (0, -1, ValueError, r"^count must be a positive integer \(got -1\)$"),
        (0, "1", TypeError, r"^count must be a positive integer \(got '1'\)$"),
        (0, 1.0, TypeError, r"^count must be a positive integer \(got 1\.0\)$"),
        (-1, None, ValueError, r"^offset must be a non-negative integer \(got -1\)$"),
        ("0", None, TypeError, r"^offset must be a non-negative integer \(got '0'\)$"),
        (0.5, 10, TypeError, r"^offset must be a non-negative integer \(got 0\.5\)$"),
    ],
)
def test_sock_sendfile_bad_arguments(loop, socketpair, datafile, offset, count, error, message):
    a, _ = socketpair
    with pytest.raises(error, match=message):
        loop.run_until_complete(loop.sock_sendfile(a, datafile, offset, count))
    assert datafile.tell() == 0


# -- loop.sendfile over TCP and TLS ------------------------------------------------------


PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several sendfile calls


@pytest.fixture
def datapath(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    return path


async def _sendfile_to_server(datapath: Path, **ssl_args: Any) -> tuple[bytes, int]:
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
        with datapath.open("rb") as f:
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
    loop: asyncio.AbstractEventLoop, datapath: Path, os_sendfile_calls: list[int]
) -> None:
    data, sent = loop.run_until_complete(_sendfile_to_server(datapath))
    assert sent == len(PAYLOAD) - 1
    assert data == PAYLOAD[1:]
    assert os_sendfile_calls


def test_sendfile_over_tls_uses_the_fallback(
    loop: asyncio.AbstractEventLoop, datapath: Path, os_sendfile_calls: list[int]
) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    data, sent = loop.run_until_complete(_sendfile_to_server(datapath, server_ssl=server_ctx, ssl=client_ctx))
    assert sent == len(PAYLOAD) - 1
    assert data == PAYLOAD[1:]
    assert not os_sendfile_calls  # TLS has to see the bytes: read and write them


# -- loop.sendfile argument checks -------------------------------------------------------


def test_sendfile_closing_transport(loop, run):
    with raises(RuntimeError, "Transport is closing"), io.BytesIO(b"x") as file:
        run(loop.sendfile(FakeTransport(closing=True), file))


def test_sendfile_unsupported_transport(loop, run):
    transport = FakeTransport()
    with raises(RuntimeError, f"sendfile is not supported for transport {transport!r}"), io.BytesIO(b"x") as file:
        run(loop.sendfile(transport, file))


def test_sendfile_fallback_only_transport_without_fallback(loop, run):
    transport = FakeTransport(_sendfile_compatible=constants._SendfileMode.FALLBACK)
    message = f"fallback is disabled and native sendfile is not supported for transport {transport!r}"
    with raises(RuntimeError, message), io.BytesIO(b"x") as file:
        run(loop.sendfile(transport, file, fallback=False))


@pytest.fixture
def stream_pair(loop, run, socketpair):
    """(transport, peer socket): a Unix stream transport over one end of a socketpair."""
    mine, peer = socketpair
    transport, _ = run(loop.create_unix_connection(Proto, sock=mine.dup()))
    yield transport, peer
    transport.close()
    run(asyncio.sleep(0))


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        ({"offset": -1}, ValueError, "offset must be a non-negative integer (got -1)"),
        ({"offset": 1.5}, TypeError, "offset must be a non-negative integer (got 1.5)"),
        ({"count": 0}, ValueError, "count must be a positive integer (got 0)"),
        ({"count": "1"}, TypeError, "count must be a positive integer (got '1')"),
    ],
)
def test_sendfile_bad_arguments(loop, run, stream_pair, kwargs, exc_type, message):
    transport, _ = stream_pair
    with tempfile.TemporaryFile() as file, raises(exc_type, message):
        run(loop.sendfile(transport, file, **kwargs))


def test_sendfile_text_file(loop, run, stream_pair):
    transport, _ = stream_pair
    with tempfile.TemporaryFile("w+") as file, raises(ValueError, "file should be opened in binary mode"):
        run(loop.sendfile(transport, file))


def test_sendfile_not_a_regular_file_uses_the_fallback(loop, run, stream_pair):
    transport, peer = stream_pair
    data = os.urandom(100_000)

    async def read(n):
        received = bytearray()
        while len(received) < n:
            chunk = await loop.sock_recv(peer, 65536)
            if not chunk:
                break
            received.extend(chunk)
        return bytes(received)

    async def main():
        # A BytesIO has no fd: the native path declines, the fallback copies.
        reader = asyncio.ensure_future(read(50_000))
        with io.BytesIO(data) as file:
            sent = await loop.sendfile(transport, file, 10, 50_000)
            position = file.tell()
        return sent, position, await asyncio.wait_for(reader, 5)

    sent, position, received = run(main())
    assert (sent, position) == (50_000, 50_010)
    assert received == data[10:50_010]
