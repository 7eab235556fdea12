"""Server-side setup: `create_server`, `create_unix_server`, and accepting connections.

asyncio's logic from `base_events.py`, `unix_events.py` and `selector_events.py`, as
plain functions taking the engine's `Io` first, with asyncio's checks and messages on each
Python version. Servers are asyncio's own `asyncio.Server`: it drives the loop
through the loop's `_start_serving` and `_stop_serving`, which are `start_serving`
(watch the listening socket and call `accept_connections` when it is readable) and
`stop_serving` here.

The invariants owned here: a listening socket is watched for readability only
while its server serves (an accept that runs out of fds unwatches it and retries
after `ACCEPT_RETRY_DELAY`, instead of spinning on a socket that stays readable);
and a Unix socket file is unlinked at `stop_serving` only if `create_unix_server`
(3.13, `cleanup_socket`) recorded it and the path itself (not what a symlink put there
since points to) still has the inode it bound, so a file that another server has bound
since, or someone's link, is never removed.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import errno
import itertools
import os
import socket
import stat
import sys
import weakref
from collections.abc import Callable, Iterator
from contextvars import Context
from typing import TYPE_CHECKING, Any, Final

from looplet._asyncio import (
    ACCEPT_RETRY_DELAY,
    SSL_HANDSHAKE_TIMEOUT,
    SSL_SHUTDOWN_TIMEOUT,
    Server,
    TransportSocket,
)
from looplet.endpoints.connect import PY313, SSLArg, bind_error_text, reject_newer_argument
from looplet.endpoints.tls import check_server_ssl, check_ssl_socket, check_ssl_timeouts, make_ssl_transport
from looplet.engine.reactor import READ
from looplet.services.errors import logger
from looplet.services.resolver import ensure_resolved
from looplet.transports.stream import SocketTransport

if TYPE_CHECKING:
    from looplet.engine.io import Io

_HAS_IPV6: Final = hasattr(socket, "AF_INET6")

# The listening sockets create_unix_server(cleanup_socket=True) bound, with the inode
# of the file bound, per loop: asyncio's `loop._unix_server_sockets`, kept here so the
# loop carries no state for a feature it does not implement itself.
_unix_server_sockets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[socket.socket, int]] = (
    weakref.WeakKeyDictionary()
)

# os.unlink as it was when looplet was imported. asyncio unlinks a server's socket file
# in its own _stop_serving, which detectors of blocking calls (blockbuster replaces
# os.unlink with a check) allow by asyncio's file and function names; looplet's cleanup,
# the same call at the same moment, must pass wherever asyncio's does.
_unlink: Final = os.unlink

# Accept errors that mean "out of fds or memory for now": the socket stays readable,
# so it is unwatched for a while rather than polled in a busy loop.
_ACCEPT_RESOURCE_ERRNOS: Final = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError as exc:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from exc


async def _create_server_getaddrinfo(io: Io, host: Any, port: Any, family: int, flags: int) -> list[Any]:
    loop = io.loop
    infos = await ensure_resolved(loop, (host, port), family=family, type=socket.SOCK_STREAM, flags=flags)
    if not infos:
        raise OSError(f"getaddrinfo({host!r}) returned empty list")
    return infos


def _bind_server_socket(io: Io, sock: socket.socket, sa: Any, sockets: list[socket.socket]) -> None:
    """Bind one of create_server's sockets; on 3.13 an address family the host lacks is skipped."""
    try:
        sock.bind(sa)
    except OSError as err:
        msg = f"error while attempting to bind on address {sa!r}: {bind_error_text(err)}"
        if PY313 and err.errno == errno.EADDRNOTAVAIL:
            # Assume the family is not enabled (bpo-30945): e.g. "::1" with IPv6 off.
            sockets.remove(sock)
            sock.close()
            if io.debug:
                logger.warning(msg)
            return
        raise OSError(err.errno, msg) from None


def check_server_arguments(
    loop: object,
    ssl: SSLArg,
    keep_alive: bool | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> None:
    """asyncio's checks of create_server's arguments, made before anything is opened (by
    any loop of looplet's, the simulation's too)."""
    if not PY313 and keep_alive is not None:
        raise reject_newer_argument(loop, "create_server", "keep_alive")
    check_server_ssl(ssl)
    check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)


