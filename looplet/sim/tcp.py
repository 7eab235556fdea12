"""Simulated TCP: connections between endpoints, and the kernel's side of each socket.

A connection is two `TcpEndpoint`s that send each other segments through the network.
Each direction numbers its segments and the receiver delivers them in that order,
whatever order the network brought them in (a retransmitted segment arrives late; a
partition holds some back), so a stream keeps its order and delivers each byte once.
A receiver takes at most `window` bytes its application has not read: the sender
keeps the rest (the transport's write buffer) until acknowledgements come back, which
is how a slow reader slows a writer down.

What a peer sees follows what Linux does:

- connect() to an address with nothing listening: the host answers the SYN with a
  reset, and the caller gets ConnectionRefusedError after the round trip. No answer at
  all (a partition, no such host): TimeoutError after the SYN timeout.
- close() with everything read: the data still queued is sent, then a FIN: the peer
  reads it all, then EOF. close() with received data left unread: a reset, and the
  peer's next read fails with ConnectionResetError; so does a segment that reaches
  a socket already closed (the peer wrote after our close).
- a process that dies: its kernel closes its sockets as above (FIN, or a reset where
  data was unread), and answers later segments with resets.

The invariant owned here: an endpoint hands its application each byte the peer sent
exactly once and in order, then EOF after all of them, or a reset instead of what is
left; after a reset nothing more is handed over.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

from looplet.sim.host import ANY, LOOPBACK, Process
from looplet.sim.network import Network, Packet
from looplet.sim.sockets import Address, SimSocket

if TYPE_CHECKING:
    from looplet.sim.host import Host

#: The bytes a receiver holds for its application before the sender must wait: Linux's
#: default receive buffer (net.ipv4.tcp_rmem, 128 KiB).
DEFAULT_WINDOW: Final = 128 * 1024

#: How long a connection's unacknowledged data is retransmitted before the connection
#: fails with ETIMEDOUT: Linux's default, 15 retransmissions (net.ipv4.tcp_retries2)
#: backing off from 200 ms to at most 120 s: 0.2 * (2**10 - 1) + 6 * 120 = 924.6 s.
DEFAULT_USER_TIMEOUT: Final = 924.6

#: How long connect() waits for an answer: Linux's default, 6 SYN retransmissions
#: (net.ipv4.tcp_syn_retries) backing off from 1 s: 1+2+4+8+16+32+64 = 127 s.
DEFAULT_SYN_TIMEOUT: Final = 127.0


class StreamUser(Protocol):
    """What an endpoint tells its transport."""

    def readable(self) -> None:
        """Data or EOF arrived in order and waits in the endpoint."""

    def sent(self) -> None:
        """Some of the unsent data went out (the write buffer shrank)."""

    def reset(self, exc: OSError) -> None:
        """The connection was reset: nothing more will come or go."""


class Tcp:
    """The simulation's TCP: binding, connecting, and the settings every endpoint shares."""

    def __init__(
        self, network: Network, *, window: int, syn_timeout: float, user_timeout: float = DEFAULT_USER_TIMEOUT
    ) -> None:
        self.network = network
        self.window = window
        self.syn_timeout = syn_timeout
        self.user_timeout = user_timeout

    def bind(self, process: Process, ip: str, port: int) -> Listener:
        """A listening socket (not listening yet) bound to (`ip`, `port`) on `process`'s host.

        Raises:
            OSError: EADDRNOTAVAIL, EADDRINUSE, as bind() would.
        """
        host = process.host
        table = host.tcp_ports
        if port == 0:
            port = host.free_port(table)
        host.check_bind(table, ip, port)
        listener = Listener(self, process, (ip, port))
        table[(ip, port)] = listener
        process.listeners[listener] = None
        return listener

    async def connect(self, process: Process, remote: Address, local: Address | None = None) -> TcpEndpoint:
        """Open a connection from `process` to `remote`; return the established endpoint.

        Raises:
            ConnectionRefusedError: nothing listens at `remote`.
            TimeoutError: no answer within the SYN timeout.
            OSError: `local` cannot be bound.
        """
        host = process.host
        ip, _ = remote
        dst = host if host.owns(ip) else self.network.by_ip.get(ip)
        if local is not None:
            local_ip, local_port = local
            if local_ip == ANY:
                local_ip = LOOPBACK if ip == LOOPBACK else host.ip
            if local_port == 0:
                local_port = host.free_port(host.tcp_ports)
            host.check_bind(host.tcp_ports, local_ip, local_port)
        else:
            local_ip = LOOPBACK if ip == LOOPBACK else host.ip
            local_port = host.free_port(host.tcp_ports)
        endpoint = TcpEndpoint(self, process, (local_ip, local_port), remote)
        endpoint.state = "syn-sent"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        endpoint.waiter = waiter
        timer = self.network.call_later(self.syn_timeout, endpoint.syn_timed_out)
        if dst is not None:
            self.network.transmit(Packet(host, dst, "syn", 0, partial(self._syn_arrived, dst, endpoint), reliable=True))
        try:
            await waiter
        except BaseException:
            # Refused, timed out, or cancelled (then a SYN-ACK that comes later finds
            # nobody and is reset): the socket is closed.
            endpoint.close()
            raise
        finally:
            timer.cancel()
        return endpoint

    def _syn_arrived(self, host: Host, client: TcpEndpoint) -> None:
        ip, port = client.remote
        listener = host.tcp_ports.get((ip, port)) or host.tcp_ports.get((ANY, port))
        if listener is None or not listener.listening:
            self.network.transmit(Packet(host, client.host, "rst", 0, client.rst_arrived, reliable=True))
            return
        server = TcpEndpoint(self, listener.process, (ip, port), client.local)
        server.state = "syn-received"
        server.peer = client
        server.listener = listener
        listener.half_open.append(server)
        self.network.transmit(Packet(host, client.host, "syn-ack", 0, partial(client.syn_acked, server), reliable=True))


