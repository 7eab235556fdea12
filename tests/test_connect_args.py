"""Connection setup: argument checks and setup failures, the same on asyncio and looplet.

Every test runs on stock asyncio and on looplet (the `loop` fixture) and expects the
same exception type and message, version by version: create_connection,
create_unix_connection, connect_accepted_socket, create_server, create_unix_server,
create_datagram_endpoint, start_tls and sendfile. Most need no transport: the call
fails before one exists. Setup failures use loopback only: a refused port (a socket
bound but not listening), an address in use, an address that is not this host's
(bind fails locally, nothing is sent), a missing Unix socket path. Servers created
with start_serving=False show the socket options chosen (SO_REUSEADDR, IPV6_V6ONLY,
SO_REUSEPORT, SO_KEEPALIVE), host de-duplication, stale Unix socket removal and
3.13's cleanup_socket. A few round trips and the accept path's out-of-fds handling
check that the servers these calls create do serve.

Where looplet deliberately does better than asyncio (a socket it created is closed
when the protocol factory raises; a server whose create_server was cancelled is
closed), the test expects the same exception from both and checks the cleanup on
looplet only.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import io
import os
import re
import socket
import ssl
import sys
import tempfile
import warnings
from asyncio import base_events, constants

import pytest

from looplet import _asyncio
from looplet.endpoints import connect

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)


def raises(exc_type, message):
    """pytest.raises matching the whole message from its start."""
    return pytest.raises(exc_type, match="^" + re.escape(message))


class Proto(asyncio.Protocol):
    pass


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def refused_addr(loop):
    """A loopback address nothing listens on: a socket bound there, not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()