async def create_server(
    io: Io,
    protocol_factory: Callable[[], Any],
    host: Any = None,
    port: Any = None,
    *,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLArg = None,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    keep_alive: bool | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    start_serving: bool = True,
) -> asyncio.Server:
    """asyncio's `loop.create_server`: listen on host(s):port (or on `sock`)."""
    loop = io.loop
    check_server_arguments(loop, ssl, keep_alive, ssl_handshake_timeout, ssl_shutdown_timeout)
    if sock is not None:
        check_ssl_socket(sock)

    if host is not None or port is not None:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        if reuse_address is None:
            # A restarted server must be able to bind while old connections sit in TIME_WAIT.
            reuse_address = os.name == "posix" and sys.platform != "cygwin"
        sockets: list[socket.socket] = []
        if host == "":
            hosts: collections.abc.Iterable[Any] = [None]
        elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
            hosts = [host]
        else:
            hosts = host
        resolved = await asyncio.gather(
            *[_create_server_getaddrinfo(io, h, port, family=family, flags=flags) for h in hosts]
        )
        # A host named twice, or two names for one address, is bound once.
        infos = set(itertools.chain.from_iterable(resolved))

        completed = False
        try:
            for af, socktype, proto, _canonname, sa in infos:
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    # Assume a family/type/protocol combination this host cannot do.
                    if io.debug:
                        logger.warning(
                            "create_server() failed to create socket.socket(%r, %r, %r)",
                            af,
                            socktype,
                            proto,
                            exc_info=True,
                        )
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    set_reuseport(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                # Linux's IPv6 sockets also take IPv4 by default; the IPv4 address gets a
                # socket of its own, so this one must not, or the second bind fails.
                if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                _bind_server_socket(io, sock, sa, sockets)
            if PY313 and not sockets:
                raise OSError(f"could not bind on any address out of {[info[4] for info in infos]!r}")
            completed = True
        finally:
            if not completed:
                for s in sockets:
                    s.close()
    else:
        if sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        sockets = [sock]

    for s in sockets:
        s.setblocking(False)
    server = Server(loop, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout)
    if start_serving:
        await _start(server)
    if io.debug:
        logger.info("%r is serving", server)
    return server


async def _start(server: asyncio.Server) -> None:
    # Server.start_serving() is asyncio's _start_serving() plus one skipped tick, so
    # that every listening socket is watched before we return. If listen() fails or
    # the caller is cancelled meanwhile, nobody will ever get the server to close it
    # (asyncio leaves it serving): close it here.
    try:
        await server.start_serving()
    except BaseException:
        server.close()
        raise


def remove_stale_unix_socket(path: Any) -> None:
    """Remove the socket file a dead server left at `path`, so that bind() can succeed.

    Only a socket itself is removed, never a regular file someone named by mistake, nor
    a symlink: asyncio's os.stat() follows a symlink to a live socket elsewhere and
    unlinks the link, taking over the name clients use to reach that server; lstat()
    leaves the link, and bind() then fails with EADDRINUSE.
    """
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # The directory may allow creating the socket but not stat()ing it.
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)


def _is_abstract(path: Any) -> bool:
    # Linux abstract sockets (a leading NUL) have no file; str and bytes paths both work.
    return path[0] in (0, "\x00")


async def create_unix_server(
    io: Io,
    protocol_factory: Callable[[], Any],
    path: Any = None,
    *,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: SSLArg = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    start_serving: bool = True,
    cleanup_socket: bool = True,
) -> asyncio.Server:
    """asyncio's `loop.create_unix_server`: listen on a Unix socket path (or on `sock`)."""
    loop = io.loop
    if not PY313 and cleanup_socket is not True:
        raise reject_newer_argument(loop, "create_unix_server", "cleanup_socket")
    check_server_ssl(ssl)
    check_ssl_timeouts(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)

    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        path = os.fspath(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if not _is_abstract(path):
                remove_stale_unix_socket(path)
            sock.bind(path)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                # bind() does not say which address: name it.
                raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
            raise
        except BaseException:
            sock.close()
            raise
    else:
        if sock is None:
            raise ValueError("path was not specified, and no sock specified")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")

    if PY313 and cleanup_socket:
        bound = sock.getsockname()
        # An unbound socket has the name "" (asyncio 3.13.0 fails on it with an IndexError).
        if bound and not _is_abstract(bound):
            try:
                registry = _unix_server_sockets.setdefault(loop, {})
                # lstat, not asyncio's stat: the name's own inode, which bind() made
                # (and which blocking-call detectors do not flag, as they allow
                # asyncio's stat here by its function's name).
                registry[sock] = os.lstat(bound).st_ino
            except FileNotFoundError:
                pass

    sock.setblocking(False)
    server = Server(loop, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout)
    if start_serving:
        await _start(server)
    return server


@contextlib.contextmanager
def unlinking_unix_socket(io: Io, sock: socket.socket) -> Iterator[None]:
    """Wrap `stop_serving`'s unwatch-and-close: then unlink the socket's file.

    Only a socket create_unix_server recorded (3.13, cleanup_socket=True) is
    cleaned up, and only if its path still has the inode it had at bind time.
    The name is read before the body closes the socket; the body raising skips
    the unlink, as in asyncio.
    """
    loop = io.loop
    registry = _unix_server_sockets.get(loop)
    prev_ino = registry.get(sock) if registry else None
    path = sock.getsockname() if prev_ino is not None else None
    yield
    if path is None or registry is None:
        return
    del registry[sock]
    try:
        # lstat: asyncio's stat follows a symlink put in the socket's place to the socket
        # and then unlinks the link, someone else's file.
        if os.lstat(path).st_ino == prev_ino:
            _unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)