class Listener(SimSocket):
    """A bound stream socket: listening once asyncio's Server calls listen(), accepting while it serves."""

    def __init__(self, tcp: Tcp, process: Process, local: Address) -> None:
        super().__init__(socket.SOCK_STREAM, local)
        self.tcp = tcp
        self.process = process
        self.listening = False
        #: What accepts a connection while the socket serves (the loop's `_start_serving`).
        self.accept: Any = None
        #: The asyncio Server this socket belongs to, if any (a crash closes it).
        self.server: Any = None
        #: Told when a connection joins the backlog or the socket closes: a simulated
        #: socket object's state (lowlevel.py), whose sock_accept waits for it.
        self.notify: Callable[[], None] | None = None
        #: Connections whose handshake is under way, and established ones not yet accepted.
        self.half_open: list[TcpEndpoint] = []
        self.backlog: deque[TcpEndpoint] = deque()

    def listen(self, backlog: int = 128) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        self.listening = True

    def serve(self, accept: Any, server: Any) -> None:
        """Accept connections with `accept(endpoint)` from now on, those waiting first."""
        self.accept = accept
        self.server = server
        while self.backlog and not self.closed:
            accept(self.backlog.popleft())

    def established(self, endpoint: TcpEndpoint) -> None:
        if endpoint in self.half_open:
            self.half_open.remove(endpoint)
        if self.closed:
            endpoint.send_rst()
            endpoint.enter_closed()
        elif self.accept is not None:
            self.accept(endpoint)
        else:
            self.backlog.append(endpoint)
            if self.notify is not None:
                self.notify()

    def close(self, *, silently: bool = False) -> None:
        """Stop listening; connections not accepted yet are reset (or, `silently`,
        as when the machine goes down, just gone)."""
        if self.closed:
            return
        super().close()
        self.listening = False
        self.accept = None
        host = self.process.host
        if host.tcp_ports.get(self.local) is self:
            del host.tcp_ports[self.local]
        self.process.listeners.pop(self, None)
        # Connections the kernel completed and nobody accepted die with the socket.
        for endpoint in [*self.half_open, *self.backlog]:
            if not silently:
                endpoint.send_rst()
            endpoint.enter_closed()
        self.half_open.clear()
        self.backlog.clear()
        notify, self.notify = self.notify, None
        if notify is not None:
            notify()