@pytest.fixture
def udp_sock(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        yield sock


@pytest.fixture
def tcp_sock(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        yield sock


@pytest.fixture
def tmpdir_path(loop):
    with tempfile.TemporaryDirectory() as path:
        yield path


@pytest.fixture
def ssl_socket(loop):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sock = ctx.wrap_socket(socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
    with sock:
        yield sock


async def close_server(server):
    server.close()
    await server.wait_closed()


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


def _fake_getaddrinfo(loop, name, entries):
    """Make `name` resolve to `entries` (names go through loop.getaddrinfo on both loops)."""
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, **kwargs):
        if host == name:
            return entries
        return await real(host, port, **kwargs)

    loop.getaddrinfo = getaddrinfo


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


# -- create_server ----------------------------------------------------------------------


def test_create_server_ssl_true(loop, run):
    with raises(TypeError, "ssl argument must be an SSLContext or None"):
        run(loop.create_server(Proto, "127.0.0.1", 0, ssl=True))


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
def test_create_server_ssl_timeouts_without_ssl(loop, run, name):
    with raises(ValueError, f"{name} is only meaningful with ssl"):
        run(loop.create_server(Proto, "127.0.0.1", 0, **{name: 1.0}))


def test_create_server_host_and_sock(loop, run, tcp_sock):
    with raises(ValueError, "host/port and sock can not be specified at the same time"):
        run(loop.create_server(Proto, "127.0.0.1", 0, sock=tcp_sock))


def test_create_server_neither(loop, run):
    with raises(ValueError, "Neither host/port nor sock were specified"):
        run(loop.create_server(Proto))


def test_create_server_datagram_sock(loop, run, udp_sock):
    with raises(ValueError, f"A Stream Socket was expected, got {udp_sock!r}"):
        run(loop.create_server(Proto, sock=udp_sock))


def test_create_server_ssl_socket(loop, run, ssl_socket):
    with raises(TypeError, "Socket cannot be of type SSLSocket"):
        run(loop.create_server(Proto, sock=ssl_socket))


def test_create_server_socket_options(loop, run):
    server = run(loop.create_server(Proto, "127.0.0.1", 0, start_serving=False))
    try:
        assert not server.is_serving()
        [sock] = server.sockets
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    finally:
        run(close_server(server))


def test_create_server_no_reuse_address_and_reuse_port(loop, run):
    server = run(loop.create_server(Proto, "127.0.0.1", 0, reuse_address=False, reuse_port=True, start_serving=False))
    try:
        [sock] = server.sockets
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        run(close_server(server))


def test_create_server_ipv6_only(loop, run):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = run(loop.create_server(Proto, "::1", 0, start_serving=False))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        [sock] = server.sockets
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    finally:
        run(close_server(server))


@pytest.mark.skipif(not PY313, reason="keep_alive is new in 3.13")
def test_create_server_keep_alive(loop, run):
    server = run(loop.create_server(Proto, "127.0.0.1", 0, keep_alive=True, start_serving=False))
    try:
        [sock] = server.sockets
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    finally:
        run(close_server(server))


@pytest.mark.skipif(PY313, reason="keep_alive exists from 3.13 on")
def test_create_server_keep_alive_is_unknown_before_313(loop, run):
    with pytest.raises(TypeError, match="unexpected keyword argument 'keep_alive'"):
        run(loop.create_server(Proto, "127.0.0.1", 0, keep_alive=True, start_serving=False))


def test_create_server_same_host_twice_binds_once(loop, run):
    server = run(loop.create_server(Proto, ["127.0.0.1", "127.0.0.1"], 0, start_serving=False))
    try:
        assert len(server.sockets) == 1
    finally:
        run(close_server(server))


def test_create_server_multiple_hosts_bind_one_socket_each(loop, run):
    # CPython's test_create_server_multiple_hosts_ipv4 without its mock of
    # asyncio.base_events.socket: every address of 127.0.0.0/8 is loopback on Linux.
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.1"]
    server = run(loop.create_server(Proto, hosts, 0, start_serving=False))
    try:
        assert sorted(sock.getsockname()[0] for sock in server.sockets) == ["127.0.0.1", "127.0.0.2"]
    finally:
        run(close_server(server))


@pytest.mark.skipif(not socket.has_ipv6, reason="this Python has no IPv6")
def test_create_server_multiple_hosts_ipv4_and_ipv6(loop, run):
    try:
        probe = socket.socket(socket.AF_INET6)
        with probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("the machine has no IPv6 loopback")
    server = run(loop.create_server(Proto, ["::1", "127.0.0.1", "::1"], 0, start_serving=False))
    try:
        assert sorted(sock.family for sock in server.sockets) == sorted([socket.AF_INET, socket.AF_INET6])
    finally:
        run(close_server(server))


def test_create_server_address_in_use(loop, run):
    holder = socket.socket()
    with holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        addr = holder.getsockname()
        with pytest.raises(OSError) as info:
            run(loop.create_server(Proto, *addr, start_serving=False))
    assert info.value.errno == errno.EADDRINUSE
    reason = f"[errno {errno.EADDRINUSE}] address already in use" if PY313 else "address already in use"
    assert info.value.strerror == f"error while attempting to bind on address {addr!r}: {reason}"


def test_create_server_address_not_available(loop, run):
    # 192.0.2.1 (TEST-NET-1) is no interface's address: bind() fails locally.
    with pytest.raises(OSError) as info:
        run(loop.create_server(Proto, "192.0.2.1", 0, start_serving=False))
    if PY313:
        # 3.13 skips such addresses (an address family not enabled) and fails only if none is left.
        assert info.value.errno is None
        assert str(info.value) == "could not bind on any address out of [('192.0.2.1', 0)]"
    else:
        assert info.value.errno == errno.EADDRNOTAVAIL


def test_create_server_empty_resolution(loop, run):
    _fake_getaddrinfo(loop, "nothing.invalid", [])
    with raises(OSError, "getaddrinfo('nothing.invalid') returned empty list"):
        run(loop.create_server(Proto, "nothing.invalid", 80, start_serving=False))


# -- create_unix_server -----------------------------------------------------------------


def test_create_unix_server_inet_sock(loop, run, tcp_sock):
    with raises(ValueError, f"A UNIX Domain Stream Socket was expected, got {tcp_sock!r}"):
        run(loop.create_unix_server(Proto, sock=tcp_sock))


def test_create_unix_server_path_and_sock(loop, run, socketpair):
    with raises(ValueError, "path and sock can not be specified at the same time"):
        run(loop.create_unix_server(Proto, "/nonexistent", sock=socketpair[0]))


def test_create_unix_server_neither(loop, run):
    with raises(ValueError, "path was not specified, and no sock specified"):
        run(loop.create_unix_server(Proto))


def test_create_unix_server_ssl_true(loop, run):
    with raises(TypeError, "ssl argument must be an SSLContext or None"):
        run(loop.create_unix_server(Proto, "/nonexistent", ssl=True))


def test_create_unix_server_ssl_timeout_without_ssl(loop, run):
    with raises(ValueError, "ssl_handshake_timeout is only meaningful with ssl"):
        run(loop.create_unix_server(Proto, "/nonexistent", ssl_handshake_timeout=1.0))


def test_create_unix_server_replaces_stale_socket_file(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays: a dead server's leftover
    server = run(loop.create_unix_server(Proto, path, start_serving=False))
    run(close_server(server))


def test_create_unix_server_path_is_a_regular_file(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "regular")
    with open(path, "wb"):
        pass
    with raises(OSError, f"[Errno {errno.EADDRINUSE}] Address {path!r} is already in use"):
        run(loop.create_unix_server(Proto, path, start_serving=False))
    assert os.path.exists(path)  # not a socket: never removed


def test_create_unix_server_socket_file_after_close(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "server.sock")
    server = run(loop.create_unix_server(Proto, path, start_serving=False))
    assert os.path.exists(path)
    run(close_server(server))
    # 3.13 removes the file it bound (cleanup_socket=True by default); older ones leave it.
    assert os.path.exists(path) == (not PY313)


@pytest.mark.skipif(not PY313, reason="cleanup_socket is new in 3.13")
def test_create_unix_server_no_cleanup_socket(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "server.sock")
    server = run(loop.create_unix_server(Proto, path, start_serving=False, cleanup_socket=False))
    run(close_server(server))
    assert os.path.exists(path)


@pytest.mark.skipif(not PY313, reason="cleanup_socket is new in 3.13")
def test_create_unix_server_cleanup_spares_a_replaced_file(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "server.sock")
    server = run(loop.create_unix_server(Proto, path, start_serving=False))
    os.unlink(path)
    with open(path, "wb"):
        pass  # someone else's file now: another inode
    run(close_server(server))
    assert os.path.exists(path)


@pytest.mark.skipif(not PY313, reason="cleanup_socket is new in 3.13")
def test_create_unix_server_cleanup_spares_a_symlink_to_the_socket(loop, run, tmpdir_path, request, loop_kind):
    if loop_kind == "asyncio":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="asyncio bug: stat() follows the link to the socket, then unlinks it")
        )
    path = os.path.join(tmpdir_path, "server.sock")
    moved = os.path.join(tmpdir_path, "moved.sock")
    server = run(loop.create_unix_server(Proto, path, start_serving=False))
    os.rename(path, moved)
    os.symlink(moved, path)  # someone else's file at the name, which leads to the socket
    run(close_server(server))
    assert os.path.islink(path)


@pytest.mark.skipif(PY313, reason="cleanup_socket exists from 3.13 on")
def test_create_unix_server_cleanup_socket_is_unknown_before_313(loop, run, tmpdir_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'cleanup_socket'"):
        run(loop.create_unix_server(Proto, os.path.join(tmpdir_path, "s"), cleanup_socket=False))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux's")
def test_create_unix_server_abstract_socket(loop, run):
    name = f"\0looplet-test-{os.getpid()}-{id(loop)}"
    server = run(loop.create_unix_server(Proto, name, start_serving=False))
    try:
        assert server.sockets[0].getsockname() in (name, name.encode())
    finally:
        run(close_server(server))


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


# -- start_tls and sendfile -------------------------------------------------------------


class FakeTransport(asyncio.Transport):
    """Stands for a transport start_tls/sendfile reject before touching it."""

    def __init__(self, closing=False, **attrs):
        super().__init__()
        self._closing = closing
        for name, value in attrs.items():
            setattr(self, name, value)

    def is_closing(self):
        return self._closing


def test_start_tls_needs_ssl_context(loop, run):
    with raises(TypeError, "sslcontext is expected to be an instance of ssl.SSLContext, got True"):
        run(loop.start_tls(FakeTransport(), Proto(), True))


def test_start_tls_unsupported_transport(loop, run):
    transport = FakeTransport()
    with raises(TypeError, f"transport {transport!r} is not supported by start_tls()"):
        run(loop.start_tls(transport, Proto(), ssl.create_default_context()))


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


# -- serving: the accept path -----------------------------------------------------------


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()


async def _echo_once(loop, open_connection):
    reader, writer = await open_connection()
    writer.write(b"ping")
    await writer.drain()
    writer.write_eof()
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply


def test_tcp_server_round_trip(loop, run):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            replies = await asyncio.gather(
                *[_echo_once(loop, lambda: asyncio.open_connection("127.0.0.1", port)) for _ in range(5)]
            )
        finally:
            await close_server(server)
        return replies

    assert run(main()) == [b"ping"] * 5


def test_unix_server_round_trip(loop, run, tmpdir_path):
    path = os.path.join(tmpdir_path, "echo.sock")

    async def main():
        server = await loop.create_unix_server(Echo, path)
        try:
            return await _echo_once(loop, lambda: asyncio.open_unix_connection(path))
        finally:
            await close_server(server)

    assert run(main()) == b"ping"


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


class _FailingAccept(socket.socket):
    """A listening socket whose first `times` accept() calls fail with `err`, as a
    process out of fds (EMFILE), a system out of files (ENFILE) or a client that
    gave up while queued (ECONNABORTED) would see them."""

    def __init__(self, err: int, times: int) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.err = err
        self.failures_left = times
        self.bind(("127.0.0.1", 0))

    def accept(self):
        if self.failures_left:
            self.failures_left -= 1
            raise OSError(self.err, os.strerror(self.err))
        return super().accept()


async def _echo_through(address, payload=b"ping"):
    reader, writer = await asyncio.open_connection(*address)
    writer.write(payload)
    writer.write_eof()
    try:
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def _serve_and_echo(loop, listener):
    server = await loop.create_server(Echo, sock=listener)
    try:
        return await _echo_through(listener.getsockname())
    finally:
        await close_server(server)


def test_accept_out_of_fds_is_reported_and_stops_watching(loop, run, monkeypatch):
    # A back-off far longer than the test: the retry never fires while it runs.
    monkeypatch.setattr(constants, "ACCEPT_RETRY_DELAY", 3600)
    listener = _FailingAccept(errno.EMFILE, times=1_000_000)
    client = socket.socket()
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        server = await loop.create_server(Echo, sock=listener, backlog=1)
        client.connect(listener.getsockname())  # the listener is readable from now on
        for _ in range(20):
            await asyncio.sleep(0)
        await close_server(server)

    with client:
        run(main())
    # One batch of accept attempts (backlog of them, from 3.14 backlog + 1, each failure
    # reported by asyncio; looplet stops at the first), not one per tick: the listening
    # socket is no longer watched.
    batch = 2 if sys.version_info >= (3, 14) else 1
    assert 1 <= len(reports) <= batch
    assert {ctx["message"] for ctx in reports} == {"socket.accept() out of system resource"}
    assert {ctx["exception"].errno for ctx in reports} == {errno.EMFILE}


@pytest.mark.parametrize("err", [errno.EMFILE, errno.ENFILE], ids=["EMFILE", "ENFILE"])
def test_accept_out_of_fds_backs_off_and_keeps_serving(loop, run, monkeypatch, err):
    monkeypatch.setattr(constants, "ACCEPT_RETRY_DELAY", 0)
    listener = _FailingAccept(err, times=2)
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    # The client connects at once (the kernel queues it); it is accepted after two
    # failed accepts and two back-offs.
    assert run(_serve_and_echo(loop, listener)) == b"ping"
    assert [ctx["exception"].errno for ctx in reports] == [err, err]
    assert {ctx["message"] for ctx in reports} == {"socket.accept() out of system resource"}


def test_accept_aborted_client_is_skipped_silently(loop, run):
    listener = _FailingAccept(errno.ECONNABORTED, times=1)
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    assert run(_serve_and_echo(loop, listener)) == b"ping"
    assert reports == []


def test_accept_out_of_fds_handler_closing_the_server(loop, run, monkeypatch, is_looplet):
    # An exception handler may react to running out of fds by closing the server.
    monkeypatch.setattr(constants, "ACCEPT_RETRY_DELAY", 0)
    listener = _FailingAccept(errno.EMFILE, times=1_000_000)
    client = socket.socket()
    reports = []
    server = None

    def handler(lp, ctx):
        reports.append(ctx)
        server.close()

    loop.set_exception_handler(handler)

    async def main():
        nonlocal server
        server = await loop.create_server(Echo, sock=listener)
        client.connect(listener.getsockname())
        await server.wait_closed()
        for _ in range(5):
            await asyncio.sleep(0)

    with client:
        run(main())
    assert reports[0]["message"] == "socket.accept() out of system resource"
    assert listener.fileno() == -1
    if is_looplet:
        # asyncio goes on to unwatch fd -1 and reports the selector's ValueError too;
        # looplet sees the socket is closed and neither unwatches nor retries.
        assert len(reports) == 1


# -- failures after the socket exists ---------------------------------------------------


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


def test_create_server_cancelled_while_starting(loop, run, tcp_sock, is_looplet):
    tcp_sock.bind(("127.0.0.1", 0))

    async def main():
        task = asyncio.ensure_future(loop.create_server(Proto, sock=tcp_sock))
        await asyncio.sleep(0)  # create_server now waits in start_serving's skipped tick
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    if is_looplet:
        # Nobody can get that server to close it: looplet closes it (asyncio leaves it serving).
        assert tcp_sock.fileno() == -1
