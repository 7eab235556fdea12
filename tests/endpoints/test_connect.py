"""Client-side connection setup (looplet/endpoints/connect.py): the same on asyncio and looplet.

Every test runs on stock asyncio and on looplet (the `loop` fixture) and expects the
same exception type and message, version by version: create_connection,
create_unix_connection and connect_accepted_socket. Most need no transport: the call
fails before one exists. Setup failures use loopback only: a refused port (a socket
bound but not listening), an address in use, an address of another family, a missing
Unix socket path, a name that resolves to nothing, and the errors of several addresses
tried (happy eyeballs, all_errors, no reference cycle left behind).

Where looplet deliberately does better than asyncio (a socket it created is closed
when the protocol factory raises), the test expects the same exception from both and
checks the cleanup on looplet only. Also the bad-input cases of the three methods
(tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import socket
import sys
import warnings
from asyncio import base_events

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import Proto, _fake_getaddrinfo, raises

from looplet import _asyncio
from looplet.endpoints import connect

PY312 = sys.version_info >= (3, 12)


PY313 = sys.version_info >= (3, 13)


@pytest.fixture
def refused_addr(loop):
    """A loopback address nothing listens on: a socket bound there, not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()


# -- create_connection ------------------------------------------------------------------


def test_create_connection_server_hostname_without_ssl(loop, run):
    with raises(ValueError, "server_hostname is only meaningful with ssl"):
        run(loop.create_connection(Proto, "127.0.0.1", 1, server_hostname="example.com"))


def test_create_connection_ssl_without_host_needs_server_hostname(loop, run, tcp_sock):
    with raises(ValueError, "You must set server_hostname when using ssl without a host"):
        run(loop.create_connection(Proto, sock=tcp_sock, ssl=True))


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_create_connection_ssl_timeouts_without_ssl(loop, run, name):
    with raises(ValueError, f"{name} is only meaningful with ssl"):
        run(loop.create_connection(Proto, "127.0.0.1", 1, **{name: 1.0}))


def test_create_connection_host_and_sock(loop, run, tcp_sock):
    with raises(ValueError, "host/port and sock can not be specified at the same time"):
        run(loop.create_connection(Proto, "127.0.0.1", 1, sock=tcp_sock))


def test_create_connection_port_only_and_sock(loop, run, tcp_sock):
    with raises(ValueError, "host/port and sock can not be specified at the same time"):
        run(loop.create_connection(Proto, port=1, sock=tcp_sock))


def test_create_connection_neither_host_nor_sock(loop, run):
    with raises(ValueError, "host and port was not specified and no sock specified"):
        run(loop.create_connection(Proto))


def test_create_connection_datagram_sock(loop, run, udp_sock):
    with raises(ValueError, f"A Stream Socket was expected, got {udp_sock!r}"):
        run(loop.create_connection(Proto, sock=udp_sock))


def test_create_connection_ssl_socket(loop, run, ssl_socket):
    with raises(TypeError, "Socket cannot be of type SSLSocket"):
        run(loop.create_connection(Proto, sock=ssl_socket))


def test_create_connection_refused(loop, run, refused_addr):
    with pytest.raises(ConnectionRefusedError) as info:
        run(loop.create_connection(Proto, *refused_addr))
    assert str(info.value) == f"[Errno {errno.ECONNREFUSED}] Connect call failed {refused_addr}"


def test_create_connection_refused_happy_eyeballs(loop, run, refused_addr):
    with pytest.raises(ConnectionRefusedError):
        run(loop.create_connection(Proto, *refused_addr, happy_eyeballs_delay=0.01))