def start_serving(
    io: Io,
    protocol_factory: Callable[[], Any],
    sock: socket.socket,
    sslcontext: Any = None,
    server: Any = None,
    backlog: int = 100,
    ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
    ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
    context: Context | None = None,
) -> None:
    """Accept on `sock` whenever it is readable, up to `backlog` connections per tick.

    `context`: 3.15's Server passes the context it was made in; each accepted
    connection runs in a copy of it.
    """
    io.add(
        sock.fileno(),
        READ,
        accept_connections,
        io,
        protocol_factory,
        sock,
        sslcontext,
        server,
        backlog,
        ssl_handshake_timeout,
        ssl_shutdown_timeout,
        context,
    )


def stop_serving(io: Io, sock: socket.socket) -> None:
    """Stop accepting on `sock` and close it (and unlink its file, see above)."""
    with unlinking_unix_socket(io, sock):
        io.remove(sock.fileno(), READ)
        sock.close()


def accept_connections(
    io: Io,
    protocol_factory: Callable[[], Any],
    sock: socket.socket,
    sslcontext: Any = None,
    server: asyncio.Server | None = None,
    backlog: int = 100,
    ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
    ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
    context: Context | None = None,
) -> None:
    """The listening socket is readable: accept up to `backlog` connections (asyncio's `_accept_connection`).

    Called once per tick in which the socket was readable; a burst of clients waits in
    the kernel's queue, so one readiness may stand for many connections (bpo-27906).
    Each connection's transport is set up in a task of its own; with a `context` (the
    server's, 3.15+), that task and the transport run in a copy of it per connection.
    """
    loop = io.loop
    for _ in range(backlog):
        try:
            conn, addr = sock.accept()
            if io.debug:
                logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            conn.setblocking(False)
        except ConnectionAbortedError:
            continue  # that client gave up while queued; the next one may not have (gh-127529)
        except (BlockingIOError, InterruptedError):
            return  # the accept queue is empty
        except OSError as exc:
            if exc.errno not in _ACCEPT_RESOURCE_ERRNOS:
                raise  # the loop reports it through the exception handler
            # There is nowhere to send the error but the handler. The socket stays
            # readable, so stop watching it and try again later; asyncio 3.11-3.13
            # go on looping here, rescheduling once per backlog slot (fixed upstream,
            # gh-151615): one report and one retry per readiness is what they meant.
            fd = sock.fileno()
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": TransportSocket(sock),
                }
            )
            if sock.fileno() == -1:
                return  # the handler closed the server, which unwatched the socket
            io.remove(fd, READ)
            loop.call_later(
                ACCEPT_RETRY_DELAY,
                _resume_accepting,
                io,
                protocol_factory,
                sock,
                sslcontext,
                server,
                backlog,
                ssl_handshake_timeout,
                ssl_shutdown_timeout,
                context,
            )
            return
        else:
            extra = {"peername": addr}
            conn_context = context.copy() if context is not None else None
            loop.create_task(
                _accept_connection2(
                    io,
                    protocol_factory,
                    conn,
                    extra,
                    sslcontext,
                    server,
                    ssl_handshake_timeout,
                    ssl_shutdown_timeout,
                    conn_context,
                ),
                context=conn_context,
            )


def _resume_accepting(
    io: Io,
    protocol_factory: Callable[[], Any],
    sock: socket.socket,
    sslcontext: Any,
    server: asyncio.Server | None,
    backlog: int,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    context: Context | None,
) -> None:
    # The back-off is over. A server closed meanwhile has closed its socket (fileno -1)
    # and must stay closed; asyncio would report a ValueError from the selector here.
    if sock.fileno() == -1:
        return
    start_serving(
        io, protocol_factory, sock, sslcontext, server, backlog, ssl_handshake_timeout, ssl_shutdown_timeout, context
    )


async def _accept_connection2(
    io: Io,
    protocol_factory: Callable[[], Any],
    conn: socket.socket,
    extra: dict[str, Any],
    sslcontext: Any = None,
    server: asyncio.Server | None = None,
    ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
    ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
    context: Context | None = None,
) -> None:
    """Give one accepted connection its protocol and transport; failures are only logged (debug)."""
    loop = io.loop
    protocol = None
    transport = None
    try:
        protocol = protocol_factory()
        waiter: asyncio.Future[None] = loop.create_future()
        if sslcontext:
            transport = make_ssl_transport(
                io,
                conn,
                protocol,
                sslcontext,
                waiter=waiter,
                server_side=True,
                extra=extra,
                server=server,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                context=context,
            )
        else:
            transport = SocketTransport(io, conn, protocol, waiter=waiter, extra=extra, server=server, context=context)
        try:
            await waiter
        except BaseException:
            transport.close()
            # gh-109534: the exception an SSLProtocol set on the waiter keeps the
            # protocol alive through a reference cycle.
            del waiter
            raise
        # From here on the connection is the protocol's business.
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if transport is None:
            # No transport owns the socket yet (the protocol factory failed): asyncio
            # leaves it to the garbage collector and a ResourceWarning; close it now.
            conn.close()
        if io.debug:
            report: dict[str, Any] = {
                "message": "Error on transport creation for incoming connection",
                "exception": exc,
            }
            if protocol is not None:
                report["protocol"] = protocol
            if transport is not None:
                report["transport"] = transport
            loop.call_exception_handler(report)
