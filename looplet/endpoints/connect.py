"""Client-side connection setup: `create_connection`, `create_unix_connection`, `connect_accepted_socket`.

asyncio keeps this logic in `base_events.py` and `unix_events.py`; here it is the
same logic, as plain async functions taking the engine's `Io` first, with asyncio's
argument checks, exception types and messages on each Python version. The loop's
methods (loop.py) delegate here; the server side is in serve.py, datagram endpoints
in datagram.py, TLS in tls.py, sendfile in sendfile.py.

The invariant owned here: a socket this module creates is either handed to exactly
one transport or closed before the call returns or raises, so no failed attempt (a
refused address, a failed bind, a cancelled happy-eyeballs racer, a protocol factory
that raises) leaves an fd behind; and a transport that never finished its handshake
is closed before the error reaches the caller. A socket the caller passed in is
closed only through its transport, as asyncio does.

Helpers shared with the other setup modules (the version gate for keyword arguments
newer than the running Python, the "only meaningful with ssl" checks) live here too.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import TYPE_CHECKING, Any, Final, TypeVar

from looplet._asyncio import CLOSES_SOCKET_OF_FAILED_TRANSPORT, TRANSPORTS_HAVE_CONTEXT, staggered_race
from looplet.endpoints.tls import check_ssl_socket, check_ssl_timeouts, make_ssl_transport
from looplet.services.errors import logger
from looplet.services.resolver import ensure_resolved
from looplet.transports.stream import SocketTransport

if TYPE_CHECKING:
    from looplet.engine.io import Io

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)

#: `ssl=`: an SSLContext, True for a default client context, or None/False for none.
SSLArg = Any

#: One getaddrinfo entry: (family, type, proto, canonname, sockaddr).
AddrInfoEntry = tuple[Any, Any, int, str, Any]

# Keyword arguments added in later Pythons; asyncio on an older one rejects them.
PY312: Final = sys.version_info >= (3, 12)
PY313: Final = sys.version_info >= (3, 13)


def reject_newer_argument(loop: object, method: str, name: str) -> TypeError:
    """The TypeError Python raises for a keyword argument this version's asyncio lacks.

    The facade accepts the union of all versions' arguments; given a non-default value
    on a Python whose asyncio has no such argument, the call fails as it would there.
    """
    return TypeError(f"{type(loop).__qualname__}.{method}() got an unexpected keyword argument {name!r}")


def interleave_addrinfos(addrinfos: list[AddrInfoEntry], first_address_family_count: int = 1) -> list[AddrInfoEntry]:
    """Alternate address families (RFC 8305), the first family leading by `count - 1`."""
    by_family: dict[Any, list[AddrInfoEntry]] = {}
    for addr in addrinfos:
        by_family.setdefault(addr[0], []).append(addr)
    lists = list(by_family.values())
    reordered: list[AddrInfoEntry] = []
    if first_address_family_count > 1:
        reordered.extend(lists[0][: first_address_family_count - 1])
        del lists[0][: first_address_family_count - 1]
    reordered.extend(a for a in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if a is not None)
    return reordered


def bind_error_text(exc: OSError) -> str:
    """How asyncio words a bind() failure after "error while attempting to bind on address X: ".

    3.13 gives the whole str(exc) ("[errno 98] address already in use"), 3.11 and
    3.12 only the strerror; asyncio's own tests match on these.
    """
    if PY313:
        return str(exc).lower()
    return exc.strerror.lower()  # type: ignore[union-attr]


async def _connect_sock(
    io: Io,
    exceptions: list[list[OSError]],
    addr_info: AddrInfoEntry,
    local_addr_infos: list[AddrInfoEntry] | None = None,
) -> socket.socket:
    """Create, bind and connect one socket; its errors go to a list of its own in `exceptions`.

    Each attempt owns one sub-list so that happy eyeballs, which runs attempts
    concurrently, still reports every attempt's errors.
    """
    loop = io.loop
    my_exceptions: list[OSError] = []
    exceptions.append(my_exceptions)
    family, type_, proto, _, address = addr_info
    sock = None
    try:
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        if local_addr_infos is not None:
            for lfamily, _, _, _, laddr in local_addr_infos:
                # A local address of another family cannot be bound to this socket.
                if lfamily != family:
                    continue
                try:
                    sock.bind(laddr)
                    break
                except OSError as exc:
                    msg = f"error while attempting to bind on address {laddr!r}: {bind_error_text(exc)}"
                    my_exceptions.append(OSError(exc.errno, msg))
            else:  # no local address could be bound
                if my_exceptions:
                    raise my_exceptions.pop()
                raise OSError(f"no matching local address with {family=} found")
        await loop.sock_connect(sock, address)
        return sock
    except OSError as exc:
        my_exceptions.append(exc)
        if sock is not None:
            sock.close()
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        # The frame is kept alive by tracebacks in the lists: break the cycle.
        del exceptions, my_exceptions


def _raise_connect_errors(exceptions: list[list[OSError]], all_errors: bool) -> None:
    flat = [exc for sub in exceptions for exc in sub]
    try:
        if all_errors:
            raise ExceptionGroup("create_connection failed", flat)
        if len(flat) == 1:
            raise flat[0]
        # The same error from every address (say, all refused) reads best as one.
        model = str(flat[0])
        if all(str(exc) == model for exc in flat):
            raise flat[0]
        raise OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in flat)))
    finally:
        # The raised exceptions' tracebacks hold this frame: what it refers to must
        # not lead back to them.
        del flat, exceptions


def check_connection_arguments(
    loop: object,
    host: Any,
    ssl: SSLArg,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    all_errors: bool,
) -> str | None:
    """asyncio's checks of create_connection's arguments, made before anything is opened
    (by any loop of looplet's, the simulation's too); return the name TLS checks the
    peer's certificate against."""
    if not PY312 and all_errors is not False:
        raise reject_newer_argument(loop, "create_connection", "all_errors")
    if server_hostname is not None and not ssl:
        raise ValueError("server_hostname is only meaningful with ssl")
    if server_hostname is None and ssl:
        # The certificate is checked against the host by default; with no host there is
        # nothing to check against (server_hostname='' turns the check off explicitly).
        if not host:
            raise ValueError("You must set server_hostname when using ssl without a host")
        server_hostname = host
    check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    return server_hostname


