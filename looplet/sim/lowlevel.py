"""Socket objects on the simulated network: asyncio's low-level socket API (`sock_*`).

A program written against stock asyncio makes a `socket.socket`, sets it non-blocking
and hands it to `loop.sock_connect`, `sock_sendall`, `sock_recv`, `sock_accept`,
`sock_sendto`, ...; it binds and listens on it, shuts it down and closes it itself. In a
simulation that socket must reach the simulated network and never the real one, and
the object must stay a `socket.socket` (programs check `isinstance`, and asyncio's
`create_connection(sock=...)` takes it).

How: the first time a host's code uses a fresh real AF_INET socket with the simulation
(a `sock_*` call of the loop, or `bind`, `listen`, `connect`, `connect_ex`, `sendto`
on the socket, which looplet/sim/intercept.py routes here while a run is on),
`adopt` closes its real file descriptor at once and changes the object's class to
`SimulatedSocket`, a subclass of `socket.socket` with no slots of its own (so the
two layouts are the same and CPython allows the `__class__` assignment). Every method
of that class that would reach the kernel acts on a `SocketState` instead: the
simulated kernel's side of the socket, which owns a TCP endpoint, a listening socket or
a UDP endpoint (tcp.py, udp.py) and is told by them when data, a reset or a
connection arrives.

Why this route and not another: the loop cannot hook a real socket's `close()`,
`shutdown()` or `getpeername()`, and a program calls those on the very object it
made; a wrapper or proxy would be a different object from the one the program holds.
Keeping the real descriptor open (unconnected) would let `fileno()` lie about a
connection the kernel does not have, and hold a real fd for as long as the program
forgets to close; with it closed, `fileno()` is -1, as for a closed socket, and code
that goes around the loop with it (`select`, `add_reader`) fails loudly instead of
silently waiting on nothing. Converting at `bind()` rather than at the first loop
call means that no real port is ever bound: two simulated hosts can both listen on
port 8000, a port 0 becomes a simulated ephemeral port (the same for one seed), and a
host may bind its simulated address or name.

The calls keep the semantics of a non-blocking socket on Linux: `send` takes what
fits in the send buffer (the TCP window's worth of bytes not yet sent) and raises
BlockingIOError when nothing fits; `recv` returns what arrived, `b""` at EOF, and
raises BlockingIOError when nothing did; a reset is raised once (ECONNRESET, or EPIPE
when the peer had already sent its FIN, as Linux reports it), after the data that
came before it, and the socket then reads as at EOF and writes fail with EPIPE. On a
socket left in blocking mode, a call that would wait raises NotSimulatedError instead
(it would stop every host, which share one thread); a call that can complete at once
completes. The loop's `sock_*` coroutines are these calls retried whenever the state
wakes its waiters, as asyncio's are over a real non-blocking socket.

The invariant owned here: a simulated socket never holds a real file descriptor and
never reaches the operating system's network; once it is closed (by the program, by
its process's crash, or by the end of the simulation) its endpoint is closed and no
waiter or callback of it remains registered anywhere.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import errno
import os
import socket
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final, NoReturn, Protocol, TypeVar, cast

from looplet.sim import names
from looplet.sim.errors import NotSimulatedError
from looplet.sim.host import ANY, LOOPBACK, Process, current_process
from looplet.sim.network import Network
from looplet.sim.sockets import Address
from looplet.sim.tcp import Listener, Tcp, TcpEndpoint
from looplet.sim.udp import Udp, UdpEndpoint

T = TypeVar("T")


class SimLoop(Protocol):
    """What a simulated socket uses of the loop (loop.py's SimLoop, which imports this
    module to serve its `sock_*` calls)."""

    network: Network
    tcp: Tcp
    udp: Udp

    def create_future(self) -> asyncio.Future[Any]: ...


#: The kernel side of every simulated socket object, by the object (weakly: a socket the
#: program drops takes its state with it; the state never refers back to the object).
_states: Final[weakref.WeakKeyDictionary[socket.socket, SocketState]] = weakref.WeakKeyDictionary()

#: Linux's largest backlog by default (net.core.somaxconn), what listen() with none uses.
_SOMAXCONN: Final = 4096


def _error(code: int) -> OSError:
    # OSError(errno, strerror) picks the subclass (BrokenPipeError, ...), as the kernel's would.
    return OSError(code, os.strerror(code))


def _would_block() -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def _refuse(call: str, why: str) -> NoReturn:
    raise NotSimulatedError(f"{call} is not available in a simulation: {why}")


def state_of(sock: object) -> SocketState | None:
    """The simulated state of `sock`, if it is a simulated socket."""
    if type(sock) is not SimulatedSocket:
        return None
    return _states.get(cast(socket.socket, sock))


def adopt(sock: Any, call: str, loop: SimLoop | None = None) -> SocketState:
    """The simulated state of `sock`, making a fresh real socket a simulated one first.

    Raises:
        NotSimulatedError: `sock` is not a socket the simulation can take: not a
            `socket.socket` (or a subclass of it with a layout of its own), not AF_INET
            TCP or UDP, or bound or connected outside the simulation.
        OSError: EBADF, `sock` is closed.
    """
    state = state_of(sock)
    if state is not None:
        return state
    if type(sock) is not socket.socket:
        _refuse(call, f"it takes a socket.socket made by the program, not {type(sock).__name__}")
    if sock.fileno() == -1:
        raise _error(errno.EBADF)
    if sock.family != socket.AF_INET or sock.type not in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        kind = f"{getattr(sock.family, 'name', sock.family)} {getattr(sock.type, 'name', sock.type)}"
        _refuse(call, f"only AF_INET TCP and UDP sockets are simulated, not {kind}")
    try:
        bound = sock.getsockname()[1] != 0
        sock.getpeername()
        connected = True
    except OSError:
        connected = False
    if bound or connected:
        _refuse(call, "the socket was bound or connected outside the simulated network")
    if loop is None:
        loop = cast(SimLoop, asyncio.get_running_loop())
    process = current_process.get()
    if process is None:
        raise RuntimeError(f"{call} was called outside every simulated host: call it from a host's code")
    state = SocketState(loop, process, sock.type, sock.proto, sock.gettimeout())
    # No real descriptor is held from here on: the object's kernel is the simulation.
    _socket.socket.close(sock)
    sock.__class__ = SimulatedSocket
    _states[sock] = state
    return state


def _resolve(state: SocketState, address: Any, *, passive: bool = False) -> Address:
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"AF_INET address must be tuple, not {type(address).__name__}")
    host, port = address
    if not isinstance(port, int):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 65535:
        raise OverflowError("bind(): port must be 0-65535." if passive else "connect(): port must be 0-65535.")
    if passive and host in ("", None):
        return (ANY, port)
    return (names.resolve_host(state.loop.network, host), port)


class SocketState:
    """The simulated kernel's side of one socket object: what it is bound to,
    connected to or listening on, what arrived for it, and who waits for it."""

    def __init__(self, loop: SimLoop, process: Process, kind: int, proto: int, timeout: float | None) -> None:
        self.loop = loop
        self.process = process
        self.kind = kind
        self.proto = proto or (socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP)
        #: None: blocking; 0.0: non-blocking; else a timeout (a blocking call here).
        self.timeout = timeout
        self.closed = False
        #: Options set by setsockopt, by (level, option).
        self.options: dict[tuple[int, int], Any] = {}
        #: A bound stream socket, listening once listen() is called.
        self.listener: Listener | None = None
        #: A connected stream socket's endpoint.
        self.stream: TcpEndpoint | None = None
        #: A datagram socket's endpoint, once bound (explicitly or by its first send).
        self.datagram: UdpEndpoint | None = None
        #: The error the kernel holds for the next call (sk_err): a reset, a timeout,
        #: an ICMP port unreachable; reported once.
        self.error: OSError | None = None
        self.read_shut = False
        self.write_shut = False
        #: Datagrams that arrived, with their source, oldest first.
        self.inbox: deque[tuple[bytes, Address]] = deque()
        #: Futures of the loop's sock_* calls waiting for something to change.
        self._waiters: list[asyncio.Future[None]] = []

    # -- waiting ----------------------------------------------------------------------

    def wait(self) -> asyncio.Future[None]:
        """A future done at the state's next change (data, room, a connection, an error)."""
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        return waiter

    async def when_ready(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, a non-blocking operation on this state, retried at each of the
        state's changes while it raises BlockingIOError: how asyncio's sock_* calls
        wait on a real non-blocking socket."""
        while True:
            try:
                return call(*args)
            except BlockingIOError:
                await self.wait()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # What the endpoints tell their user (tcp.StreamUser, udp.DatagramUser), and a listener.

    def readable(self) -> None:
        self._wake()

    def sent(self) -> None:
        self._wake()

    def reset(self, exc: OSError) -> None:
        stream = self.stream
        if isinstance(exc, ConnectionResetError) and stream is not None and stream.peer_fin:
            # Linux reports a reset in CLOSE_WAIT (the peer's FIN came first) as EPIPE.
            exc = _error(errno.EPIPE)
        self.error = exc
        self._wake()

    def datagram_arrived(self, data: bytes, source: Address) -> None:
        self.inbox.append((data, source))
        self._wake()

    def error_arrived(self, exc: OSError) -> None:
        self.error = exc
        self._wake()

    def crash(self) -> None:
        """The process died: its kernel closes the socket."""
        self.error = ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort")
        self._release()

    # -- checks ---------------------------------------------------------------------------

    def _open(self) -> None:
        if self.closed:
            raise _error(errno.EBADF)

    def _take_error(self) -> OSError:
        error, self.error = self.error, None
        assert error is not None
        return error

    def _network(self, call: str) -> Process:
        process = self.process
        if not process.alive:
            raise OSError(errno.ENETDOWN, f"{call}: host {process.host.name!r} has crashed")
        return process

    # -- binding, listening, connecting ---------------------------------------------------

    def bind(self, address: Any) -> None:
        self._open()
        process = self._network("bind()")
        if self.listener is not None or self.stream is not None or self.datagram is not None:
            raise _error(errno.EINVAL)
        ip, port = _resolve(self, address, passive=True)
        if self.kind == socket.SOCK_STREAM:
            self.listener = self.loop.tcp.bind(process, ip, port)
            self.listener.notify = self._wake
        else:
            self._bind_datagram(process, (ip, port), None)

    def _bind_datagram(self, process: Process, local: Address | None, remote: Address | None) -> UdpEndpoint:
        endpoint = self.loop.udp.bind(process, local, remote)
        endpoint.user = self
        self.datagram = endpoint
        return endpoint

    def listen(self, backlog: int = _SOMAXCONN) -> None:
        self._open()
        process = self._network("listen()")
        if self.kind != socket.SOCK_STREAM:
            raise _error(errno.EOPNOTSUPP)
        if self.stream is not None:
            raise _error(errno.EINVAL)
        if self.listener is None:
            # listen() on an unbound socket binds it to an ephemeral port, as Linux does.
            self.listener = self.loop.tcp.bind(process, ANY, 0)
            self.listener.notify = self._wake
        self.listener.listen(backlog)

    def connect(self, address: Any) -> None:
        """A datagram socket's connect (no packet is sent); a stream socket's would wait."""
        self._open()
        process = self._network("connect()")
        if self.kind == socket.SOCK_STREAM:
            _refuse(
                "socket.connect() of a TCP socket",
                "it waits for the handshake, and every simulated host with it; use loop.sock_connect()",
            )
        remote = _resolve(self, address)
        if self.datagram is None:
            self._bind_datagram(process, None, remote)
        else:
            self.datagram.remote = remote

    async def connect_stream(self, address: Any) -> None:
        """A stream socket's connect: the handshake over the simulated network."""
        self._open()
        process = self._network("sock_connect()")
        if self.stream is not None:
            raise _error(errno.EISCONN)
        local = None
        listener = self.listener
        if listener is not None:
            if listener.listening:
                raise _error(errno.EISCONN)
            # Bound first (a chosen local port): the connection takes the address.
            local = listener.local
            listener.notify = None
            listener.close()
            self.listener = None
        remote = _resolve(self, address)
        endpoint = await self.loop.tcp.connect(process, remote, local)
        if self.closed:
            # Closed by another task while connecting: the connection goes with it.
            endpoint.close()
            raise _error(errno.EBADF)
        self.stream = endpoint
        endpoint.user = self

    def accept(self) -> tuple[SimulatedSocket, Address]:
        """A connection from the listening socket's queue (a blocking socket, as accept() gives)."""
        self._open()
        listener = self.listener
        if listener is None or not listener.listening:
            raise _error(errno.EINVAL)
        if not listener.backlog:
            raise _would_block()
        endpoint = listener.backlog.popleft()
        state = SocketState(self.loop, listener.process, socket.SOCK_STREAM, self.proto, None)
        state.stream = endpoint
        endpoint.user = state
        # A socket object with no descriptor at all: socket.socket's __init__ would open one.
        conn = _socket.socket.__new__(SimulatedSocket)
        conn._io_refs = 0  # type: ignore[attr-defined]
        conn._closed = False  # type: ignore[attr-defined]
        _states[conn] = state
        return conn, endpoint.remote

    # -- sending --------------------------------------------------------------------------

    def send(self, data: Any) -> int:
        self._open()
        view = memoryview(data).cast("B")
        if self.kind == socket.SOCK_DGRAM:
            if self.datagram is None or self.datagram.remote is None:
                raise _error(errno.EDESTADDRREQ)
            return self.sendto(view, self.datagram.remote)
        stream = self.stream
        if stream is None:
            raise _error(errno.ENOTCONN if self.listener is None or not self.listener.listening else errno.EPIPE)
        if self.error is not None:
            raise self._take_error()
        if self.write_shut or stream.write_shut or stream.state == "closed":
            raise _error(errno.EPIPE)
        if not len(view):
            return 0
        # The send buffer: as many bytes again as the window, waiting behind it.
        room = self.loop.tcp.window - stream.unsent_size
        if room <= 0:
            raise _would_block()
        chunk = bytes(view[:room])
        stream.send(chunk)
        return len(chunk)

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        offset = 0
        while True:
            offset += self.send(view[offset:])
            if offset >= len(view):
                return

    def sendto(self, data: Any, address: Any) -> int:
        self._open()
        process = self._network("sendto()")
        view = memoryview(data).cast("B")
        if self.kind == socket.SOCK_STREAM:
            if self.stream is None:
                raise _error(errno.EPIPE if self.listener is None else errno.ENOTCONN)
            return self.send(view)
        remote = _resolve(self, address)
        endpoint = self.datagram
        if endpoint is None:
            # An unbound datagram socket is bound to an ephemeral port by its first send.
            endpoint = self._bind_datagram(process, None, None)
        if self.error is not None:
            raise self._take_error()
        endpoint.send(bytes(view), remote)
        return len(view)

    # -- receiving ------------------------------------------------------------------------

    def recv(self, size: int) -> bytes:
        self._open()
        if size < 0:
            raise ValueError("negative buffersize in recv")
        if self.kind == socket.SOCK_DGRAM:
            return self.recvfrom(size)[0]
        stream = self.stream
        if stream is None:
            raise _error(errno.ENOTCONN)
        if self.read_shut or not size:
            return b""
        data = stream.read(size)
        if data or stream.at_eof():
            return data
        if self.error is not None:
            raise self._take_error()
        if stream.state == "closed":
            # The error was reported: from now on the socket reads as at EOF.
            return b""
        raise _would_block()

    def recvfrom(self, size: int) -> tuple[bytes, Address | None]:
        self._open()
        if size < 0:
            raise ValueError("negative buffersize in recvfrom")
        if self.kind == socket.SOCK_STREAM:
            return self.recv(size), None
        if self.inbox:
            data, source = self.inbox.popleft()
            # A datagram longer than the buffer is cut, the rest discarded, as recvfrom() does.
            return data[:size], source
        if self.error is not None:
            raise self._take_error()
        if self.read_shut:
            return b"", None
        raise _would_block()

    # -- shutting down and closing ----------------------------------------------------------

    def shutdown(self, how: int) -> None:
        self._open()
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise _error(errno.EINVAL)
        connected = self.stream is not None or (self.datagram is not None and self.datagram.remote is not None)
        if not connected:
            raise _error(errno.ENOTCONN)
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self.read_shut = True
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.write_shut = True
            if self.stream is not None:
                self.stream.shutdown_write()
        self._wake()

    def close(self) -> None:
        """The program closed the socket: FIN, or a reset where data was unread (tcp.py)."""
        if self.closed:
            return
        self.closed = True
        self._release()

    def hand_over(self) -> Listener | TcpEndpoint | UdpEndpoint | None:
        """Give the socket's endpoint to a transport or server (the loop's create_* with
        `sock=`), and close the socket without touching the endpoint."""
        taken: Listener | TcpEndpoint | UdpEndpoint | None = self.stream or self.listener or self.datagram
        if self.listener is not None:
            self.listener.notify = None
        self.stream = self.listener = self.datagram = None
        self.closed = True
        self._wake()
        return taken

    def _release(self) -> None:
        stream, listener, datagram = self.stream, self.listener, self.datagram
        if stream is not None:
            stream.close()
        if listener is not None:
            listener.notify = None
            listener.close()
        if datagram is not None:
            datagram.close()
        self.inbox.clear()
        # Waiters retry and find the socket closed; nothing of it stays registered.
        self._wake()

    # -- addresses and options --------------------------------------------------------------

    def getsockname(self) -> Address:
        self._open()
        if self.stream is not None:
            return self.stream.local
        if self.listener is not None:
            return self.listener.local
        if self.datagram is not None:
            ip, port = self.datagram.local
            remote = self.datagram.remote
            if ip == ANY and remote is not None:
                # A connected datagram socket has the address its route gives it.
                ip = LOOPBACK if remote[0] == LOOPBACK else self.process.host.ip
            return (ip, port)
        return (ANY, 0)

    def getpeername(self) -> Address:
        self._open()
        if self.stream is not None:
            return self.stream.remote
        if self.datagram is not None and self.datagram.remote is not None:
            return self.datagram.remote
        raise _error(errno.ENOTCONN)

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self._open()
        self.options[(level, option)] = value

    def getsockopt(self, level: int, option: int) -> Any:
        self._open()
        if level == socket.SOL_SOCKET:
            if option == socket.SO_ERROR:
                return 0 if self.error is None else self._take_error().errno
            if option == socket.SO_TYPE:
                return self.kind
            if option == socket.SO_ACCEPTCONN:
                return int(self.listener is not None and self.listener.listening)
        if (level, option) == (socket.IPPROTO_TCP, socket.TCP_NODELAY) and self.kind == socket.SOCK_STREAM:
            return int(bool(self.options.get((level, option), 0)))
        value = self.options.get((level, option), 0)
        return int(value) if isinstance(value, bool) else value


def _blocking_refusal(name: str, loop_call: str) -> NotSimulatedError:
    return NotSimulatedError(
        f"socket.{name}() is not available in a simulation on a blocking socket that would wait: "
        f"it would stop every simulated host; set it non-blocking and use {loop_call}"
    )


class SimulatedSocket(socket.socket):
    """A `socket.socket` whose kernel is the simulation (see the module's docstring).

    No slots of its own, so that a real socket.socket can become one by `__class__`
    assignment; its state lives in `_states`.
    """

    __slots__ = ()

    @property
    def _sim(self) -> SocketState:
        state = _states.get(self)
        if state is None:
            raise _error(errno.EBADF)
        return state

    def __repr__(self) -> str:
        state = _states.get(self)
        kind = "SOCK_STREAM" if state is None or state.kind == socket.SOCK_STREAM else "SOCK_DGRAM"
        text = f"<simulated socket.socket family=AF_INET, type={kind}"
        if state is None or state.closed:
            return text + " [closed]>"
        text += f", laddr={state.getsockname()}"
        with contextlib.suppress(OSError):
            text += f", raddr={state.getpeername()}"
        return text + ">"

    # What the socket is.

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET

    @property
    def type(self) -> socket.SocketKind:
        return socket.SocketKind(self._sim.kind)

    @property
    def proto(self) -> int:  # type: ignore[override]
        return self._sim.proto

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        return self._sim.timeout

    def gettimeout(self) -> float | None:
        return self._sim.timeout

    def settimeout(self, value: float | None) -> None:
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._sim.timeout = None if value is None else float(value)

    def setblocking(self, flag: bool) -> None:
        self._sim.timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._sim.timeout != 0.0

    # Addresses, options, the end.

    def getsockname(self) -> Address:
        return self._sim.getsockname()

    def getpeername(self) -> Address:
        return self._sim.getpeername()

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:  # type: ignore[override]
        self._sim.setsockopt(level, optname, value)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:  # type: ignore[override]
        return self._sim.getsockopt(level, optname)

    def shutdown(self, how: int) -> None:
        self._sim.shutdown(how)

    def close(self) -> None:
        self._closed = True  # type: ignore[attr-defined]
        state = _states.get(self)
        if state is not None:
            state.close()

    # Binding, listening, connecting, accepting.

    def bind(self, address: Any) -> None:
        self._sim.bind(address)

    def listen(self, backlog: int = _SOMAXCONN) -> None:
        self._sim.listen(backlog)

    def connect(self, address: Any) -> None:
        self._sim.connect(address)

    def connect_ex(self, address: Any) -> int:
        try:
            self._sim.connect(address)
        except NotSimulatedError:
            raise
        except OSError as exc:
            return exc.errno or 0
        return 0

    def accept(self) -> tuple[socket.socket, Address]:  # type: ignore[override]
        state = self._sim
        try:
            return state.accept()
        except BlockingIOError:
            if state.timeout != 0.0:
                raise _blocking_refusal("accept", "loop.sock_accept()") from None
            raise

    # Data.

    def _nonblocking(self, name: str, loop_call: str, call: Any, *args: Any) -> Any:
        state = self._sim
        try:
            return call(*args)
        except BlockingIOError:
            if state.timeout != 0.0:
                raise _blocking_refusal(name, loop_call) from None
            raise

    def send(self, data: Any, flags: int = 0) -> int:  # type: ignore[override]
        _no_flags("send", flags)
        return self._nonblocking("send", "loop.sock_sendall()", self._sim.send, data)  # type: ignore[no-any-return]

    def sendall(self, data: Any, flags: int = 0) -> None:  # type: ignore[override]
        _no_flags("sendall", flags)
        self._nonblocking("sendall", "loop.sock_sendall()", self._sim.sendall, data)

    def sendto(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        if len(args) == 2:
            _no_flags("sendto", args[0])
        elif len(args) != 1:
            raise TypeError(f"sendto() takes 2 or 3 arguments ({len(args) + 1} given)")
        return self._sim.sendto(data, args[-1])

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        _no_flags("recv", flags)
        return self._nonblocking("recv", "loop.sock_recv()", self._sim.recv, bufsize)  # type: ignore[no-any-return]

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        _no_flags("recv_into", flags)
        view = memoryview(buffer).cast("B")
        data = self._nonblocking("recv_into", "loop.sock_recv_into()", self._sim.recv, nbytes or len(view))
        view[: len(data)] = data
        return len(data)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        _no_flags("recvfrom", flags)
        return self._nonblocking("recvfrom", "loop.sock_recvfrom()", self._sim.recvfrom, bufsize)  # type: ignore[no-any-return]

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:  # type: ignore[override]
        _no_flags("recvfrom_into", flags)
        view = memoryview(buffer).cast("B")
        data, source = self._nonblocking(
            "recvfrom_into", "loop.sock_recvfrom_into()", self._sim.recvfrom, nbytes or len(view)
        )
        view[: len(data)] = data
        return len(data), source

    # What has no simulated meaning: refused by name.

    def detach(self) -> int:
        raise _unsupported("detach", "a simulated socket has no file descriptor to give")

    def dup(self) -> SimulatedSocket:
        raise _unsupported("dup", "a simulated socket has no file descriptor to duplicate")

    def makefile(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("makefile", "its file reads and writes block; use the loop's sock_* calls")

    def sendfile(self, *args: Any, **kwargs: Any) -> int:
        raise _unsupported("sendfile", "it reads a real file")

    def sendmsg(self, *args: Any, **kwargs: Any) -> int:
        raise _unsupported("sendmsg", "ancillary data is not simulated; use send() or sendto()")

    def recvmsg(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("recvmsg", "ancillary data is not simulated; use recv() or recvfrom()")

    def recvmsg_into(self, *args: Any, **kwargs: Any) -> Any:
        raise _unsupported("recvmsg_into", "ancillary data is not simulated; use recv_into()")


def _unsupported(name: str, why: str) -> NotSimulatedError:
    return NotSimulatedError(f"socket.{name}() is not available in a simulation: {why}")


def _no_flags(name: str, flags: int) -> None:
    if flags:
        raise _unsupported(name, f"flags ({flags!r}) are not simulated")
