"""The transport lifecycle: what every looplet transport shares, and the one way it ends.

`TransportBase` is one file object (a socket or a pipe) and its fd, one protocol,
reading that can be paused, `close`/`abort`, fatal
errors, and `_call_connection_lost`, which tells the protocol, drops the fd from the
reactor eagerly (the fd is about to be closed; see reactor/base.py `forget`) and
closes the file object. Transports that write add the water marks of flow.py, the
one flow control they all share. `SocketTransportBase` adds what sockets have on top: the
socket's extra info, the server an accepted connection belongs to, and the claim on
its fd that keeps `add_reader` and `sock_*` off it. A transport's per-connection state
lives in its `TransportState` record (state.py), not on the transport.

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
from typing import TYPE_CHECKING, Any, Final

from looplet._asyncio import TransportSocket, server_attach, server_detach
from looplet._mypyc import mypyc_attr
from looplet.engine.io import READ_BUFFER_SIZE
from looplet.engine.reactor import READ, WRITE
from looplet.transports.flow import WriteFlowControl
from looplet.transports.state import TransportState

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")

#: What write() and sendto() accept. A module constant: compiled, the tuple is built
#: once, not per call (mypyc looks `memoryview` up in builtins each time it is named).
BYTES_LIKE: Final = (bytes, bytearray, memoryview)


@mypyc_attr(native_class=False)
class TransportBase(asyncio.BaseTransport):
    """One fd, one protocol, and the lifecycle from `connection_made` to `connection_lost`."""

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
        # The record first: __del__ reads it, and runs even when __init__ raised.
        self._state = state = TransportState(io, context)
        super().__init__(extra)
        self._loop: asyncio.AbstractEventLoop = io.loop
        # fileno() first: if it raises, there is no file object to report as unclosed.
        state.fd = file.fileno()
        state.file = file
        self.set_protocol(protocol)

    # asyncio's transports keep these as attributes of their own, and code outside the
    # loop reads them (CPython's test_server_context reads `_paused`): read-only views
    # of the record, so the record stays their one home.
    @property
    def _paused(self) -> bool:
        return self._state.paused

    @property
    def _closing(self) -> bool:
        return self._state.closing

    @property
    def _conn_lost(self) -> int:
        return self._state.conn_lost

    @property
    def _protocol(self) -> Any:
        return self._state.protocol

    # -- protocol ------------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on."""
        state = self._state
        state.protocol = protocol
        state.protocol_connected = True

    def get_protocol(self) -> Any:
        """The protocol events are delivered to."""
        return self._state.protocol

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the connection was lost."""
        return self._state.closing

    # -- reading -------------------------------------------------------------------

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        state = self._state
        return not state.closing and not state.paused

    def pause_reading(self) -> None:
        """Stop delivering received data until resume_reading()."""
        state = self._state
        if not self.is_reading():
            return
        state.paused = True
        state.io.remove(state.fd, READ)
        if state.io.debug:
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Deliver received data again after pause_reading()."""
        state = self._state
        if state.closing or not state.paused:
            return
        state.paused = False
        self._start_reading()
        if state.io.debug:
            logger.debug("%r resumes reading", self)

    def _start_reading(self) -> None:
        state = self._state
        if self.is_reading():
            state.io.add(state.fd, READ, self._read_ready, context=state.context)

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
        state = self._state
        if state.closing:
            return
        state.closing = True
        state.io.remove(state.fd, READ)
        if not self._write_pending():
            state.conn_lost += 1
            state.io.remove(state.fd, WRITE)
            self._loop.call_soon(self._call_connection_lost, None, context=state.context)

    def abort(self) -> None:
        """Close now, dropping buffered data; connection_lost(None) follows."""
        self._force_close(None)

    # No `_warn=warnings.warn` default argument (asyncio's guard against module
    # teardown at exit): mypyc cannot compile a __del__ with parameters.
    def __del__(self) -> None:
        state = self._state
        if state.file is not None:
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)  # noqa: B028  # as asyncio
            state.file.close()
            self._detach()

    def _is_peer_error(self, exc: BaseException) -> bool:
        """Whether `exc` is the other end's doing (reset, broken pipe), not a bug."""
        return isinstance(exc, OSError)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        state = self._state
        # The peer's errors reach the protocol through connection_lost(exc); anything
        # else is a bug worth reporting.
        if self._is_peer_error(exc):
            if state.io.debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": state.protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        state = self._state
        if state.conn_lost:
            return
        self._discard_buffer()
        if not state.closing:
            state.closing = True
            state.io.remove(state.fd, READ)
        state.conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc, context=state.context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        state = self._state
        try:
            if state.protocol_connected:
                state.protocol.connection_lost(exc)
        finally:
            file = state.file
            if file is not None:
                if not self._loop.is_closed():
                    state.io.forget(state.fd)
                file.close()
            state.file = None
            state.protocol = None
            self._detach()

    def _detach(self) -> None:
        """Let go of what the transport belongs to, once its file object is closed."""


@mypyc_attr(native_class=False)
class SocketTransportBase(TransportBase, WriteFlowControl, asyncio.Transport):
    """What stream and datagram socket transports share beyond the lifecycle."""

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
        # Pending writes, with their total length kept as we go.
        self._state.buffer = deque()
        if server is not None:
            server_attach(server, self)
        io.claim(self._state.fd, self)

    def __repr__(self) -> str:
        state = self._state
        info = [type(self).__name__]
        if state.file is None:
            info.append("closed")
        elif state.closing:
            info.append("closing")
        info.append(f"fd={state.fd}")
        loop = self._loop
        if state.file is not None and loop is not None and not loop.is_closed():
            info.append("read=polling" if state.io.watching(state.fd, READ) else "read=idle")
            writing = "polling" if state.io.watching(state.fd, WRITE) else "idle"
            info.append(f"write=<{writing}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by write() and not yet handed to the kernel."""
        return self._state.buffer_size

    def _write_pending(self) -> bool:
        return bool(self._state.buffer)

    def _discard_buffer(self) -> None:
        state = self._state
        if state.buffer:
            state.buffer.clear()
            state.buffer_size = 0
            state.io.remove(state.fd, WRITE)

    def _detach(self) -> None:
        server = self._server
        if server is not None:
            server_detach(server, self)
            self._server = None
