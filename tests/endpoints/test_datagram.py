"""Datagram endpoint setup (looplet/endpoints/datagram.py): create_datagram_endpoint.

The argument checks and setup failures (a socket of the wrong type, socket options
given with a socket, the removed reuse_address, addresses of the wrong shape or of two
families, an address in use) expect the same exception type and message as stock
asyncio, version by version; and a round trip. The datagram transport
itself is tested in tests/transports/test_datagram.py. Also the bad-input cases of
create_datagram_endpoint (tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import raises

PY313 = sys.version_info >= (3, 13)


# -- create_datagram_endpoint -----------------------------------------------------------


def test_create_datagram_endpoint_stream_sock(loop, run, tcp_sock):
    message = "A datagram socket was expected" if PY313 else "A UDP Socket was expected"
    with raises(ValueError, f"{message}, got {tcp_sock!r}"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=tcp_sock))


@pytest.mark.skipif(PY313, reason="3.13 takes any non-stream socket")
def test_create_datagram_endpoint_seqpacket_sock_before_313(loop, run):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with sock, raises(ValueError, f"A UDP Socket was expected, got {sock!r}"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock))


def test_create_datagram_endpoint_sock_with_modifiers(loop, run, udp_sock):
    message = (
        "socket modifier keyword arguments can not be used when sock is specified. "
        "(local_addr=('127.0.0.1', 0), flags=1, reuse_port=True)"
    )
    with raises(ValueError, message):
        run(
            loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", 0), sock=udp_sock, flags=1, reuse_port=True
            )
        )


def test_create_datagram_endpoint_reuse_address_is_gone(loop, run):
    with pytest.raises(TypeError, match="unexpected keyword argument 'reuse_address'"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", 0), reuse_address=True))


def test_create_datagram_endpoint_no_address_no_family(loop, run):
    with raises(ValueError, "unexpected address family"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol))


def test_create_datagram_endpoint_unix_needs_str(loop, run):
    with raises(TypeError, "string is expected"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("x", 1), family=socket.AF_UNIX))


def test_create_datagram_endpoint_needs_2_tuple(loop, run):
    with raises(TypeError, "2-tuple is expected"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", 0, 0, 0)))


def test_create_datagram_endpoint_families_do_not_match(loop, run):
    with raises(ValueError, "can not get address information"):
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", 0), ("::1", 9)))


def test_create_datagram_endpoint_bind_in_use(loop, run, udp_sock):
    udp_sock.bind(("127.0.0.1", 0))
    with pytest.raises(OSError) as info:
        run(loop.create_datagram_endpoint(asyncio.DatagramProtocol, udp_sock.getsockname()))
    assert info.value.errno == errno.EADDRINUSE


# -- a round trip ------------------------------------------------------------------------


def test_datagram_round_trip(loop, run):
    class Collect(asyncio.DatagramProtocol):
        def __init__(self):
            self.got = loop.create_future()

        def datagram_received(self, data, addr):
            if not self.got.done():
                self.got.set_result(data)

    async def main():
        server, server_proto = await loop.create_datagram_endpoint(Collect, ("127.0.0.1", 0))
        addr = server.get_extra_info("sockname")
        client, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=addr)
        try:
            client.sendto(b"hello")
            return await asyncio.wait_for(server_proto.got, 5)
        finally:
            client.close()
            server.close()
            await asyncio.sleep(0)

    assert run(main()) == b"hello"
