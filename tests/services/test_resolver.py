"""Name resolution (looplet/services/resolver.py): getaddrinfo and getnameinfo.

Compared with the socket module's own answers: numeric hosts, 'localhost', None with
AI_PASSIVE, bytes hosts, errors. Also the bad-input cases of getaddrinfo and
getnameinfo (tests/bad_input.py).
"""

from __future__ import annotations

import socket

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401


@pytest.mark.parametrize(
    ("host", "port", "kwargs"),
    [
        ("127.0.0.1", 80, {"type": socket.SOCK_STREAM}),
        ("127.0.0.1", "8080", {"family": socket.AF_INET, "type": socket.SOCK_DGRAM}),
        (b"127.0.0.1", 0, {}),
        ("::1", 443, {"family": socket.AF_INET6, "type": socket.SOCK_STREAM}),
        ("localhost", 80, {"type": socket.SOCK_STREAM}),
        ("localhost", 0, {"family": socket.AF_INET}),
        (None, 0, {"family": socket.AF_INET, "type": socket.SOCK_STREAM, "flags": socket.AI_PASSIVE}),
        ("127.0.0.1", "http", {"type": socket.SOCK_STREAM}),
    ],
    ids=["v4-int-port", "v4-str-port", "v4-bytes", "v6", "localhost", "localhost-v4", "passive", "service-name"],
)
def test_getaddrinfo_matches_socket_module(loop, host, port, kwargs):
    expected = socket.getaddrinfo(host, port, **kwargs)
    result = loop.run_until_complete(loop.getaddrinfo(host, port, **kwargs))
    assert sorted(result) == sorted(expected)
    assert result


def test_getaddrinfo_numeric_host_shape(loop):
    result = loop.run_until_complete(
        loop.getaddrinfo("127.0.0.1", 8080, family=socket.AF_INET, type=socket.SOCK_STREAM)
    )
    assert result == [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 8080))]


def test_getaddrinfo_error(loop):
    with pytest.raises(socket.gaierror):
        loop.run_until_complete(loop.getaddrinfo("127.0.0.1", "no-such-service-here", type=socket.SOCK_STREAM))


@pytest.mark.parametrize(
    ("sockaddr", "flags"),
    [
        (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
        (("127.0.0.1", 80), socket.NI_NUMERICHOST),
        (("::1", 443, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
        (("127.0.0.1", 22), 0),
    ],
    ids=["numeric", "service-name", "v6", "names"],
)
def test_getnameinfo_matches_socket_module(loop, sockaddr, flags):
    expected = socket.getnameinfo(sockaddr, flags)
    assert loop.run_until_complete(loop.getnameinfo(sockaddr, flags)) == expected


def test_getnameinfo_numeric(loop):
    result = loop.run_until_complete(
        loop.getnameinfo(("127.0.0.1", 8080), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    )
    assert result == ("127.0.0.1", "8080")