def test_happy_eyeballs_errors_leave_no_reference_cycle(loop, run, refused_addr, request, loop_kind):
    # CPython's own test of happy eyeballs: the exception raised is referred to by the
    # coroutine that caught it and nothing else, no frame, list or cell of the attempts.
    if loop_kind == "asyncio" and sys.version_info < (3, 14):
        request.applymarker(
            pytest.mark.xfail(
                strict=True, reason="asyncio bug: create_connection and staggered_race keep the errors in lists"
            )
        )

    async def main():
        exc = None
        try:
            await asyncio.open_connection(host="localhost", port=refused_addr[1], happy_eyeballs_delay=0.25)
        except* OSError as excs:
            # (not pytest.raises, which would keep the traceback and its frames)
            exc = excs.exceptions[0]
        assert exc is not None
        return gc.get_referrers(exc)

    main_coro = main()
    # A running coroutine's frame is visible to gc.get_referrers from 3.14 on.
    assert run(main_coro) == ([main_coro] if sys.version_info >= (3, 14) else [])


@pytest.fixture
def two_refused(loop):
    """Two refused loopback addresses, behind the name 'two.invalid'."""
    socks = [socket.socket(), socket.socket()]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    addrs = [sock.getsockname() for sock in socks]
    _fake_getaddrinfo(loop, "two.invalid", [(socket.AF_INET, socket.SOCK_STREAM, 6, "", addr) for addr in addrs])
    yield addrs
    for sock in socks:
        sock.close()


def test_create_connection_multiple_exceptions(loop, run, two_refused):
    with pytest.raises(OSError) as info:
        run(loop.create_connection(Proto, "two.invalid", 80))
    assert type(info.value) is OSError
    assert str(info.value) == "Multiple exceptions: " + ", ".join(
        f"[Errno {errno.ECONNREFUSED}] Connect call failed {addr}" for addr in two_refused
    )


@pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12")
def test_create_connection_all_errors(loop, run, two_refused):
    with pytest.raises(ExceptionGroup) as info:
        run(loop.create_connection(Proto, "two.invalid", 80, all_errors=True))
    assert info.value.message == "create_connection failed"
    assert [type(exc) for exc in info.value.exceptions] == [ConnectionRefusedError, ConnectionRefusedError]


@pytest.mark.skipif(PY312, reason="all_errors exists from 3.12 on")
def test_create_connection_all_errors_is_unknown_before_312(loop, run):
    with pytest.raises(TypeError, match="unexpected keyword argument 'all_errors'"):
        run(loop.create_connection(Proto, "127.0.0.1", 1, all_errors=True))


def test_create_connection_empty_resolution(loop, run):
    _fake_getaddrinfo(loop, "nothing.invalid", [])
    with raises(OSError, "getaddrinfo() returned empty list"):
        run(loop.create_connection(Proto, "nothing.invalid", 80))


def test_create_connection_local_addr_in_use(loop, run, refused_addr):
    holder = socket.socket()
    with holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        laddr = holder.getsockname()
        with pytest.raises(OSError) as info:
            run(loop.create_connection(Proto, *refused_addr, local_addr=laddr))
    assert info.value.errno == errno.EADDRINUSE
    reason = f"[errno {errno.EADDRINUSE}] address already in use" if PY313 else "address already in use"
    assert info.value.strerror == f"error while attempting to bind on address {laddr!r}: {reason}"


def test_create_connection_local_addr_of_other_family(loop, run, refused_addr):
    with raises(OSError, f"no matching local address with family={socket.AF_INET!r} found"):
        run(loop.create_connection(Proto, *refused_addr, local_addr=("::1", 0)))


def test_interleave_addrinfos_is_asyncios():
    infos = [(socket.AF_INET6, 1, 6, "", (f"::{i}", 80, 0, 0)) for i in range(1, 4)]
    infos += [(socket.AF_INET, 1, 6, "", (f"10.0.0.{i}", 80)) for i in range(1, 3)]
    for count in (1, 2, 3):
        assert connect.interleave_addrinfos(list(infos), count) == base_events._interleave_addrinfos(list(infos), count)


# -- create_unix_connection and connect_accepted_socket ----------------------------------


