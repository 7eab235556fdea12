"""DatagramTransport: UDP and Unix datagram sockets as `asyncio.DatagramTransport`.

`sendto()` tries the send at once; only when the kernel's buffer is full is the
datagram copied (so later changes to the caller's buffer cannot alter it) and
queued, with the writer registered until the queue drains. Errors of one datagram
(ICMP port unreachable surfacing as ECONNREFUSED, EMSGSIZE ...) go to the protocol's
`error_received()` and the transport stays open, as asyncio does. The invariant owned
here: the queue is non-empty exactly while the writer is registered.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc looks base classes up where they are defined
import socket
import sys
from typing import TYPE_CHECKING, Any, Final

from looplet._asyncio import LOG_THRESHOLD_FOR_CONNLOST_WRITES, set_result_unless_cancelled
from looplet._mypyc import mypyc_attr
from looplet.engine.reactor import WRITE
from looplet.transports.base import BYTES_LIKE, SocketTransportBase, logger

if TYPE_CHECKING:
    from looplet.engine.io import Io

# 3.13 sends empty datagrams and counts 8 header bytes per queued datagram;
# earlier versions drop empty ones.
_SEND_EMPTY: Final = sys.version_info >= (3, 13)
_HEADER: Final = 8 if _SEND_EMPTY else 0

#: asyncio's message for a datagram of something that is not bytes (unchanged in 3.14,
#: unlike the stream write's).
DATAGRAM_NOT_BYTES: Final = "data argument must be a bytes-like object, not {!r}"


@mypyc_attr(native_class=False)
class DatagramTransport(SocketTransportBase, asyncio.DatagramTransport):
    """A datagram socket transport, connected (`remote_addr`) or not."""

    def __init__(
        self,
        io: Io,
        sock: socket.socket,
        protocol: Any,
        address: Any = None,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(io, sock, protocol, extra, None)
        self._address = address
        loop = io.loop
        loop.call_soon(self._state.protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def _read_ready(self) -> None:
        state = self._state
        if state.conn_lost:
            return
        view = state.read_buffer
        try:
            nbytes, addr = state.file.recvfrom_into(view)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            state.protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            state.protocol.datagram_received(view[:nbytes].tobytes(), addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram to `addr` (or to the connected peer when `addr` is None)."""
        state = self._state
        if type(data) is not bytes and not isinstance(data, BYTES_LIKE):
            raise TypeError(DATAGRAM_NOT_BYTES.format(type(data).__name__))
        if not data and not _SEND_EMPTY:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if state.conn_lost and self._address:
            if state.conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            state.conn_lost += 1
            return
        if not state.buffer:
            try:
                self._send(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                state.io.add(state.fd, WRITE, self._sendto_ready)
            except OSError as exc:
                state.protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        state.buffer.append((bytes(data), addr))
        state.buffer_size += len(data) + _HEADER
        self._maybe_pause_protocol()

    def _send(self, data: Any, addr: Any) -> None:
        sock = self._state.file
        assert sock is not None
        if self._extra["peername"]:
            sock.send(data)
        else:
            sock.sendto(data, addr)

    def _sendto_ready(self) -> None:
        state = self._state
        while state.buffer:
            data, addr = state.buffer.popleft()
            state.buffer_size -= len(data) + _HEADER
            try:
                self._send(data, addr)
            except (BlockingIOError, InterruptedError):
                state.buffer.appendleft((data, addr))
                state.buffer_size += len(data) + _HEADER
                break
            except OSError as exc:
                state.protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()  # may queue more
        if not state.buffer:
            state.io.remove(state.fd, WRITE)
            if state.closing:
                self._call_connection_lost(None)
