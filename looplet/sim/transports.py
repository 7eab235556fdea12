"""SimStreamTransport: a simulated TCP connection as an `asyncio.Transport`.

The whole public Transport API (write, writelines, write_eof, close, abort, reading
paused and resumed, write buffer limits with the protocol's pause_writing and
resume_writing, get_extra_info with peername, sockname and a socket object), for a
`Protocol` or a `BufferedProtocol`, in the order asyncio's socket transport calls
them: connection_made first, then data_received (or get_buffer/buffer_updated) as
bytes arrive, then eof_received, then connection_lost once.

The write buffer is what the connection has not sent yet because the receiver's
window is full (looplet/sim/tcp.py): a program writing faster than its peer reads
sees get_write_buffer_size() grow and pause_writing() called, as over a real socket.

The invariant owned here: `connection_lost` is called exactly once, after
`connection_made`, whatever ended the connection, and the protocol hears nothing after
it; every protocol callback runs in the transport's context (the connecting caller's,
or the server's for an accepted connection), so code it runs belongs to that host.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from contextvars import Context
from typing import TYPE_CHECKING, Any, Final, cast

from looplet._asyncio import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    TransportSocket,
    server_attach,
    server_detach,
    set_result_unless_cancelled,
)
from looplet.sim.names import resolve_host, resolve_port
from looplet.sim.sockets import SimSocket
from looplet.sim.tcp import TcpEndpoint
from looplet.transports.datagram import DATAGRAM_NOT_BYTES
from looplet.transports.flow import WriteFlowControl
from looplet.transports.stream import NOT_BYTES

if TYPE_CHECKING:
    from looplet.sim.udp import UdpEndpoint

logger = logging.getLogger("asyncio")

#: The most one data_received() call gets: looplet's read buffer size.
MAX_READ: Final = 256 * 1024


class SimStreamTransport(WriteFlowControl, asyncio.Transport):
    """One end of a simulated TCP connection, as asyncio's socket transport behaves."""

    #: loop.start_tls() may layer TLS over it (asyncio's marker for that).
    _start_tls_compatible = True

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        endpoint: TcpEndpoint,
        protocol: Any,
        *,
        context: Context,
        waiter: asyncio.Future[None] | None = None,
        server: Any = None,
    ) -> None:
        sock = SimSocket(socket.SOCK_STREAM, endpoint.local, endpoint.remote)
        # asyncio's transports turn Nagle off; programs that check see it is.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().__init__(
            {
                "peername": endpoint.remote,
                "sockname": endpoint.local,
                "socket": TransportSocket(cast(socket.socket, sock)),
            }
        )
        self._loop = loop
        self._endpoint: TcpEndpoint | None = endpoint
        self._local, self._remote = endpoint.local, endpoint.remote
        self._sock = sock
        self._context = context
        self._protocol: Any = None
        self._buffered = False
        self.set_protocol(protocol)
        self._closing = False
        self._paused = False
        #: connection_made has run: only then may data be handed over.
        self._started = False
        self._eof_written = False
        self._eof_seen = False
        #: The peer's reset, while data that came before it waits to be read.
        self._reset: OSError | None = None
        #: Nonzero once the connection is lost; counts writes made after that.
        self._conn_lost = 0
        self._server = server
        if server is not None:
            server_attach(server, self)
        #: Set by a connection lost before connection_made ran: (the exception,).
        self._lost_early: tuple[BaseException | None] | None = None
        self._waiter = waiter
        endpoint.user = self
        # One callback, not asyncio's three (connection_made, start reading, wake the
        # waiter): under the loop's seeded shuffle, callbacks queued in one tick may run
        # in any order, and these must not.
        loop.call_soon(self._start, context=context)

    def __repr__(self) -> str:
        state = "closed" if self._endpoint is None else "closing" if self._closing else "open"
        (local_ip, local_port), (remote_ip, remote_port) = self._local, self._remote
        return f"<SimStreamTransport {local_ip}:{local_port} -> {remote_ip}:{remote_port} {state}>"

    # -- protocol ------------------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on (Protocol or BufferedProtocol)."""
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

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

    def resume_reading(self) -> None:
        """Deliver received data again after pause_reading()."""
        if self._closing or not self._paused:
            return
        self._paused = False
        # On the next tick, as a real transport's reader fires after the next poll.
        self._loop.call_soon(self._deliver, context=self._context)

    def _start(self) -> None:
        try:
            self._protocol.connection_made(self)
        finally:
            self._started = True
            waiter, self._waiter = self._waiter, None
            if waiter is not None:
                set_result_unless_cancelled(waiter, None)
        if self._lost_early is not None:
            self._call_connection_lost(self._lost_early[0])
            return
        self._deliver()

    def readable(self) -> None:
        # The network's arrival callback runs in no host's context: enter ours.
        if self._started and self.is_reading():
            self._context.run(self._deliver)

    def _deliver(self) -> None:
        endpoint = self._endpoint
        while endpoint is not None and self._started and self.is_reading() and not self._eof_seen:
            if self._buffered:
                if endpoint.received_size:
                    if not self._feed_buffer(endpoint):
                        return
                    continue
            else:
                data = endpoint.read(MAX_READ)
                if data:
                    try:
                        self._protocol.data_received(data)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                        return
                    endpoint = self._endpoint
                    continue
            if self._reset is not None:
                # Everything that came before the reset was read: now the reset.
                self._force_close(self._reset)
            elif endpoint.at_eof():
                endpoint.take_eof()
                self._on_eof()
            return

    def _feed_buffer(self, endpoint: TcpEndpoint) -> bool:
        try:
            buf = memoryview(self._protocol.get_buffer(-1)).cast("B")
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return False
        data = endpoint.read(len(buf))
        buf[: len(data)] = data
        try:
            self._protocol.buffer_updated(len(data))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
            return False
        return True

    def _on_eof(self) -> None:
        self._eof_seen = True
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- writing -------------------------------------------------------------------

    def write(self, data: Any) -> None:
        """Send `data`, in order after everything written before."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(NOT_BYTES.format(type(data).__name__))
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if self._reset is not None:
            # send() on a reset connection fails: asyncio's fatal error, unread data lost.
            self._force_close(self._reset)
            return
        assert self._endpoint is not None
        self._endpoint.send(bytes(data))
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        """write() each of `list_of_data`, as one write."""
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        """Send EOF (a FIN) after the data written so far; reading goes on."""
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        if self._endpoint is not None:
            self._endpoint.shutdown_write()

    def can_write_eof(self) -> bool:
        """True: TCP can half-close."""
        return True

    def get_write_buffer_size(self) -> int:
        """Bytes written that the connection has not sent yet."""
        endpoint = self._endpoint
        return 0 if endpoint is None else endpoint.unsent_size

    def sent(self) -> None:
        self._maybe_resume_protocol()
        if self._closing and not self._conn_lost and self.get_write_buffer_size() == 0:
            self._lose(None)

    # -- ending --------------------------------------------------------------------

    def close(self) -> None:
        """Close after the buffered data is sent; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        if not self.get_write_buffer_size():
            self._lose(None)

    def abort(self) -> None:
        """Close now, dropping buffered data; connection_lost(None) follows."""
        self._force_close(None)

    def reset(self, exc: OSError) -> None:
        # The peer reset the connection: asyncio's transport reports it from recv() or
        # send() as a fatal error (not logged: the peer's doing) and closes. Data that
        # arrived before the reset is still read first, as from a kernel's queue; a
        # transport whose reading is paused notices when it reads again or writes.
        endpoint = self._endpoint
        if endpoint is not None and endpoint.received_size and not self._conn_lost:
            self._reset = exc
            if self._started and self.is_reading():
                self._context.run(self._deliver)
            return
        self._force_close(exc)

    def crash(self) -> None:
        """The process died: the kernel closes the socket; the dying code hears
        ConnectionAbortedError, so what it awaits ends as its tasks are cancelled."""
        if self._conn_lost:
            return
        self._closing = True
        self._lose(ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort"))

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        self._closing = True
        if self._endpoint is not None:
            self._endpoint.discard_unsent()
        self._lose(exc)

    def _lose(self, exc: BaseException | None) -> None:
        self._conn_lost += 1
        endpoint = self._endpoint
        if endpoint is not None:
            endpoint.close()
        if self._started:
            self._loop.call_soon(self._call_connection_lost, exc, context=self._context)
        else:
            self._lost_early = (exc,)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._endpoint = None
            self._sock.close()
            self._protocol = None
            server = self._server
            if server is not None:
                self._server = None
                server_detach(server, self)


class SimDatagramTransport(asyncio.DatagramTransport):
    """A simulated UDP endpoint, as asyncio's datagram transport behaves.

    Datagrams go out at once (the write buffer is always empty), whole or not at all.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, endpoint: UdpEndpoint, protocol: Any, *, context: Context):
        extra: dict[str, Any] = {"sockname": endpoint.local, "socket": TransportSocket(cast(socket.socket, endpoint))}
        if endpoint.remote is not None:
            extra["peername"] = endpoint.remote
        super().__init__(extra)
        self._loop = loop
        self._endpoint: UdpEndpoint | None = endpoint
        self._address = endpoint.remote
        self._context = context
        self._protocol: Any = protocol
        self._closing = False
        self._started = False
        self._conn_lost = 0
        self._lost_early: tuple[BaseException | None] | None = None
        self.waiter: asyncio.Future[None] = loop.create_future()
        endpoint.user = self
        # One callback (see SimStreamTransport): the seeded shuffle must not reorder them.
        loop.call_soon(self._start, context=context)

    def __repr__(self) -> str:
        state = "closed" if self._endpoint is None else "closing" if self._closing else "open"
        return f"<SimDatagramTransport {state}>"

    def _start(self) -> None:
        try:
            self._protocol.connection_made(self)
        finally:
            self._started = True
            set_result_unless_cancelled(self.waiter, None)
        if self._lost_early is not None:
            self._call_connection_lost(self._lost_early[0])

    def set_protocol(self, protocol: Any) -> None:
        """Deliver events to `protocol` from now on."""
        self._protocol = protocol

    def get_protocol(self) -> Any:
        """The protocol events are delivered to."""
        return self._protocol

    def is_closing(self) -> bool:
        """True once close() or abort() was called."""
        return self._closing

    def get_write_buffer_size(self) -> int:
        """0: datagrams are never buffered."""
        return 0

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send `data` as one datagram to `addr` (the connected peer if None)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(DATAGRAM_NOT_BYTES.format(type(data).__name__))
        if self._address is not None:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if addr is None:
            # What sendto() on an unconnected socket raises, reported as asyncio does.
            self._protocol.error_received(OSError(errno.EDESTADDRREQ, "Destination address required"))
            return
        assert self._endpoint is not None
        network = self._endpoint.udp.network
        address = (resolve_host(network, addr[0]), resolve_port(addr[1]))
        self._endpoint.send(bytes(data), address)

    def datagram_arrived(self, data: bytes, source: tuple[str, int]) -> None:
        if self._started and not self._closing:
            self._context.run(self._protocol.datagram_received, data, source)
        elif not self._started:
            self._loop.call_soon(self.datagram_arrived, data, source, context=self._context)

    def error_arrived(self, exc: OSError) -> None:
        if self._started and not self._closing:
            self._context.run(self._protocol.error_received, exc)

    def close(self) -> None:
        """Close; connection_lost(None) follows."""
        if self._closing:
            return
        self._closing = True
        self._lose(None)

    def abort(self) -> None:
        """Close now; connection_lost(None) follows."""
        self._closing = True
        self._lose(None)

    def crash(self) -> None:
        """The process died: the kernel closes the socket."""
        self._closing = True
        self._lose(ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort"))

    def _lose(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        self._conn_lost += 1
        if self._endpoint is not None:
            self._endpoint.close()
        if self._started:
            self._loop.call_soon(self._call_connection_lost, exc, context=self._context)
        else:
            self._lost_early = (exc,)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._endpoint = None
            self._protocol = None