def test_create_unix_connection_ssl_without_server_hostname(loop, run):
    with raises(ValueError, "you have to pass server_hostname when using ssl"):
        run(loop.create_unix_connection(Proto, "/nonexistent", ssl=True))


def test_create_unix_connection_server_hostname_without_ssl(loop, run):
    with raises(ValueError, "server_hostname is only meaningful with ssl"):
        run(loop.create_unix_connection(Proto, "/nonexistent", server_hostname="x"))


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_create_unix_connection_ssl_timeouts_without_ssl(loop, run, name):
    with raises(ValueError, f"{name} is only meaningful with ssl"):
        run(loop.create_unix_connection(Proto, "/nonexistent", **{name: 1.0}))


def test_create_unix_connection_path_and_sock(loop, run, socketpair):
    with raises(ValueError, "path and sock can not be specified at the same time"):
        run(loop.create_unix_connection(Proto, "/nonexistent", sock=socketpair[0]))


def test_create_unix_connection_neither(loop, run):
    with raises(ValueError, "no path and sock were specified"):
        run(loop.create_unix_connection(Proto))


def test_create_unix_connection_inet_sock(loop, run, tcp_sock):
    with raises(ValueError, f"A UNIX Domain Stream Socket was expected, got {tcp_sock!r}"):
        run(loop.create_unix_connection(Proto, sock=tcp_sock))


def test_create_unix_connection_missing_path(loop, run, tmpdir_path):
    with pytest.raises(FileNotFoundError):
        run(loop.create_unix_connection(Proto, os.path.join(tmpdir_path, "missing.sock")))


def test_connect_accepted_socket_datagram_sock(loop, run, udp_sock):
    with raises(ValueError, f"A Stream Socket was expected, got {udp_sock!r}"):
        run(loop.connect_accepted_socket(Proto, udp_sock))


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_connect_accepted_socket_ssl_timeouts_without_ssl(loop, run, tcp_sock, name):
    with raises(ValueError, f"{name} is only meaningful with ssl"):
        run(loop.connect_accepted_socket(Proto, tcp_sock, **{name: 1.0}))


def test_connect_accepted_socket_ssl_socket(loop, run, ssl_socket):
    with raises(TypeError, "Socket cannot be of type SSLSocket"):
        run(loop.connect_accepted_socket(Proto, ssl_socket))


# -- failures after the socket exists ----------------------------------------------------


def open_fds():
    return set(os.listdir("/proc/self/fd"))


class FactoryError(Exception):
    pass


def failing_factory():
    raise FactoryError


def _collect_leaked_sockets():
    # asyncio leaves a socket no transport took to the garbage collector (a
    # ResourceWarning); looplet closes it. Collect here so both end the test clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_create_connection_protocol_factory_raises(loop, run, tcp_listener, is_looplet):
    before = open_fds()
    with pytest.raises(FactoryError):
        run(loop.create_connection(failing_factory, *tcp_listener.getsockname()))
    if is_looplet:
        assert open_fds() == before
    _collect_leaked_sockets()


def test_create_unix_connection_protocol_factory_raises(loop, run, tmpdir_path, is_looplet):
    path = os.path.join(tmpdir_path, "listener.sock")
    listener = socket.socket(socket.AF_UNIX)
    with listener:
        listener.bind(path)
        listener.listen(1)
        before = open_fds()
        with pytest.raises(FactoryError):
            run(loop.create_unix_connection(failing_factory, path))
        if is_looplet:
            assert open_fds() == before
        _collect_leaked_sockets()


def test_connect_accepted_socket_protocol_factory_raises(loop, run, tcp_sock):
    # A socket the caller passed in, when no transport could take it: older asyncio
    # leaves it open, the caller's; newer releases (3.14 on) close it. looplet does as
    # the running asyncio does.
    with pytest.raises(FactoryError):
        run(loop.connect_accepted_socket(failing_factory, tcp_sock))
    assert (tcp_sock.fileno() == -1) is _asyncio.CLOSES_SOCKET_OF_FAILED_TRANSPORT
