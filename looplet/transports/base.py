"""SocketTransportBase: what every socket transport shares.

Extra info (write flow control comes from flow.py), `close`/`abort`, fatal errors, and the one way a transport ends:
`_call_connection_lost`, which tells the protocol, drops the fd from the reactor
eagerly (the fd is about to be closed; see reactor/base.py `forget`), closes the
socket and detaches from the server. The invariant owned here: `connection_lost` is
called exactly once, after `connection_made`, and the socket is closed right after
it, whatever path (close, abort, error, peer reset) led there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
from collections import deque
from contextvars import Context
from typing import TYPE_CHECKING, Any

from looplet._asyncio import TransportSocket, server_attach, server_detach
from looplet.engine.reactor import READ, WRITE
from looplet.transports.flow import WriteFlowControl

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")


def set_result_unless_cancelled(fut: asyncio.Future[None]) -> None:
    """Complete a connection waiter unless its caller gave up on it."""
    if not fut.cancelled():
        fut.set_result(None)


class SocketTransportBase(WriteFlowControl):
    """State and lifecycle shared by stream and datagram socket transports."""

    # Read by __del__, which may run on a half-constructed transport.
    _sock: socket.socket | None = None
    max_size: int = 256 * 1024
    _extra: dict[str, Any]

    def __init__(
        self,
        io: Io,
        sock: socket.socket,
        protocol: Any,
        extra: dict[str, Any] | None,
        server: Any,
        context: Context | None = None,
    ) -> None:
        super().__init__(extra)
        self._loop: asyncio.AbstractEventLoop = io.loop
        self._io: Io = io
        #: The context every callback of this transport runs in (3.15+: a copy of the
        #: connecting caller's, or of the server's for an accepted connection); None:
        #: each registration copies the context current then, as asyncio did before.
        self._context: Context | None = context
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock = sock
        self._sock_fd: int = sock.fileno()
        self._protocol: Any = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._server = server
        #: Pending writes; `_buffer_size` is their total length, kept as we go.
        self._buffer: deque[Any] = deque()
        self._buffer_size = 0
        #: Counts writes after the connection was lost; nonzero once it is lost.
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        if server is not None:
            server_attach(server, self)
        io.claim(self._sock_fd, self)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if self._sock is not None and loop is not None and not loop.is_closed():
            info.append("read=polling" if self._io.watching(self._sock_fd, READ) else "read=idle")
            state = "polling" if self._io.watching(self._sock_fd, WRITE) else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    # -- protocol ------------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on."""
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        """The protocol events are delivered to."""
        return self._protocol

    # -- reading -------------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the connection was lost."""
        return self._closing

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        """Stop delivering received data until resume_reading()."""
        if not self.is_reading():
            return
        self._paused = True
        self._io.remove(self._sock_fd, READ)
        if self._io.debug:
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Deliver received data again after pause_reading()."""
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._io.debug:
            logger.debug("%r resumes reading", self)

    def _start_reading(self) -> None:
        if self.is_reading():
            self._io.add(self._sock_fd, READ, self._read_ready, context=self._context)

    def _read_ready(self) -> None:
        raise NotImplementedError  # each transport kind reads its own way

    # -- writing -------------------------------------------------------------------

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by write() and not yet handed to the kernel."""
        return self._buffer_size

    # -- ending --------------------------------------------------------------------

    def close(self) -> None:
        """Close after the buffered data is sent; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        self._io.remove(self._sock_fd, READ)
        if not self._buffer:
            self._conn_lost += 1
            self._io.remove(self._sock_fd, WRITE)
            self._loop.call_soon(self._call_connection_lost, None, context=self._context)

    def abort(self) -> None:
        """Close now, dropping buffered data; connection_lost(None) follows."""
        self._force_close(None)

    # No `_warn=warnings.warn` default argument (asyncio's guard against module
    # teardown at exit): mypyc cannot compile a __del__ with parameters, and the
    # transports are kept compilable although the build no longer compiles them (setup.py).
    def __del__(self) -> None:
        if self._sock is not None:
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)  # noqa: B028  # as asyncio
            self._sock.close()
            if self._server is not None:
                server_detach(self._server, self)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        # OSErrors are the peer's doing (reset, broken pipe): the protocol hears of them
        # through connection_lost(exc); anything else is a bug worth reporting.
        if isinstance(exc, OSError):
            if self._io.debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._io.remove(self._sock_fd, WRITE)
        if not self._closing:
            self._closing = True
            self._io.remove(self._sock_fd, READ)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc, context=self._context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            sock = self._sock
            if sock is not None:
                if not self._loop.is_closed():
                    self._io.forget(self._sock_fd)
                sock.close()
            self._sock = None
            self._protocol = None
            server = self._server
            if server is not None:
                server_detach(server, self)
                self._server = None
