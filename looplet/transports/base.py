"""The transport lifecycle: what every looplet transport shares, and the one way it ends.

`TransportBase` is one file object (a socket or a pipe) and its fd, one protocol,
reading that can be paused, `close`/`abort`, fatal
errors, and `_call_connection_lost`, which tells the protocol, drops the fd from the
reactor eagerly (the fd is about to be closed; see reactor/base.py `forget`) and
closes the file object. Transports that write add the water marks of flow.py, the
one flow control they all share. `SocketTransportBase` adds what sockets have on top: the
socket's extra info, the server an accepted connection belongs to, and the claim on
its fd that keeps `add_reader` and `sock_*` off it.

The invariant owned here: `connection_lost` is called exactly once, after
`connection_made`, and the file object is closed right after it, whatever path
(close, abort, error, peer reset, EOF) led there.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc looks base classes up where they are defined
import logging
import socket
import warnings
from collections import deque
from contextvars import Context
from typing import TYPE_CHECKING, Any

from looplet._asyncio import TransportSocket, server_attach, server_detach
from looplet._mypyc import mypyc_attr
from looplet.engine.io import READ_BUFFER_SIZE
from looplet.engine.reactor import READ, WRITE
from looplet.transports.flow import WriteFlowControl

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")


@mypyc_attr(native_class=False)
class TransportBase(asyncio.BaseTransport):
    """One fd, one protocol, and the lifecycle from `connection_made` to `connection_lost`."""

    # Read by __del__, which may run on a transport whose __init__ raised.
    _file: Any = None
    _fd: int = -1
    #: asyncio's name for the most one read takes: the loop's read buffer.
    max_size: int = READ_BUFFER_SIZE
    _extra: dict[str, Any]

    def __init__(
        self,
        io: Io,
        file: Any,
        protocol: Any,
        extra: dict[str, Any] | None,
        context: Context | None = None,
    ) -> None:
        super().__init__(extra)
        self._loop: asyncio.AbstractEventLoop = io.loop
        self._io: Io = io
        #: The context every callback of this transport runs in (3.15+: a copy of the
        #: connecting caller's, or of the server's for an accepted connection); None:
        #: each registration copies the context current then, as asyncio did before.
        self._context: Context | None = context
        # fileno() first: if it raises, there is no file object to report as unclosed.
        self._fd = file.fileno()
        self._file = file
        self._protocol: Any = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        #: Counts writes after the connection was lost; nonzero once it is lost.
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        #: The loop's read buffer (engine/io.py), fetched once: reads go through it.
        self._read_buffer: memoryview = io.read_buffer

    # -- protocol ------------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on."""
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        """The protocol events are delivered to."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the connection was lost."""
        return self._closing

    # -- reading -------------------------------------------------------------------

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        """Stop delivering received data until resume_reading()."""
        if not self.is_reading():
            return
        self._paused = True
        self._io.remove(self._fd, READ)
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
            self._io.add(self._fd, READ, self._read_ready, context=self._context)

    def _read_ready(self) -> None:
        raise NotImplementedError  # each transport kind reads its own way

    # -- ending --------------------------------------------------------------------

    def _write_pending(self) -> bool:
        """Whether written data waits to be sent (close() then waits for it)."""
        return False

    def _discard_buffer(self) -> None:
        """Drop what was written and not sent (abort, a fatal error); stop watching WRITE."""

    def close(self) -> None:
        """Close after the buffered data is sent; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        self._io.remove(self._fd, READ)
        if not self._write_pending():
            self._conn_lost += 1
            self._io.remove(self._fd, WRITE)
            self._loop.call_soon(self._call_connection_lost, None, context=self._context)

    def abort(self) -> None:
        """Close now, dropping buffered data; connection_lost(None) follows."""
        self._force_close(None)

    # No `_warn=warnings.warn` default argument (asyncio's guard against module
    # teardown at exit): mypyc cannot compile a __del__ with parameters.
    def __del__(self) -> None:
        if self._file is not None:
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)  # noqa: B028  # as asyncio
            self._file.close()
            self._detach()

    def _is_peer_error(self, exc: BaseException) -> bool:
        """Whether `exc` is the other end's doing (reset, broken pipe), not a bug."""
        return isinstance(exc, OSError)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        # The peer's errors reach the protocol through connection_lost(exc); anything
        # else is a bug worth reporting.
        if self._is_peer_error(exc):
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
        self._discard_buffer()
        if not self._closing:
            self._closing = True
            self._io.remove(self._fd, READ)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc, context=self._context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            file = self._file
            if file is not None:
                if not self._loop.is_closed():
                    self._io.forget(self._fd)
                file.close()
            self._file = None
            self._protocol = None
            self._detach()

    def _detach(self) -> None:
        """Let go of what the transport belongs to, once its file object is closed."""


@mypyc_attr(native_class=False)
class SocketTransportBase(TransportBase, WriteFlowControl, asyncio.Transport):
    """What stream and datagram socket transports share beyond the lifecycle."""

    _file: socket.socket | None = None
    # Read by __del__, through _detach.
    _server: Any = None

    def __init__(
        self,
        io: Io,
        sock: socket.socket,
        protocol: Any,
        extra: dict[str, Any] | None,
        server: Any,
        context: Context | None = None,
    ) -> None:
        super().__init__(io, sock, protocol, extra, context)
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
        self._server = server
        #: Pending writes; `_buffer_size` is their total length, kept as we go.
        self._buffer: deque[Any] = deque()
        self._buffer_size = 0
        if server is not None:
            server_attach(server, self)
        io.claim(self._fd, self)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._file is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fd}")
        loop = self._loop
        if self._file is not None and loop is not None and not loop.is_closed():
            info.append("read=polling" if self._io.watching(self._fd, READ) else "read=idle")
            state = "polling" if self._io.watching(self._fd, WRITE) else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by write() and not yet handed to the kernel."""
        return self._buffer_size

    def _write_pending(self) -> bool:
        return bool(self._buffer)

    def _discard_buffer(self) -> None:
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._io.remove(self._fd, WRITE)

    def _detach(self) -> None:
        server = self._server
        if server is not None:
            server_detach(server, self)
            self._server = None
