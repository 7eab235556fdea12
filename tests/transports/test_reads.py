"""What every read hands the program, on asyncio and on looplet.

looplet reads into one buffer per loop and copies out what arrived; these tests pin
down what that must not change: each `data_received`, `datagram_received` and
`sock_recv*` result is a `bytes` object of its own, which later reads do not touch,
however many transports read in one tick; a read takes as much as is there, up to
asyncio's `max_size`; and sizes the buffer cannot serve behave as the socket's own.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest


class Keeper(asyncio.Protocol):
    """Keeps every chunk it is given, as it was given."""

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.copies: list[bytes] = []
        self.got = asyncio.Event()

    def data_received(self, data: Any) -> None:
        self.chunks.append(data)
        self.copies.append(bytes(data))
        self.got.set()


class DatagramKeeper(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.copies: list[bytes] = []
        self.got = asyncio.Event()

    def datagram_received(self, data: Any, addr: Any) -> None:
        self.chunks.append(data)
        self.copies.append(bytes(data))
        self.got.set()


async def _until(keepers: list[Any], total: int) -> None:
    while sum(len(c) for k in keepers for c in k.copies) < total:
        for k in keepers:
            k.got.clear()
        await asyncio.wait([asyncio.ensure_future(k.got.wait()) for k in keepers], return_when=asyncio.FIRST_COMPLETED)


def test_stream_chunks_are_bytes_that_later_reads_leave_alone(loop: asyncio.AbstractEventLoop) -> None:
    """Three connections read in the same ticks; every chunk any protocol kept is still
    what it was when it arrived, and is `bytes`."""

    async def main() -> None:
        pairs = [socket.socketpair() for _ in range(3)]
        keepers = [Keeper() for _ in pairs]
        transports = []
        for (ours, _), keeper in zip(pairs, keepers, strict=True):
            tr, _ = await loop.connect_accepted_socket(lambda keeper=keeper: keeper, ours)  # type: ignore[misc]
            transports.append(tr)
        try:
            for round_ in range(5):
                for i, (_, theirs) in enumerate(pairs):
                    theirs.send(bytes([65 + i]) * (1000 + round_))
                await _until(keepers, sum(1000 + r for r in range(round_ + 1)) * 3)
            for i, keeper in enumerate(keepers):
                assert all(type(c) is bytes for c in keeper.chunks)
                assert keeper.chunks == keeper.copies
                assert b"".join(keeper.chunks) == bytes([65 + i]) * sum(1000 + r for r in range(5))
        finally:
            for tr in transports:
                tr.close()
            for _, theirs in pairs:
                theirs.close()
            await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_a_read_takes_what_is_there_up_to_max_size(loop: asyncio.AbstractEventLoop) -> None:
    """A backlog larger than one read arrives in reads of at most `max_size` (256 KiB,
    asyncio's), and more than 64 KiB at a time when that much is waiting."""

    async def main() -> None:
        ours, theirs = socket.socketpair()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024 * 1024)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        total = 0
        theirs.setblocking(False)
        while total < 600 * 1024:
            try:
                total += theirs.send(b"x" * (64 * 1024))
            except BlockingIOError:
                break
        keeper = Keeper()
        tr, _ = await loop.connect_accepted_socket(lambda: keeper, ours)
        try:
            assert tr.max_size == 256 * 1024  # type: ignore[attr-defined]
            await _until([keeper], total)
            sizes = [len(c) for c in keeper.chunks]
            assert max(sizes) <= 256 * 1024
            if total > 256 * 1024:
                assert max(sizes) > 64 * 1024, sizes
        finally:
            tr.close()
            theirs.close()
            await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_datagrams_are_bytes_that_later_reads_leave_alone(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        keeper = DatagramKeeper()
        tr, _ = await loop.create_datagram_endpoint(lambda: keeper, local_addr=("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            address = tr.get_extra_info("sockname")
            sent = [bytes([i]) * (100 + i) for i in range(20)]
            for datagram in sent:
                sender.sendto(datagram, address)
            await _until([keeper], sum(map(len, sent)))
            assert all(type(c) is bytes for c in keeper.chunks)
            assert keeper.chunks == keeper.copies == sent
        finally:
            sender.close()
            tr.close()
            await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_read_pipe_chunks_are_bytes_that_later_reads_leave_alone(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        r, w = os.pipe()
        keeper = Keeper()
        tr, _ = await loop.connect_read_pipe(lambda: keeper, os.fdopen(r, "rb", 0))
        try:
            for i in range(5):
                os.write(w, bytes([97 + i]) * 3000)
                await _until([keeper], 3000 * (i + 1))
            assert all(type(c) is bytes for c in keeper.chunks)
            assert keeper.chunks == keeper.copies
            assert b"".join(keeper.chunks) == b"".join(bytes([97 + i]) * 3000 for i in range(5))
        finally:
            os.close(w)
            tr.close()
            await asyncio.sleep(0)

    loop.run_until_complete(main())


@pytest.mark.parametrize("size", [1, 5, 4096, 256 * 1024, 256 * 1024 + 1, 1024 * 1024])
def test_sock_recv_returns_its_own_bytes_of_at_most_n(loop: asyncio.AbstractEventLoop, size: int) -> None:
    """Sizes the loop's buffer serves and sizes it cannot give the same answers."""

    async def main() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            theirs.sendall(b"0123456789")
            first = await loop.sock_recv(ours, size)
            theirs.sendall(b"abcdefghij")
            second = await loop.sock_recv(ours, size)
            assert type(first) is bytes and type(second) is bytes
            assert first == b"0123456789"[:size]
            assert second == (b"0123456789"[size:] + b"abcdefghij")[:size]
        finally:
            ours.close()
            theirs.close()

    loop.run_until_complete(main())


def test_sock_recv_of_zero_returns_nothing(loop: asyncio.AbstractEventLoop) -> None:
    """recv(0) is an empty read, not "as much as fits" (which recv_into(buf, 0) means)."""

    async def main() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            theirs.sendall(b"data")
            assert await loop.sock_recv(ours, 0) == b""
            assert await loop.sock_recv(ours, 10) == b"data"
        finally:
            ours.close()
            theirs.close()

    loop.run_until_complete(main())


def test_sock_recvfrom_returns_its_own_bytes(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ours.setblocking(False)
        ours.bind(("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        try:
            got = []
            for i in range(3):
                sender.sendto(bytes([i]) * 50, ours.getsockname())
                got.append(await loop.sock_recvfrom(ours, 4096))
            assert [type(d) for d, _ in got] == [bytes] * 3
            assert [d for d, _ in got] == [bytes([i]) * 50 for i in range(3)]
            assert {a for _, a in got} == {sender.getsockname()}
        finally:
            ours.close()
            sender.close()

    loop.run_until_complete(main())


class RecvCounting(socket.socket):
    """A socket class that overrides recv: the loop must call it, as asyncio does."""

    calls = 0

    def recv(self, n: int, flags: int = 0) -> bytes:
        RecvCounting.calls += 1
        return super().recv(n, flags)


def test_sock_recv_calls_an_overridden_recv(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        ours = RecvCounting(a.family, a.type, fileno=a.detach())
        ours.setblocking(False)
        RecvCounting.calls = 0
        try:
            b.sendall(b"hi")
            assert await loop.sock_recv(ours, 100) == b"hi"
            assert RecvCounting.calls == 1
        finally:
            ours.close()
            b.close()

    loop.run_until_complete(main())
