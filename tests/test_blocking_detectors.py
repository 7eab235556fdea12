"""Blocking-call detectors: a program blockbuster passes on asyncio passes on looplet.

blockbuster (used by aiohttp's and anyio's own test suites) replaces the blocking
functions of os, io, socket, threading, ... with checks that raise `BlockingError` when
called on a thread whose loop is running, except where asyncio itself makes such a
call: those it allows by asyncio's file and function names (Popen's read of the
exec-status pipe inside `subprocess_exec`, `os.sendfile` inside `sendfile`, the stat
and unlink of a Unix server's socket file). Each test runs one of those operations
with blockbuster watching every module, the strictest configuration (the projects
watch their own package, which is on the stack whenever they call the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from pathlib import Path

import pytest

blockbuster = pytest.importorskip("blockbuster")

PAYLOAD = bytes(range(256)) * 1024


@contextlib.contextmanager
def detector() -> Iterator[None]:
    """blockbuster active over every module for the body (the loop runs inside)."""
    with blockbuster.blockbuster_ctx():
        yield


def test_the_detector_is_on(loop: asyncio.AbstractEventLoop) -> None:
    # The tests below would pass with a detector that detects nothing.
    async def main() -> None:
        with open(os.devnull, "rb") as f:
            f.read()

    with detector(), pytest.raises(blockbuster.BlockingError):
        loop.run_until_complete(main())


@pytest.mark.parametrize("how", ["exec", "shell"])
def test_subprocess(loop: asyncio.AbstractEventLoop, how: str) -> None:
    async def main() -> tuple[bytes, int]:
        if how == "exec":
            proc = await asyncio.create_subprocess_exec(sys.executable, "-S", "-c", "print('hi')", stdout=PIPE)
        else:
            proc = await asyncio.create_subprocess_shell("echo hi", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, await proc.wait()

    with detector():
        assert loop.run_until_complete(main()) == (b"hi\n", 0)


def test_sendfile_over_tcp_zero_copy(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    calls: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)  # under blockbuster's check, which wraps it

    class Collect(asyncio.Protocol):
        def __init__(self) -> None:
            self.data = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            self.data += data

        def connection_lost(self, exc: Exception | None) -> None:
            self.done.set_result(bytes(self.data))

    async def main(f: object) -> tuple[int, bytes]:
        receiver: asyncio.Future[Collect] = loop.create_future()

        def factory() -> Collect:
            proto = Collect()
            receiver.set_result(proto)
            return proto

        server = await loop.create_server(factory, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            sent = await loop.sendfile(transport, f)
            transport.close()
            return sent, await (await receiver).done
        finally:
            server.close()
            await server.wait_closed()

    with path.open("rb") as f, detector():
        assert loop.run_until_complete(main(f)) == (len(PAYLOAD), PAYLOAD)
    assert calls  # the zero-copy path, not the fallback


def test_sock_sendfile_zero_copy(
    loop: asyncio.AbstractEventLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More than a socket buffer holds: the transfer waits for writability at least once.
    payload = PAYLOAD * 16
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    calls: list[int] = []
    real = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)

    async def main(f: object) -> tuple[int, bytes, int]:
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)

            async def receive() -> bytes:
                data = bytearray()
                while len(data) < len(payload):
                    data += await loop.sock_recv(b, 65536)
                return bytes(data)

            reader = asyncio.ensure_future(receive(), loop=loop)
            sent = await loop.sock_sendfile(a, f)
            return sent, await reader, f.tell()  # type: ignore[attr-defined]

    with path.open("rb") as f, detector():
        assert loop.run_until_complete(main(f)) == (len(payload), payload, len(payload))
    assert calls  # the zero-copy path, not the fallback


def test_unix_server_create_and_close(loop: asyncio.AbstractEventLoop) -> None:
    async def main(path: str) -> None:
        server = await loop.create_unix_server(asyncio.Protocol, path)
        server.close()
        await server.wait_closed()

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sock")
        with detector():
            loop.run_until_complete(main(path))
        # 3.13+ removes the socket file at close; before, it stays.
        assert os.path.exists(path) is (sys.version_info < (3, 13))
