"""UDP and Unix datagram endpoints on both loops."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any


class Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.lost = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_udp_echo(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        st, sp = await loop.create_datagram_endpoint(Collect, local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(Collect, remote_addr=addr)
        ct.sendto(b"ping")
        data, peer = await sp.got.get()
        assert data == b"ping"
        st.sendto(b"pong", peer)
        assert (await cp.got.get())[0] == b"pong"
        assert ct.get_write_buffer_size() == 0
        ct.close()
        st.close()
        assert await cp.lost is None
        assert await sp.lost is None

    loop.run_until_complete(main())


def test_udp_peer_that_does_not_exist_reports_error_received(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()
        ct, cp = await loop.create_datagram_endpoint(Collect, remote_addr=dead)
        ct.sendto(b"anyone?")
        ct.sendto(b"anyone?")  # the ICMP error surfaces on the next operation
        exc = await asyncio.wait_for(cp.errors.get(), 10)
        assert isinstance(exc, ConnectionRefusedError)
        assert not ct.is_closing()  # a datagram error does not close the endpoint
        ct.close()
        await cp.lost

    loop.run_until_complete(main())


def test_unix_datagram(loop: asyncio.AbstractEventLoop) -> None:
    async def main(d: str) -> None:
        path = os.path.join(d, "dgram")
        st, sp = await loop.create_datagram_endpoint(Collect, local_addr=path, family=socket.AF_UNIX)
        ct, cp = await loop.create_datagram_endpoint(Collect, remote_addr=path, family=socket.AF_UNIX)
        ct.sendto(b"local")
        assert (await sp.got.get())[0] == b"local"
        ct.close()
        st.close()
        await cp.lost
        await sp.lost

    with tempfile.TemporaryDirectory() as d:
        loop.run_until_complete(main(d))


def test_endpoint_on_a_unix_socketpair_receives_with_no_address(loop: asyncio.AbstractEventLoop) -> None:
    # An unnamed AF_UNIX peer has no address: recvfrom() says None, and so does the protocol.
    async def main() -> None:
        s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with s2:
            s2.send(b"before")
            transport, proto = await loop.create_datagram_endpoint(Collect, sock=s1)
            s2.send(b"after")
            s2.send(b"")
            assert await proto.got.get() == (b"before", None)
            assert await proto.got.get() == (b"after", None)
            assert await proto.got.get() == (b"", None)
            transport.close()
            assert await proto.lost is None

    loop.run_until_complete(main())
