"""Pipe transports: `connect_read_pipe` and `connect_write_pipe` on looplet's reactor.

asyncio's Unix pipe transports (`unix_events._UnixReadPipeTransport` and
`_UnixWritePipeTransport`, the same on 3.11-3.13) with their behaviour kept: pipes,
FIFOs, character devices (ttys) and sockets are accepted, anything else is a
ValueError; the fd is made non-blocking; `connection_made` runs first, then reading
starts, then the waiter is woken.

The invariant owned here: `connection_lost` is called exactly once, and the pipe is
closed right after it, whichever way the transport ended (EOF, close, abort, an
error, the reader of a write pipe going away). A write pipe learns that its reader
went away by watching its own fd for readability (a pipe's write end polls readable,
with POLLERR, once the read end is closed), so an EPIPE reaches the protocol as
`connection_lost(BrokenPipeError)` without a write having to fail first.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc looks base classes up where they are defined
import errno
import logging
import os
import stat
from typing import TYPE_CHECKING, Any

from looplet._asyncio import LOG_THRESHOLD_FOR_CONNLOST_WRITES, set_result_unless_cancelled
from looplet._mypyc import mypyc_attr
from looplet.engine.reactor import READ, WRITE
from looplet.transports.base import BYTES_LIKE, TransportBase
from looplet.transports.flow import WriteFlowControl

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")


def _check_pipe(fileno: int, *, write: bool) -> None:
    mode = os.fstat(fileno).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode):
        return
    if write:
        raise ValueError("Pipe transport is only for pipes, sockets and character devices")
    raise ValueError("Pipe transport is for pipes/sockets only.")


def _describe(transport: TransportBase, direction: int) -> list[str]:
    # asyncio's pipe repr: "<_UnixReadPipeTransport fd=7 polling>".
    info = [type(transport).__name__]
    state = transport._state
    if state.file is None:
        info.append("closed")
    elif state.closing:
        info.append("closing")
    info.append(f"fd={state.fd}")
    if state.file is not None and not transport._loop.is_closed():
        info.append("polling" if state.io.watching(state.fd, direction) else "idle")
    elif state.file is not None:
        info.append("open")
    else:
        info.append("closed")
    return info


@mypyc_attr(native_class=False)
class ReadPipeTransport(TransportBase, asyncio.ReadTransport):
    """The read end of a pipe (or FIFO, tty, socket) as an asyncio ReadTransport."""

    def __init__(
        self,
        io: Io,
        pipe: Any,
        protocol: Any,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(io, pipe, protocol, extra)
        self._extra["pipe"] = pipe
        try:
            _check_pipe(self._state.fd, write=False)
        except ValueError:
            self._state.file = self._state.protocol = None
            raise
        os.set_blocking(self._state.fd, False)
        loop = io.loop
        loop.call_soon(self._state.protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        return "<{}>".format(" ".join(_describe(self, READ)))

    def _read_ready(self) -> None:
        state = self._state
        view = state.read_buffer
        try:
            nbytes = os.readv(state.fd, (view,))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if nbytes:
            state.protocol.data_received(view[:nbytes].tobytes())
            return
        if state.io.debug:
            logger.info("%r was closed by peer", self)
        state.closing = True
        state.conn_lost += 1
        state.io.remove(state.fd, READ)
        self._loop.call_soon(state.protocol.eof_received)
        self._loop.call_soon(self._call_connection_lost, None)

    def _is_peer_error(self, exc: BaseException) -> bool:
        # EIO is how a pty's reader learns that the other side hung up; any other error
        # reading a pipe is worth reporting.
        return isinstance(exc, OSError) and exc.errno == errno.EIO


@mypyc_attr(native_class=False)
class WritePipeTransport(TransportBase, WriteFlowControl, asyncio.Transport):
    """The write end of a pipe (or FIFO, character device, socket) as an asyncio WriteTransport.

    Writes go straight to the fd while nothing is buffered; what the pipe does not take
    is buffered and flushed when the fd polls writable, with the usual water marks.
    """

    def __init__(
        self,
        io: Io,
        pipe: Any,
        protocol: Any,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(io, pipe, protocol, extra)
        self._extra["pipe"] = pipe
        self._state.buffer = bytearray()
        try:
            _check_pipe(self._state.fd, write=True)
        except ValueError:
            self._state.file = self._state.protocol = None
            raise
        mode = os.fstat(self._state.fd).st_mode
        os.set_blocking(self._state.fd, False)
        loop = io.loop
        loop.call_soon(self._state.protocol.connection_made, self)
        if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
            # The write end polls readable when the read end closes: the way to hear
            # of it without writing. Watched only once connection_made() has run.
            loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = _describe(self, WRITE)
        if self._state.file is not None and not self._loop.is_closed():
            info.append(f"bufsize={self.get_write_buffer_size()}")
        return "<{}>".format(" ".join(info))

    # A write pipe reads nothing: its READ watch only hears of the reader going away.
    # These are asyncio's write pipe's answers.
    def is_reading(self) -> bool:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def _start_reading(self) -> None:
        state = self._state
        if not state.closing:
            state.io.add(state.fd, READ, self._read_ready)

    def _read_ready(self) -> None:
        state = self._state
        # The reader went away. With data still buffered, that data is lost: say so.
        if state.io.debug:
            logger.info("%r was closed by peer", self)
        if state.buffer:
            self._force_close(BrokenPipeError())
        else:
            self._force_close(None)

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by write() and not yet taken by the pipe."""
        return len(self._state.buffer)

    def _write_pending(self) -> bool:
        return bool(self._state.buffer)

    def _discard_buffer(self) -> None:
        state = self._state
        if state.buffer:
            state.buffer.clear()
            state.io.remove(state.fd, WRITE)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write `data`: at once if the pipe takes it, else buffered in order."""
        state = self._state
        if type(data) is not bytes and not isinstance(data, BYTES_LIKE):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if isinstance(data, bytearray):
            data = memoryview(data)
        if not data:
            return
        if state.conn_lost or state.closing:
            if state.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            state.conn_lost += 1
            return
        if not state.buffer:
            try:
                n = os.write(state.fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            state.io.add(state.fd, WRITE, self._write_ready)
        state.buffer += data
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        state = self._state
        try:
            n = os.write(state.fd, state.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        if n == len(state.buffer):
            state.buffer.clear()
            state.io.remove(state.fd, WRITE)
            self._maybe_resume_protocol()  # may write again
            if state.closing:
                state.io.remove(state.fd, READ)
                state.conn_lost += 1
                self._call_connection_lost(None)
            return
        if n > 0:
            del state.buffer[:n]

    def can_write_eof(self) -> bool:
        """Pipes can: closing the write end is the EOF."""
        return True

    def write_eof(self) -> None:
        """Close the pipe once the buffer is flushed; connection_lost(None) follows."""
        self.close()
