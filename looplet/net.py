"""The networking half of the loop's API: transports, connections, servers, TLS.

`EventLoop` inherits this facade. Each method delegates to the module that owns the
role: `connect.py` (clients), `serve.py` (servers and the accept loop),
`datagram_setup.py` (UDP), `transport_ops.py` (start_tls, sendfile) and `transports/`
(the transports). The invariant owned here: every transport the loop creates is one
of looplet's own, on its reactor; TLS is asyncio's `sslproto` layer over such a one.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any

from looplet._asyncio import SSL_HANDSHAKE_TIMEOUT, SSL_SHUTDOWN_TIMEOUT, SSLProtocol, base_sendfile
from looplet.endpoints import connect, serve, transport_ops
from looplet.endpoints import datagram as datagram_setup
from looplet.engine.reactor import READ
from looplet.services import sockio
from looplet.transports.datagram import DatagramTransport
from looplet.transports.stream import SocketTransport

if TYPE_CHECKING:
    from looplet.loop import EventLoop


class Networking(asyncio.AbstractEventLoop):
    """The transport-level API of `EventLoop` (mixed in; not usable alone)."""

    if TYPE_CHECKING:
        _transports: Any

        def _add_io(
            self, fd: Any, direction: int, callback: Callable[..., object], *args: Any, context: Context | None = None
        ) -> Any: ...

        def _remove_io(self, fd: Any, direction: int) -> bool: ...

    def _as_loop(self) -> EventLoop:
        return self  # type: ignore[return-value]  # Networking only exists inside EventLoop

    # -- transports (the connection setup that uses them is in connect.py) -------------

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: Any,
        waiter: Any = None,
        *,
        extra: Any = None,
        server: Any = None,
        context: Context | None = None,
    ) -> SocketTransport:
        return SocketTransport(self._as_loop(), sock, protocol, waiter, extra, server, context)

    def _make_ssl_transport(
        self,
        rawsock: socket.socket,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: Any = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        call_connection_made: bool = True,
        context: Context | None = None,
    ) -> Any:
        # TLS is asyncio's own protocol layer (sslproto) over looplet's transport.
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]  # typeshed: int
            ssl_shutdown_timeout=ssl_shutdown_timeout,  # type: ignore[arg-type]
            call_connection_made=call_connection_made,
        )
        SocketTransport(self._as_loop(), rawsock, ssl_protocol, extra=extra, server=server, context=context)
        return ssl_protocol._app_transport

    def _make_datagram_transport(
        self, sock: socket.socket, protocol: Any, address: Any = None, waiter: Any = None, extra: Any = None
    ) -> DatagramTransport:
        return DatagramTransport(self._as_loop(), sock, protocol, address, waiter, extra)

    async def _sendfile_native(self, transp: SocketTransport, file: Any, offset: int, count: int | None) -> int:
        # Hand the socket to sock_sendfile: the transport stops reading, drains its
        # buffer, and is not in _transports meanwhile so sock_* may use its fd.
        del self._transports[transp._sock_fd]
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            sock = transp._sock
            assert sock is not None
            return await sockio.sock_sendfile(self._as_loop(), sock, file, offset, count, False)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            self._transports[transp._sock_fd] = transp

    async def _sendfile_fallback(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        # asyncio's sendfile falls back to this: copy through the transport.
        return await transport_ops.sendfile_fallback(self._as_loop(), transp, file, offset, count)

    def _start_serving(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
        context: Context | None = None,
    ) -> None:
        # Called by asyncio's Server: accept on readability, up to `backlog` per tick.
        # `context`: 3.15's Server passes the context it was made in; each accepted
        # connection runs in a copy of it.
        self._add_io(
            sock.fileno(),
            READ,
            serve.accept_connections,
            self._as_loop(),
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            context,
        )

    def _stop_serving(self, sock: socket.socket) -> None:
        # asyncio's selector loops' name for "stop accepting on this socket and close it".
        with serve.unlinking_unix_socket(self._as_loop(), sock):
            self._remove_io(sock.fileno(), READ)
            sock.close()

    # -- networking: connection setup (connect.py, serve.py, datagram_setup.py, transport_ops.py) ---

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
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
    ) -> tuple[asyncio.Transport, Any]:
        """Open a stream connection to host:port (or wrap `sock`); return (transport, protocol)."""
        return await connect.create_connection(
            self._as_loop(),
            protocol_factory,
            host,
            port,
            ssl=ssl,
            family=family,
            proto=proto,
            flags=flags,
            sock=sock,
            local_addr=local_addr,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=interleave,
            all_errors=all_errors,
        )

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> asyncio.Server:
        """Listen on host(s):port (or on `sock`); return an asyncio Server."""
        return await serve.create_server(
            self._as_loop(),
            protocol_factory,
            host,
            port,
            family=family,
            flags=flags,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
            keep_alive=keep_alive,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
        )

    async def create_unix_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        path: str | os.PathLike[str] | None = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, Any]:
        """Open a stream connection to a Unix socket path (or wrap `sock`)."""
        return await connect.create_unix_connection(
            self._as_loop(),
            protocol_factory,
            path,
            ssl=ssl,
            sock=sock,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> asyncio.Server:
        """Listen on a Unix socket path (or on `sock`); return an asyncio Server."""
        return await serve.create_unix_server(
            self._as_loop(),
            protocol_factory,
            path,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
            cleanup_socket=cleanup_socket,
        )

    async def connect_accepted_socket(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, Any]:
        """Wrap a socket accepted elsewhere in a transport (server side)."""
        return await connect.connect_accepted_socket(
            self._as_loop(),
            protocol_factory,
            sock,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, Any]:
        """Open a datagram endpoint (UDP or Unix); return (transport, protocol)."""
        return await datagram_setup.create_datagram_endpoint(
            self._as_loop(),
            protocol_factory,
            local_addr,
            remote_addr,
            family=family,
            proto=proto,
            flags=flags,
            reuse_port=reuse_port,
            allow_broadcast=allow_broadcast,
            sock=sock,
        )

    async def start_tls(  # type: ignore[override]
        self,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrade `transport` to TLS; return the new transport `protocol` now uses."""
        return await transport_ops.start_tls(
            self._as_loop(),
            transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def sendfile(  # type: ignore[override]
        self, transport: Any, file: Any, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        """Send a file over a transport: zero-copy where possible; return the bytes sent."""
        return await base_sendfile(self, transport, file, offset, count, fallback=fallback)  # type: ignore[no-any-return]