async def create_connection(
    io: Io,
    protocol_factory: Callable[[], _ProtocolT],
    host: Any = None,
    port: Any = None,
    *,
    ssl: SSLArg = None,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    sock: socket.socket | None = None,
    local_addr: Any = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    happy_eyeballs_delay: float | None = None,
    interleave: int | None = None,
    all_errors: bool = False,
) -> tuple[asyncio.Transport, _ProtocolT]:
    """asyncio's `loop.create_connection`: connect a stream to host:port (or adopt `sock`)."""
    loop = io.loop
    server_hostname = check_connection_arguments(
        loop, host, ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout, all_errors
    )
    if sock is not None:
        check_ssl_socket(sock)
    if happy_eyeballs_delay is not None and interleave is None:
        # Happy eyeballs races families: interleave them unless told otherwise.
        interleave = 1

    owns_sock = host is not None or port is not None
    if owns_sock:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        infos = await ensure_resolved(
            loop, (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        laddr_infos = None
        if local_addr is not None:
            laddr_infos = await ensure_resolved(
                loop, local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            if not laddr_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = interleave_addrinfos(infos, interleave)

        exceptions: list[list[OSError]] = []
        if happy_eyeballs_delay is None:
            for addrinfo in infos:
                try:
                    sock = await _connect_sock(io, exceptions, addrinfo, laddr_infos)
                    break
                except OSError:
                    continue
        else:
            # Neither a functools.partial nor `sock, _, _`: each would keep the attempts'
            # exceptions (and through their tracebacks, frames) alive after the raise.
            race = await staggered_race(
                (
                    lambda addrinfo=addrinfo: _connect_sock(io, exceptions, addrinfo, laddr_infos)  # type: ignore[misc]
                    for addrinfo in infos
                ),
                happy_eyeballs_delay,
                loop=loop,
            )
            sock = race[0]
            # The race's own list of the attempts' exceptions: before 3.14 a closure cell
            # of the attempts' frames holds it too, and their tracebacks hold those
            # frames, a cycle through each exception. Emptied, it holds nothing.
            race[2].clear()
            del race
        if sock is None:
            try:
                _raise_connect_errors(exceptions, all_errors)
            finally:
                del exceptions
    else:
        if sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        # AF_UNIX stream sockets are accepted too: asyncio always has, for compatibility.
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")

    assert sock is not None
    transport, protocol = await make_connection_transport(
        io,
        sock,
        protocol_factory,
        ssl,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        owns_sock=owns_sock,
    )
    if io.debug:
        # The SSL transport replaced the socket: show the one the transport has.
        sock = transport.get_extra_info("socket")
        logger.debug("%r connected to %s:%r: (%r, %r)", sock, host, port, transport, protocol)
    return transport, protocol


async def make_connection_transport(
    io: Io,
    sock: socket.socket,
    protocol_factory: Callable[[], _ProtocolT],
    ssl: SSLArg,
    server_hostname: str | None,
    server_side: bool = False,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    *,
    owns_sock: bool = False,
    context: Context | None = None,
) -> tuple[asyncio.Transport, _ProtocolT]:
    """asyncio's `_create_connection_transport`: wrap a connected socket, wait for connection_made.

    `owns_sock`: the socket was made by the caller's setup, not given by the user, so
    it is closed if no transport could take it (asyncio leaves it to the GC). A socket
    the user gave is closed then too where the running asyncio does so.

    `context`: what the transport's callbacks run in; where the running asyncio gives
    each transport one (3.15+), a copy of the caller's unless given.
    """
    loop = io.loop
    sock.setblocking(False)
    if context is None and TRANSPORTS_HAVE_CONTEXT:
        context = copy_context()
    waiter: asyncio.Future[None] = loop.create_future()
    transport: asyncio.Transport
    try:
        protocol = protocol_factory()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = make_ssl_transport(
                io,
                sock,
                protocol,
                sslcontext,
                waiter,
                server_side=server_side,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                context=context,
            )
        else:
            transport = SocketTransport(io, sock, protocol, waiter, context=context)
    except BaseException:
        if owns_sock or CLOSES_SOCKET_OF_FAILED_TRANSPORT:
            sock.close()
        raise
    try:
        await waiter
    except BaseException:
        # A failed handshake or a cancelled caller: the transport (and its socket) is ours to close.
        transport.close()
        raise
    return transport, protocol


async def create_unix_connection(
    io: Io,
    protocol_factory: Callable[[], _ProtocolT],
    path: str | os.PathLike[str] | None = None,
    *,
    ssl: SSLArg = None,
    sock: socket.socket | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[asyncio.Transport, _ProtocolT]:
    """asyncio's `loop.create_unix_connection`: connect a stream to a Unix socket path (or adopt `sock`)."""
    loop = io.loop
    assert server_hostname is None or isinstance(server_hostname, str)
    if ssl:
        # A path says nothing about the certificate's name: it must be given.
        if server_hostname is None:
            raise ValueError("you have to pass server_hostname when using ssl")
    else:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)

    owns_sock = path is not None
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        path = os.fspath(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, path)
        except BaseException:
            sock.close()
            raise
    else:
        if sock is None:
            raise ValueError("no path and sock were specified")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)

    return await make_connection_transport(
        io,
        sock,
        protocol_factory,
        ssl,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        owns_sock=owns_sock,
    )


async def connect_accepted_socket(
    io: Io,
    protocol_factory: Callable[[], _ProtocolT],
    sock: socket.socket,
    *,
    ssl: SSLArg = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[asyncio.Transport, _ProtocolT]:
    """asyncio's `loop.connect_accepted_socket`: a transport for a socket accepted elsewhere."""
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    check_ssl_socket(sock)
    transport, protocol = await make_connection_transport(
        io,
        sock,
        protocol_factory,
        ssl,
        "",
        server_side=True,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    if io.debug:
        # The SSL transport replaced the socket: show the one the transport has.
        sock = transport.get_extra_info("socket")
        logger.debug("%r handled: (%r, %r)", sock, transport, protocol)
    return transport, protocol
