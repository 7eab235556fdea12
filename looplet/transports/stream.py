"""SocketTransport: TCP and Unix stream sockets as `asyncio.Transport`.

Reading: the fd's reader watch stays registered while the transport reads, so a
stream of reads costs one registration, not one per read; `Protocol` gets the bytes
that arrived, read into the loop's read buffer and copied out (engine/io.py says why
not `recv()`), `BufferedProtocol` gets `recv_into()` its own buffer (no copy). Writing:
`write()` tries `send()` at once and buffers only what the kernel did not take, and
the writer is registered only while the buffer is non-empty; a buffered backlog is
flushed with one `sendmsg()` of up to IOV_MAX pieces. The invariant owned here:
`_buffer` is non-empty exactly when the writer is registered (or the transport is
being torn down), and `_buffer_size` is the sum of its lengths.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc looks base classes up where they are defined
import itertools
import os
import socket
import sys
from contextvars import Context
from typing import TYPE_CHECKING, Any, Final

from looplet._asyncio import LOG_THRESHOLD_FOR_CONNLOST_WRITES, SendfileMode, set_result_unless_cancelled
from looplet._mypyc import mypyc_attr
from looplet.engine.reactor import READ, WRITE
from looplet.transports.base import BYTES_LIKE, SocketTransportBase, logger

if TYPE_CHECKING:
    from looplet.engine.io import Io

_HAS_SENDMSG: Final = hasattr(socket.socket, "sendmsg")

#: asyncio's message for a stream write of something that is not bytes (3.14 reworded it).
NOT_BYTES: Final = (
    "data argument must be a bytes, bytearray, or memoryview object, not {!r}"
    if sys.version_info >= (3, 14)
    else "data argument must be a bytes-like object, not {!r}"
)


def _iov_max() -> int:
    # The kernel's cap on one gathered write (1024 on Linux); 16 is POSIX's minimum.
    try:
        return max(16, min(1024, os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - platform-dependent
        return 16


_IOV_MAX: Final = _iov_max()


def _bytes_like(data: Any) -> Any:
    """`data`, checked as write() checks it: bytes-like, or asyncio's TypeError."""
    if not isinstance(data, BYTES_LIKE):
        raise TypeError(NOT_BYTES.format(type(data).__name__))
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
        data = data.cast("B")  # so that len() counts bytes, in the buffer too
    return data


def _set_nodelay(sock: socket.socket) -> None:
    # Small writes go out at once instead of waiting for the peer's ACK (Nagle), as
    # asyncio does for every TCP transport.
    if (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and sock.proto in (0, socket.IPPROTO_TCP)
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@mypyc_attr(native_class=False)
class SocketTransport(SocketTransportBase):
    """A stream socket transport (TCP or Unix), as `asyncio.Transport`."""

    _start_tls_compatible = True
    _sendfile_compatible = SendfileMode.TRY_NATIVE

    def __init__(
        self,
        io: Io,
        sock: socket.socket,
        protocol: Any,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        context: Context | None = None,
    ) -> None:
        super().__init__(io, sock, protocol, extra, server, context)
        _set_nodelay(sock)
        loop = io.loop
        loop.call_soon(self._state.protocol.connection_made, self, context=context)
        # Reading starts only after connection_made() ran.
        loop.call_soon(self._start_reading, context=context)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None, context=context)

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on (Protocol or BufferedProtocol)."""
        self._state.buffered = isinstance(protocol, asyncio.BufferedProtocol)
        super().set_protocol(protocol)

    # -- reading -------------------------------------------------------------------

    def _read_ready(self) -> None:
        state = self._state
        if state.conn_lost:
            return
        if state.buffered:
            self._read_into_buffer()
            return
        view = state.read_buffer
        try:
            nbytes = state.file.recv_into(view)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        try:
            state.protocol.data_received(view[:nbytes].tobytes())
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_into_buffer(self) -> None:
        state = self._state
        try:
            buf = state.protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            nbytes = state.file.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        try:
            state.protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _on_eof(self) -> None:
        state = self._state
        if state.io.debug:
            logger.debug("%r received EOF", self)
        try:
            keep_open = state.protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # The protocol may still write; there is just nothing more to read.
            state.io.remove(state.fd, READ)
        else:
            self.close()

    # -- writing -------------------------------------------------------------------

    def write(self, data: Any) -> None:
        """Send `data`: at once if the kernel takes it, else buffered in order."""
        state = self._state
        if type(data) is not bytes:
            data = _bytes_like(data)
        if state.eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if state.empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if state.conn_lost:
            if state.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            state.conn_lost += 1
            return
        if not state.buffer:
            try:
                n: int = state.file.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            else:
                if n == len(data):
                    return
                data = memoryview(data)[n:]
            state.io.add(state.fd, WRITE, self._write_ready, context=state.context)
        state.buffer.append(data)
        state.buffer_size += len(data)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        """Write every buffer of `list_of_data`, gathered into as few sendmsg() calls as possible."""
        state = self._state
        if state.eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if state.empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if not list_of_data:
            return
        was_empty = not state.buffer
        for data in list_of_data:
            view = memoryview(data).cast("B")
            if view.nbytes:
                state.buffer.append(view)
                state.buffer_size += view.nbytes
        if not state.buffer:
            return
        if was_empty:
            self._write_ready()
            if state.buffer:
                state.io.add(state.fd, WRITE, self._write_ready, context=state.context)
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        state = self._state
        if state.conn_lost or not state.buffer:
            return
        sock = state.file
        assert sock is not None
        try:
            if _HAS_SENDMSG and len(state.buffer) > 1:
                n = sock.sendmsg(itertools.islice(state.buffer, _IOV_MAX))
            else:
                n = sock.send(state.buffer[0])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            state.io.remove(state.fd, WRITE)
            state.buffer.clear()
            state.buffer_size = 0
            self._fatal_error(exc, "Fatal write error on socket transport")
            if state.empty_waiter is not None:
                state.empty_waiter.set_exception(exc)
            return
        self._consume(n)
        self._maybe_resume_protocol()  # may write more
        if not state.buffer:
            state.io.remove(state.fd, WRITE)
            if state.empty_waiter is not None:
                state.empty_waiter.set_result(None)
            if state.closing:
                self._call_connection_lost(None)
            elif state.eof:
                sock.shutdown(socket.SHUT_WR)

    def _consume(self, nbytes: int) -> None:
        state = self._state
        buffer = state.buffer
        state.buffer_size -= nbytes
        while nbytes:
            chunk = buffer.popleft()
            size = len(chunk)
            if size <= nbytes:
                nbytes -= size
            else:
                buffer.appendleft(memoryview(chunk)[nbytes:])
                break

    def write_eof(self) -> None:
        """Half-close: send EOF once the buffered data is out; reading goes on."""
        state = self._state
        if state.closing or state.eof:
            return
        state.eof = True
        if not state.buffer:
            state.file.shutdown(socket.SHUT_WR)

    def can_write_eof(self) -> bool:
        """Stream sockets can half-close."""
        return True

    # -- ending and sendfile -------------------------------------------------------

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        state = self._state
        super()._call_connection_lost(exc)
        if state.empty_waiter is not None:
            state.empty_waiter.set_exception(ConnectionError("Connection is closed by peer"))

    def _make_empty_waiter(self) -> asyncio.Future[None]:
        state = self._state
        if state.empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        state.empty_waiter = waiter = self._loop.create_future()
        if not state.buffer:
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._state.empty_waiter = None