class TcpEndpoint:
    """One end of a connection: the kernel's send and receive queues for one socket."""

    def __init__(self, tcp: Tcp, process: Process, local: Address, remote: Address) -> None:
        self.tcp = tcp
        self.network = tcp.network
        self.process = process
        self.host = process.host
        self.local = local
        self.remote = remote
        #: "syn-sent", "syn-received", "established" or "closed" (nothing more in or out).
        self.state = "new"
        self.peer: TcpEndpoint | None = None
        self.listener: Listener | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.user: StreamUser | None = None
        #: The socket was closed by its application (or its process died).
        self.app_closed = False
        # Sending: bytes not sent yet; bytes sent, and acknowledged as read by the peer.
        self.unsent: deque[bytes] = deque()
        self.unsent_size = 0
        self.sent_bytes = 0
        self.acked_bytes = 0
        self._next_seq = 0
        self.write_shut = False
        self.fin_sent = False
        # Receiving: the next segment number due, those that came early, and what
        # came in order and waits for the application (bytes, then None for EOF).
        self._expected = 0
        self._early: dict[int, tuple[str, bytes]] = {}
        self.received: deque[bytes | None] = deque()
        self.received_size = 0
        self.consumed = 0
        #: `consumed` as the peer last heard it (see read()).
        self.announced = 0
        self.peer_fin = False
        #: A reset that arrived ahead of segments sent before it: their count.
        self._reset_after: int | None = None
        #: Running while a segment of ours waits at a partition or hold (the user timeout).
        self._stall_timer: asyncio.TimerHandle | None = None
        process.endpoints[self] = None

    def __repr__(self) -> str:
        return f"<TcpEndpoint {self.local[0]}:{self.local[1]} -> {self.remote[0]}:{self.remote[1]} {self.state}>"

    # -- the handshake ----------------------------------------------------------------

    def syn_acked(self, server: TcpEndpoint) -> None:
        if self.state != "syn-sent":
            # connect() gave up (cancelled, timed out): the kernel resets the stray.
            self._transmit_rst(server)
            return
        self.peer = server
        self.state = "established"
        self._send_segment("establish", b"")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.waiter = None

    def syn_timed_out(self) -> None:
        if self.state != "syn-sent":
            return
        self.enter_closed()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(OSError(errno.ETIMEDOUT, f"Connect call failed {self.remote}"))
        self.waiter = None

    # -- sending ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue `data`; it goes out as the peer's window allows."""
        self.unsent.append(data)
        self.unsent_size += len(data)
        self._pump()

    def shutdown_write(self) -> None:
        """Send a FIN once everything queued is sent."""
        self.write_shut = True
        self._pump()

    def discard_unsent(self) -> None:
        self.unsent.clear()
        self.unsent_size = 0

    def _pump(self) -> None:
        if self.state != "established" or self.peer is None:
            return
        window = self.tcp.window
        progressed = False
        while self.unsent and self.sent_bytes - self.acked_bytes < window:
            room = window - (self.sent_bytes - self.acked_bytes)
            head = self.unsent[0]
            if len(head) <= room:
                chunk = self.unsent.popleft()
            else:
                chunk, self.unsent[0] = head[:room], head[room:]
            self.unsent_size -= len(chunk)
            self.sent_bytes += len(chunk)
            self._send_segment("data", chunk)
            progressed = True
        if not self.unsent and self.write_shut and not self.fin_sent:
            self.fin_sent = True
            self._send_segment("fin", b"")
            self._maybe_finished()
        if progressed and self.user is not None:
            self.user.sent()

    def _send_segment(self, kind: str, payload: bytes) -> None:
        peer = self.peer
        assert peer is not None
        seq = self._next_seq
        self._next_seq += 1
        # Every segment acknowledges what this side's application has read, as a TCP
        # segment carries its ACK and window.
        self.announced = self.consumed
        deliver = partial(peer.segment_arrived, seq, kind, payload, self.consumed)
        self.network.transmit(Packet(self.host, peer.host, kind, len(payload), deliver, reliable=True, sender=self))

    def stalled(self) -> None:
        if self._stall_timer is None and self.state != "closed":
            self._stall_timer = self.network.call_later(self.tcp.user_timeout, self._timed_out)

    def unstalled(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _timed_out(self) -> None:
        # Retransmissions went unanswered for the user timeout: the kernel gives up on
        # the connection without telling the peer (it cannot reach it).
        self._stall_timer = None
        if self.state == "closed":
            return
        self.network.forget(self)
        self.enter_closed(keep_received=True)
        # The transport keeps its user link until it closes the socket: a crash before
        # then must still find it.
        if self.user is not None:
            self.user.reset(TimeoutError(errno.ETIMEDOUT, "Connection timed out"))

    def send_rst(self) -> None:
        peer = self.peer
        if peer is not None and self.state != "closed":
            self._transmit_rst(peer)

    def _transmit_rst(self, peer: TcpEndpoint) -> None:
        # The reset follows the segments sent before it (a receiver takes a reset only
        # at the sequence number it expects next, RFC 5961), whatever order they arrive in.
        deliver = partial(peer.rst_arrived, self._next_seq)
        self.network.transmit(Packet(self.host, peer.host, "rst", 0, deliver, reliable=True))

    def ack_arrived(self, consumed: int) -> None:
        if self.state == "closed":
            return
        if consumed > self.acked_bytes:
            self.acked_bytes = consumed
            self._pump()

    # -- receiving --------------------------------------------------------------------

    def segment_arrived(self, seq: int, kind: str, payload: bytes, ack: int = 0) -> None:
        if self.state == "closed":
            # No socket for it any more: the kernel answers with a reset.
            self._reply_rst()
            return
        if self.app_closed and kind == "data":
            # Data for a socket its application closed: Linux resets the connection.
            self.send_rst()
            self.enter_closed()
            return
        if ack > self.acked_bytes:
            self.ack_arrived(ack)
        self._early[seq] = (kind, payload)
        arrived = False
        while self._expected in self._early:
            kind, payload = self._early.pop(self._expected)
            self._expected += 1
            if kind == "establish":
                self.state = "established"
                if self.listener is not None:
                    self.listener.established(self)
                    self.listener = None
                self._pump()
            elif kind == "data":
                self.received.append(payload)
                self.received_size += len(payload)
                arrived = True
            elif kind == "fin":
                self.peer_fin = True
                self.received.append(None)
                arrived = True
        if arrived and self.user is not None:
            self.user.readable()
        if self._reset_after is not None and self._expected >= self._reset_after:
            self.rst_arrived(self._reset_after)
            return
        self._maybe_finished()

    def _reply_rst(self) -> None:
        peer = self.peer
        if peer is not None:
            self._transmit_rst(peer)

    def rst_arrived(self, after: int = 0) -> None:
        """A reset arrived; it takes effect once the `after` segments sent before it have."""
        if self.state == "closed":
            return
        if self._expected < after:
            self._reset_after = after
            return
        was = self.state
        waiter = self.waiter
        self.enter_closed(keep_received=True)
        if was == "syn-sent":
            if waiter is not None and not waiter.done():
                waiter.set_exception(OSError(errno.ECONNREFUSED, f"Connect call failed {self.remote}"))
            self.waiter = None
            return
        if self.listener is not None and self in self.listener.half_open:
            self.listener.half_open.remove(self)
        if self.user is not None:
            self.user.reset(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))

    def read(self, limit: int) -> bytes:
        """Take up to `limit` bytes that arrived in order (b"": none, or EOF is next)."""
        taken: list[bytes] = []
        size = 0
        received = self.received
        while received and received[0] is not None and size < limit:
            head = received[0]
            assert head is not None
            if size + len(head) <= limit:
                received.popleft()
            else:
                head, received[0] = head[: limit - size], head[limit - size :]
            taken.append(head)
            size += len(head)
        if not size:
            return b""
        self.received_size -= size
        self.consumed += size
        peer = self.peer
        if peer is not None and self.state != "closed" and self.consumed - self.announced >= self.tcp.window // 2:
            # The window opened by half since the peer last heard: a window update of
            # its own, as Linux sends one (tcp_cleanup_rbuf). A smaller opening waits
            # for this side's next segment, which carries it.
            self.announced = self.consumed
            deliver = partial(peer.ack_arrived, self.consumed)
            self.network.transmit(Packet(self.host, peer.host, "ack", 0, deliver, reliable=True))
        return taken[0] if len(taken) == 1 else b"".join(taken)

    def at_eof(self) -> bool:
        """Whether EOF is next: every byte before the peer's FIN was read."""
        return bool(self.received) and self.received[0] is None

    def take_eof(self) -> None:
        if self.at_eof():
            self.received.popleft()

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """The application closed the socket: FIN after what is queued, or a reset if
        received data was left unread."""
        if self.app_closed:
            return
        self.app_closed = True
        self.user = None
        self.process.endpoints.pop(self, None)
        if self.state == "closed":
            return
        if self.received_size or any(kind == "data" for kind, _ in self._early.values()):
            self.send_rst()
            self.enter_closed()
            return
        if self.state == "syn-sent":
            self.enter_closed()
            return
        self.shutdown_write()
        self._maybe_finished()

    def vanish(self) -> None:
        """The machine went down: the socket is gone without a word to the peer."""
        self.app_closed = True
        self.user = None
        self.process.endpoints.pop(self, None)
        if self.state == "syn-sent" and self.waiter is not None and not self.waiter.done():
            self.waiter.cancel()
        self.enter_closed()

    def _maybe_finished(self) -> None:
        if self.app_closed and self.fin_sent and self.peer_fin and self.state != "closed":
            self.enter_closed()

    def enter_closed(self, *, keep_received: bool = False) -> None:
        """Nothing more in or out: drop the queues (a reset leaves what arrived
        before it to be read, and no EOF: the reset takes its place)."""
        self.state = "closed"
        self.unstalled()
        self.unsent.clear()
        self.unsent_size = 0
        if keep_received:
            self.received = deque(item for item in self.received if item is not None)
        else:
            self.received.clear()
            self.received_size = 0
        self._early.clear()
        if self.app_closed:
            self.process.endpoints.pop(self, None)
