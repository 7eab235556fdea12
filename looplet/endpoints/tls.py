"""TLS: a TLS transport over a socket, and `start_tls` on an open transport.

TLS is asyncio's own `SSLProtocol` layered over one of looplet's socket transports,
made here and nowhere else; `start_tls` is asyncio's `base_events.start_tls` as a
plain function, with asyncio's checks and messages.

The invariant owned here: whatever `start_tls` does to a transport (swap its
protocol, pause its reading) is undone, or the transport is closed, before the
call returns or raises.
"""

from __future__ import annotations

import asyncio
import socket
from contextvars import Context
from typing import TYPE_CHECKING, Any

from looplet._asyncio import SSLProtocol
from looplet.transports.stream import SocketTransport

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from looplet.engine.io import Io


# The argument checks every TLS-capable call makes, with asyncio's messages.


def check_ssl_socket(sock: socket.socket) -> None:
    """A socket given to the loop must not be TLS-wrapped already: TLS is the loop's job."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def check_ssl_timeouts(ssl: object, ssl_handshake_timeout: float | None, ssl_shutdown_timeout: float | None) -> None:
    """The timeouts only mean something for TLS: reject them without `ssl`."""
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def check_server_ssl(ssl: object) -> None:
    """A server needs a context of its own (a client may say `ssl=True`)."""
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")


def make_ssl_transport(
    io: Io,
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
    """A TLS transport: asyncio's own protocol layer (sslproto) over looplet's socket transport."""
    ssl_protocol = SSLProtocol(
        io.loop,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]  # typeshed: int
        ssl_shutdown_timeout=ssl_shutdown_timeout,  # type: ignore[arg-type]
        call_connection_made=call_connection_made,
    )
    SocketTransport(io, rawsock, ssl_protocol, extra=extra, server=server, context=context)
    return ssl_protocol._app_transport


async def start_tls(
    loop: asyncio.AbstractEventLoop,
    transport: Any,
    protocol: asyncio.BaseProtocol,
    sslcontext: Any,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.Transport:
    """asyncio's `loop.start_tls`: upgrade `transport` to TLS; return the transport `protocol` now uses."""
    if _ssl is None:
        raise RuntimeError("Python ssl module is not available")
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")

    waiter: asyncio.Future[None] = loop.create_future()
    ssl_protocol = SSLProtocol(
        loop,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]  # typeshed says int
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        call_connection_made=False,
    )
    # Pause first: data arriving before connection_made() would reach the SSL
    # protocol before it has its transport.
    transport.pause_reading()
    if server_side and isinstance(protocol, asyncio.StreamReaderProtocol):
        # A server's stream may already hold the start of the client's handshake, read
        # before start_tls() was called: it belongs to the TLS layer now, or the
        # handshake waits forever for bytes that already came (asyncio fixed this in
        # 3.14, gh-142352; looplet does it on every version).
        reader = getattr(protocol, "_stream_reader", None)
        if reader is not None and reader._buffer:
            ssl_protocol._incoming.write(reader._buffer)  # type: ignore[attr-defined]  # typeshed omits it
            reader._buffer.clear()
    transport.set_protocol(ssl_protocol)
    conmade_cb = loop.call_soon(ssl_protocol.connection_made, transport)
    resume_cb = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        conmade_cb.cancel()
        resume_cb.cancel()
        raise
    return ssl_protocol._app_transport
