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
import errno
import logging
import os
import stat
import warnings
from typing import TYPE_CHECKING, Any, Final

from looplet._asyncio import LOG_THRESHOLD_FOR_CONNLOST_WRITES, FlowControlMixin
from looplet.engine.reactor import READ, WRITE
from looplet.transports.base import set_result_unless_cancelled

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")

_READ_MAX: Final = 256 * 1024


def _pipe_kind(fileno: int) -> tuple[bool, bool, bool]:
    mode = os.fstat(fileno).st_mode
    return stat.S_ISFIFO(mode), stat.S_ISSOCK(mode), stat.S_ISCHR(mode)


class _PipeTransportBase:
    """The pipe object, its fd, and the one way a pipe transport ends."""

    # Read by __del__, which may run on a transport whose __init__ raised.
    _pipe: Any = None
    _fileno: int = -1
    _extra: dict[str, Any]

    def __init__(self, io: Io, pipe: Any, protocol: Any) -> None:
        self._io: Io | None = io
        self._loop: asyncio.AbstractEventLoop | None = io.loop
        self._extra["pipe"] = pipe
        self._protocol: Any = protocol
        self._closing = False
        # fileno() first: if it raises, there is no pipe to report as unclosed.
        self._fileno = pipe.fileno()
        self._pipe = pipe

    def _live_io(self) -> Io:
        io = self._io
        assert io is not None, "the transport has ended"
        return io

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on."""
        self._protocol = protocol

    def get_protocol(self) -> Any:
        """The protocol events are delivered to."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""
        return self._closing

    def _describe(self, direction: int) -> list[str]:
        info = [type(self).__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        io = self._io
        if self._pipe is not None and io is not None and not io.loop.is_closed():
            polling = io.watching(self._fileno, direction)
            info.append("polling" if polling else "idle")
        elif self._pipe is not None:
            info.append("open")
        else:
            info.append("closed")
        return info

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            io = self._io
            if io is not None and not io.loop.is_closed():
                # The fd number is about to be free for reuse: the reactor must not
                # keep a registration that a new file would inherit.
                io.forget(self._fileno)
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
            self._io = None


class ReadPipeTransport(_PipeTransportBase, asyncio.ReadTransport):
    """The read end of a pipe (or FIFO, tty, socket) as an asyncio ReadTransport."""

    max_size: int = _READ_MAX

    def __init__(
        self,
        io: Io,
        pipe: Any,
        protocol: Any,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        asyncio.ReadTransport.__init__(self, extra)
        _PipeTransportBase.__init__(self, io, pipe, protocol)
        loop = io.loop
        self._paused = False
        is_fifo, is_socket, is_char = _pipe_kind(self._fileno)
        if not (is_fifo or is_socket or is_char):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is for pipes/sockets only.")
        os.set_blocking(self._fileno, False)
        loop.call_soon(self._protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter)

    def __repr__(self) -> str:
        return "<{}>".format(" ".join(self._describe(READ)))

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._paused and not self._closing

    def _start_reading(self) -> None:
        if self.is_reading():
            self._live_io().add(self._fileno, READ, self._read_ready)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fileno, self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            self._protocol.data_received(data)
            return
        io = self._live_io()
        loop = io.loop
        if io.debug:
            logger.info("%r was closed by peer", self)
        self._closing = True
        io.remove(self._fileno, READ)
        loop.call_soon(self._protocol.eof_received)
        loop.call_soon(self._call_connection_lost, None)

    def pause_reading(self) -> None:
        """Stop delivering data until resume_reading()."""
        if not self.is_reading():
            return
        self._paused = True
        io = self._live_io()
        io.remove(self._fileno, READ)
        if io.debug:
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        """Deliver data again after pause_reading()."""
        if self._closing or not self._paused:
            return
        self._paused = False
        io = self._live_io()
        io.add(self._fileno, READ, self._read_ready)
        if io.debug:
            logger.debug("%r resumes reading", self)

    def close(self) -> None:
        """Stop reading and close the pipe; connection_lost(None) follows."""
        if not self._closing:
            self._close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport") -> None:
        # EIO is how a pty's reader learns that the other side hung up: not a bug.
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            if self._live_io().debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._live_io().loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        io = self._live_io()
        loop = io.loop
        io.remove(self._fileno, READ)
        loop.call_soon(self._call_connection_lost, exc)


# asyncio's own flow-control mixin, as its write pipe uses: looplet's WriteFlowControl
# is written for single inheritance (see flow.py), and the pipes are not on the hot path.
class WritePipeTransport(_PipeTransportBase, FlowControlMixin):
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
        FlowControlMixin.__init__(self, extra, io.loop)
        _PipeTransportBase.__init__(self, io, pipe, protocol)
        loop = io.loop
        self._buffer = bytearray()
        #: Counts writes after the pipe broke; nonzero once it is broken.
        self._conn_lost = 0
        is_fifo, is_socket, is_char = _pipe_kind(self._fileno)
        if not (is_char or is_fifo or is_socket):
            self._pipe = None
            self._protocol = None
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        os.set_blocking(self._fileno, False)
        loop.call_soon(self._protocol.connection_made, self)
        if is_socket or is_fifo:
            # The write end polls readable when the read end closes: the way to hear
            # of it without writing. Watched only once connection_made() has run.
            loop.call_soon(self._watch_for_reader_gone)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter)

    def __repr__(self) -> str:
        info = self._describe(WRITE)
        if self._pipe is not None and self._loop is not None and not self._loop.is_closed():
            info.append(f"bufsize={self.get_write_buffer_size()}")
        return "<{}>".format(" ".join(info))

    def _watch_for_reader_gone(self) -> None:
        if self._pipe is not None and not self._closing:
            self._live_io().add(self._fileno, READ, self._read_ready)

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by write() and not yet taken by the pipe."""
        return len(self._buffer)

    def _read_ready(self) -> None:
        # The reader went away. With data still buffered, that data is lost: say so.
        io = self._live_io()
        if io.debug:
            logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._buffer else None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write `data`: at once if the pipe takes it, else buffered in order."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if isinstance(data, bytearray):
            data = memoryview(data)
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            self._live_io().add(self._fileno, WRITE, self._write_ready)
        self._buffer += data
        self._maybe_pause_protocol()  # type: ignore[attr-defined]  # typeshed omits the private mixin methods

    def _write_ready(self) -> None:
        io = self._live_io()
        try:
            n = os.write(self._fileno, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._buffer.clear()
            self._conn_lost += 1
            io.remove(self._fileno, WRITE)
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        if n == len(self._buffer):
            self._buffer.clear()
            io.remove(self._fileno, WRITE)
            self._maybe_resume_protocol()  # type: ignore[attr-defined]  # may write again
            if self._closing:
                io.remove(self._fileno, READ)
                self._call_connection_lost(None)
            return
        if n > 0:
            del self._buffer[:n]

    def can_write_eof(self) -> bool:
        """Pipes can: closing the write end is the EOF."""
        return True

    def write_eof(self) -> None:
        """Close the pipe once the buffer is flushed; connection_lost(None) follows."""
        if self._closing:
            return
        assert self._pipe is not None
        self._closing = True
        if not self._buffer:
            io = self._live_io()
            loop = io.loop
            io.remove(self._fileno, READ)
            loop.call_soon(self._call_connection_lost, None)

    def close(self) -> None:
        """Flush, then close the pipe (write_eof is all a write pipe needs)."""
        if self._pipe is not None and not self._closing:
            self.write_eof()

    def abort(self) -> None:
        """Close now, dropping buffered data; connection_lost(None) follows."""
        self._close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport") -> None:
        # OSErrors (EPIPE above all) are the reader's doing: the protocol hears of them
        # through connection_lost(exc); anything else is a bug worth reporting.
        if isinstance(exc, OSError):
            if self._live_io().debug:
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._live_io().loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._close(exc)

    def _close(self, exc: BaseException | None = None) -> None:
        self._closing = True
        io = self._live_io()
        loop = io.loop
        if self._buffer:
            io.remove(self._fileno, WRITE)
        self._buffer.clear()
        io.remove(self._fileno, READ)
        loop.call_soon(self._call_connection_lost, exc)
