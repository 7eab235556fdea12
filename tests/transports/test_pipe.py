"""Pipe transports on both loops: connect_read_pipe and connect_write_pipe over pipes,
FIFOs and ptys; EOF, flow control, a reader that goes away, bad pipe kinds.

Every test runs on asyncio and on looplet through the `loop` fixture (which also
checks that no fd is left open).

Also the bad-input cases of connect_read_pipe and connect_write_pipe (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
from typing import Any

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401


class Reader(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.events: list[str] = []
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


class Writer(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.events: list[str] = []
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def pipe_file(fd: int, mode: str) -> Any:
    """An unbuffered file object over `fd`, for a pipe transport to own and close."""
    return open(fd, mode, 0)


def report_into(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    return reports


def test_read_pipe_data_then_eof(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> Reader:
        rfd, wfd = os.pipe()
        pipe = pipe_file(rfd, "rb")
        transport, proto = await asyncio.get_running_loop().connect_read_pipe(Reader, pipe)
        assert transport.get_extra_info("pipe") is pipe
        assert transport.is_reading()
        os.write(wfd, b"hello ")
        os.write(wfd, b"pipe")
        os.close(wfd)
        assert await proto.lost is None
        assert transport.is_closing()
        return proto

    proto = loop.run_until_complete(main())
    assert bytes(proto.data) == b"hello pipe"
    assert proto.events == ["made", "eof", "lost"]


def test_read_pipe_pause_and_resume(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, bytes]:
        rfd, wfd = os.pipe()
        transport, proto = await asyncio.get_running_loop().connect_read_pipe(Reader, pipe_file(rfd, "rb"))
        transport.pause_reading()
        assert not transport.is_reading()
        os.write(wfd, b"held back")
        for _ in range(10):
            await asyncio.sleep(0)
        while_paused = bytes(proto.data)
        transport.resume_reading()
        os.close(wfd)
        await proto.lost
        return while_paused, bytes(proto.data)

    assert loop.run_until_complete(main()) == (b"", b"held back")


def test_read_pipe_on_a_fifo(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fifo")
        os.mkfifo(path)

        async def main() -> bytes:
            # O_NONBLOCK: opening a FIFO's read end alone would block until a writer comes.
            pipe = pipe_file(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")
            _, proto = await asyncio.get_running_loop().connect_read_pipe(Reader, pipe)
            wfd = os.open(path, os.O_WRONLY)
            os.write(wfd, b"through the fifo")
            os.close(wfd)
            await proto.lost
            return bytes(proto.data)

        assert loop.run_until_complete(main()) == b"through the fifo"


def test_write_pipe_to_a_fifo(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fifo")
        os.mkfifo(path)
        rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

        async def main() -> None:
            pipe = pipe_file(os.open(path, os.O_WRONLY), "wb")
            transport, proto = await asyncio.get_running_loop().connect_write_pipe(Writer, pipe)
            transport.write(b"into the fifo")
            transport.close()
            assert await proto.lost is None

        try:
            loop.run_until_complete(main())
            assert os.read(rfd, 100) == b"into the fifo"
        finally:
            os.close(rfd)


def test_write_pipe_flow_control_and_write_eof(loop: asyncio.AbstractEventLoop) -> None:
    total = 4 * 1024 * 1024

    async def main() -> tuple[list[str], int]:
        lp = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        rtransport, reader = await lp.connect_read_pipe(Reader, pipe_file(rfd, "rb"))
        rtransport.pause_reading()
        wtransport, writer = await lp.connect_write_pipe(Writer, pipe_file(wfd, "wb"))
        assert wtransport.can_write_eof()
        wtransport.set_write_buffer_limits(high=128 * 1024)
        for _ in range(total // 65536):
            wtransport.write(b"y" * 65536)
        assert writer.events[-1] == "pause"  # the pipe is full and nobody reads
        assert 0 < wtransport.get_write_buffer_size() <= total
        rtransport.resume_reading()
        wtransport.write_eof()
        assert await writer.lost is None
        assert await reader.lost is None
        return writer.events, len(reader.data)

    events, received = loop.run_until_complete(main())
    assert events == ["made", "pause", "resume", "lost"]
    assert received == total


def test_write_pipe_reader_gone_with_nothing_buffered(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_into(loop)

    async def main() -> BaseException | None:
        rfd, wfd = os.pipe()
        transport, proto = await asyncio.get_running_loop().connect_write_pipe(Writer, pipe_file(wfd, "wb"))
        os.close(rfd)  # heard of without writing: the write end polls readable
        exc = await proto.lost
        transport.write(b"after the end")  # dropped quietly
        return exc

    assert loop.run_until_complete(main()) is None
    assert reports == []


def test_write_pipe_reader_gone_with_data_buffered(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_into(loop)

    async def main() -> BaseException | None:
        rfd, wfd = os.pipe()
        transport, proto = await asyncio.get_running_loop().connect_write_pipe(Writer, pipe_file(wfd, "wb"))
        while transport.get_write_buffer_size() == 0:
            transport.write(b"z" * 65536)  # until the pipe is full
        os.close(rfd)
        return await proto.lost

    assert isinstance(loop.run_until_complete(main()), BrokenPipeError)
    assert reports == []


def test_write_pipe_write_after_reader_gone_is_epipe(loop: asyncio.AbstractEventLoop) -> None:
    reports = report_into(loop)

    async def main() -> BaseException | None:
        rfd, wfd = os.pipe()
        transport, proto = await asyncio.get_running_loop().connect_write_pipe(Writer, pipe_file(wfd, "wb"))
        os.close(rfd)
        transport.write(b"nobody reads this")  # same tick: the write itself fails
        return await proto.lost

    assert isinstance(loop.run_until_complete(main()), BrokenPipeError)
    assert reports == []


def test_write_pipe_abort_drops_the_buffer(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[BaseException | None, int]:
        rfd, wfd = os.pipe()
        try:
            transport, proto = await asyncio.get_running_loop().connect_write_pipe(Writer, pipe_file(wfd, "wb"))
            while transport.get_write_buffer_size() == 0:
                transport.write(b"z" * 65536)
            transport.abort()
            assert transport.is_closing()
            assert transport.get_write_buffer_size() == 0
            return await proto.lost, transport.get_write_buffer_size()
        finally:
            os.close(rfd)

    assert loop.run_until_complete(main()) == (None, 0)


def test_pty_both_ways(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        lp = asyncio.get_running_loop()
        master, slave = os.openpty()
        rtransport, reader = await lp.connect_read_pipe(Reader, pipe_file(master, "rb"))
        wtransport, writer = await lp.connect_write_pipe(Writer, pipe_file(slave, "wb"))
        wtransport.write(b"over a tty\n")
        while b"\n" not in reader.data:
            await asyncio.sleep(0)
        wtransport.close()
        await writer.lost
        rtransport.close()
        await reader.lost
        return bytes(reader.data)

    assert loop.run_until_complete(main()).replace(b"\r\n", b"\n") == b"over a tty\n"


@pytest.mark.parametrize(
    "connect, message",
    [
        ("connect_read_pipe", "Pipe transport is for pipes/sockets only."),
        ("connect_write_pipe", "Pipe transport is only for pipes, sockets and character devices"),
    ],
)
def test_regular_file_is_refused(loop: asyncio.AbstractEventLoop, connect: str, message: str) -> None:
    with tempfile.TemporaryFile() as f, pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        loop.run_until_complete(getattr(loop, connect)(asyncio.Protocol, f))


def test_pipe_transports_over_a_socketpair(loop: asyncio.AbstractEventLoop) -> None:
    # asyncio accepts sockets as pipes too (anything polled with a fileno()).
    async def main() -> bytes:
        lp = asyncio.get_running_loop()
        a, b = socket.socketpair()
        _, reader = await lp.connect_read_pipe(Reader, b)
        wtransport, writer = await lp.connect_write_pipe(Writer, a)
        wtransport.write(b"over a socket")
        wtransport.close()
        assert await writer.lost is None
        assert await reader.lost is None
        return bytes(reader.data)

    assert loop.run_until_complete(main()) == b"over a socket"
