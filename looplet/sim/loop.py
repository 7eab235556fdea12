"""SimLoop: a looplet loop whose networking is the simulated network of the current host.

It is `looplet.EventLoop` with the network half of asyncio's loop API overridden: the
calls asyncio's streams and protocols make (`create_connection`, `create_server` and
asyncio.Server's `_start_serving`/`_stop_serving`, `create_datagram_endpoint`,
`getaddrinfo`, `getnameinfo`) and the low-level socket API (`sock_connect`,
`sock_sendall`, `sock_recv`, `sock_recv_into`, `sock_accept`, `sock_sendto`,
`sock_recvfrom`, `sock_recvfrom_into`, on socket objects the program makes: see
looplet/sim/lowlevel.py; and `sock=` arguments taking such sockets) act for the
process whose code is running (read from the `current_process` context variable),
and every call that would reach outside the simulation (real fds, threads,
subprocesses, pipes, Unix sockets, signals, files: `sock_sendfile`, `sendfile`)
raises NotSimulatedError naming itself. It also keeps each process's tasks and
timers, so that a crash can cancel them, and drops what a crashed process reports
while it unwinds.

The invariant owned here: no call on this loop touches the operating system's
network, files or threads on a program's behalf; a simulated program either runs on
the simulated network or is told, by name, what it asked for that is not simulated.
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import socket
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import Any, NamedTuple, NoReturn, TypeVar, TypeVarTuple, Unpack, cast

from looplet._asyncio import Server, SSLProtocol
from looplet.endpoints.connect import bind_error_text, check_connection_arguments
from looplet.endpoints.serve import check_server_arguments
from looplet.endpoints.tls import start_tls
from looplet.loop import EventLoop
from looplet.sim import names
from looplet.sim.errors import NotSimulatedError
from looplet.sim.host import Process, current_process
from looplet.sim.lowlevel import SocketState, adopt, state_of
from looplet.sim.network import Network
from looplet.sim.tcp import DEFAULT_USER_TIMEOUT, Listener, Tcp, TcpEndpoint
from looplet.sim.transports import SimDatagramTransport, SimStreamTransport
from looplet.sim.udp import Udp, UdpEndpoint
from looplet.testing import VirtualClock

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _refuse(call: str, why: str) -> NoReturn:
    raise NotSimulatedError(f"{call} is not available in a simulation: {why}")


class TLS(NamedTuple):
    """What a client connection's TLS layer needs."""

    context: Any
    server_hostname: str | None
    handshake_timeout: float | None
    shutdown_timeout: float | None


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _process_of(context: Context | None) -> Process | None:
    if context is None:
        return current_process.get()
    return context.get(current_process)


class SimLoop(EventLoop):
    """A looplet loop on a virtual clock whose sockets are the simulated network's.

    Args:
        network: the network of the simulation.
        tcp_window: the bytes a receiver holds unread before its sender waits.
        syn_timeout: seconds connect() waits for an answer before TimeoutError.
        tcp_timeout: seconds a connection's data may go unanswered before it fails
            with TimeoutError.
        shuffle_seed: the seed of the loop's shuffle of each tick's ready work.
    """

    def __init__(
        self,
        network: Network,
        *,
        tcp_window: int,
        syn_timeout: float,
        shuffle_seed: int,
        tcp_timeout: float = DEFAULT_USER_TIMEOUT,
    ) -> None:
        super().__init__(clock=VirtualClock(), shuffle_seed=shuffle_seed)
        self.network = network
        self.tcp = Tcp(network, window=tcp_window, syn_timeout=syn_timeout, user_timeout=tcp_timeout)
        self.udp = Udp(network)
        #: Tasks made outside every process (the simulation's own), oldest first.
        self.other_tasks: dict[asyncio.Task[Any], None] = {}

    def _network_process(self, call: str) -> Process:
        process = current_process.get()
        if process is None:
            raise RuntimeError(f"{call} was called outside every simulated host: call it from a host's code")
        if not process.alive:
            raise OSError(errno.ENETDOWN, f"{call}: host {process.host.name!r} has crashed")
        return process

    # -- tasks and timers belong to the process that made them ----------------------

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:  # type: ignore[override]
        """Make a task (see EventLoop.create_task) and count it as the current process's."""
        task = super().create_task(coro, **kwargs)
        process = _process_of(kwargs.get("context"))
        if process is not None:
            process.add_task(task)
        else:
            self.other_tasks[task] = None
            task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self.other_tasks.pop(task, None)

    def call_at(
        self, when: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` at loop time `when`; a crash of the current process cancels it."""
        timer = super().call_at(when, callback, *args, context=context)
        process = _process_of(context)
        if process is not None and process.alive:
            process.add_timer(timer, self.time())
        return timer

    def call_later(
        self, delay: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` after `delay` seconds; a crash of the current process cancels it."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an error, unless it comes from a crashed process unwinding.

        A dead process writes no logs: what its cancelled code raises on the way out
        (asyncio's own reports of a cancelled start_server handler on 3.11 and 3.12.1,
        a handler that fails on its aborted connection) is the crash, not a bug.
        """
        process = current_process.get()
        handle = context.get("handle")
        if process is None and handle is not None:
            # A callback that raised is reported after its context was left. (asyncio's
            # own handles, made in debug mode, have get_context() from 3.12 on; the
            # context is the slot asyncio's code reads on every version.)
            handle_context = handle.get_context() if hasattr(handle, "get_context") else handle._context
            process = handle_context.get(current_process)
        if process is not None and not process.alive:
            return
        super().call_exception_handler(context)

    # -- names ------------------------------------------------------------------------

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> names.AddrInfo:
        """Resolve `host` among the simulation's hosts (see looplet/sim/names.py)."""
        return names.getaddrinfo(self.network, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """The simulated host name of `sockaddr`'s address (the address if none)."""
        return names.getnameinfo(self.network, sockaddr)

    async def _resolve(self, host: Any, port: Any, kind: int, family: int, proto: int, flags: int) -> list[Any]:
        infos = await self.getaddrinfo(host, port, family=family, type=kind, proto=proto, flags=flags)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        return [info[4] for info in infos]

    # -- streams ----------------------------------------------------------------------

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, Any]:
        """Open a simulated TCP connection to host:port; return (transport, protocol)."""
        server_hostname = check_connection_arguments(
            self, host, ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout, all_errors
        )
        tls: TLS | None = None
        if ssl:
            if isinstance(ssl, bool):
                import ssl as ssl_module

                context = ssl_module.create_default_context()
            else:
                context = ssl
            tls = TLS(context, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            state = state_of(sock)
            if state is None or state.stream is None:
                _refuse(
                    "create_connection(sock=...)",
                    "it takes a socket connected over the simulated network (by loop.sock_connect())",
                )
            # The transport owns the connection now; the socket object is closed.
            connected = state.hand_over()
            assert isinstance(connected, TcpEndpoint)
            return await self._make_transport(connected, protocol_factory, tls)
        if host is None and port is None:
            raise ValueError("host and port was not specified and no sock specified")
        process = self._network_process("create_connection()")
        addresses = await self._resolve(host, port, socket.SOCK_STREAM, family, proto, flags)
        local = None
        if local_addr is not None:
            local_ip, local_port = local_addr[:2]
            local = (names.resolve_host(self.network, local_ip), names.resolve_port(local_port))
        errors: list[OSError] = []
        endpoint: TcpEndpoint | None = None
        for address in addresses:
            try:
                endpoint = await self.tcp.connect(process, address, local)
                break
            except OSError as exc:
                errors.append(exc)
        if endpoint is None:
            if all_errors:
                raise ExceptionGroup("create_connection failed", errors)
            if len(errors) == 1 or len({str(e) for e in errors}) == 1:
                raise errors[0]
            raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")
        return await self._make_transport(endpoint, protocol_factory, tls)

    async def _make_transport(
        self, endpoint: TcpEndpoint, protocol_factory: Callable[[], Any], tls: TLS | None = None
    ) -> tuple[asyncio.Transport, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()
        if tls is None:
            transport: Any = SimStreamTransport(self, endpoint, protocol, context=copy_context(), waiter=waiter)
        else:
            # asyncio's own TLS layer over the simulated connection, as over a socket.
            ssl_protocol = SSLProtocol(
                self,
                protocol,
                tls.context,
                waiter,
                False,
                tls.server_hostname,
                ssl_handshake_timeout=tls.handshake_timeout,  # type: ignore[arg-type]  # typeshed: int
                ssl_shutdown_timeout=tls.shutdown_timeout,  # type: ignore[arg-type]
            )
            SimStreamTransport(self, endpoint, ssl_protocol, context=copy_context())
            transport = ssl_protocol._app_transport
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> asyncio.Server:
        """Listen on host(s):port of the current host; return an asyncio Server."""
        check_server_arguments(self, ssl, keep_alive, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            self._network_process("create_server()")
            state = adopt(sock, "create_server(sock=...)", self)
            if state.kind != socket.SOCK_STREAM or state.stream is not None:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            if state.listener is None:
                state.listen()
            taken = state.hand_over()
            assert isinstance(taken, Listener)
            return await self._serve(
                [taken], protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout, start_serving
            )
        if host is None and port is None:
            raise ValueError("Neither host/port nor sock were specified")
        process = self._network_process("create_server()")
        if host == "" or host is None:
            hosts: list[Any] = [None]
        elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
            hosts = [host]
        else:
            hosts = list(host)
        addresses: list[tuple[str, int]] = []
        for one in hosts:
            for address in await self._resolve(one, port, socket.SOCK_STREAM, family, 0, flags):
                if address not in addresses:
                    addresses.append(address)
        listeners: list[Listener] = []
        try:
            for ip, number in addresses:
                try:
                    listeners.append(self.tcp.bind(process, ip, number))
                except OSError as err:
                    message = f"error while attempting to bind on address {(ip, number)!r}: {bind_error_text(err)}"
                    raise OSError(err.errno, message) from None
        except BaseException:
            for listener in listeners:
                listener.close()
            raise
        return await self._serve(
            listeners, protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout, start_serving
        )

    async def _serve(
        self,
        listeners: list[Listener],
        protocol_factory: Callable[[], Any],
        ssl: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
        start_serving: bool,
    ) -> asyncio.Server:
        # asyncio's Server holds them as sockets: it calls listen() and close() on
        # them, and the loop's _start_serving/_stop_serving, here, do the rest.
        server = Server(
            self, cast(Any, listeners), protocol_factory, ssl, backlog, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        if start_serving:
            try:
                await server.start_serving()
            except BaseException:
                server.close()
                raise
        return server

    def _start_serving(
        self,
        protocol_factory: Callable[[], Any],
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        context: Context | None = None,
    ) -> None:
        if not isinstance(sock, Listener):
            _refuse("Server.start_serving() on a real socket", "only simulated listening sockets serve")
        serving_context = context if context is not None else copy_context()

        def accept(endpoint: TcpEndpoint) -> None:
            try:
                protocol = serving_context.run(protocol_factory)
            except Exception as exc:
                self.call_exception_handler(
                    {"message": "Error on transport creation for incoming connection", "exception": exc}
                )
                endpoint.close()
                return
            if sslcontext:
                waiter = self.create_future()
                # A failed handshake closes the connection; asyncio reports it only in
                # debug mode (its _accept_connection2).
                waiter.add_done_callback(_retrieve)
                protocol = SSLProtocol(
                    self,
                    protocol,
                    sslcontext,
                    waiter,
                    True,
                    None,
                    ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]  # typeshed: int
                    ssl_shutdown_timeout=ssl_shutdown_timeout,  # type: ignore[arg-type]
                )
            SimStreamTransport(self, endpoint, protocol, context=serving_context.copy(), server=server)

        sock.serve(accept, server)

    def _stop_serving(self, sock: Any) -> None:
        sock.close()

    # -- datagrams ----------------------------------------------------------------------

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, Any]:
        """Open a simulated UDP endpoint; return (transport, protocol)."""
        if sock is not None:
            if local_addr or remote_addr or family or proto or flags or reuse_port or allow_broadcast:
                raise ValueError("socket modifier keyword arguments can not be used when sock is specified.")
            process = self._network_process("create_datagram_endpoint()")
            state = adopt(sock, "create_datagram_endpoint(sock=...)", self)
            if state.kind != socket.SOCK_DGRAM:
                raise ValueError(f"A datagram socket was expected, got {sock!r}")
            return await self._datagram_transport(state, process, protocol_factory)
        if family == getattr(socket, "AF_UNIX", None):
            _refuse("create_datagram_endpoint(family=AF_UNIX)", "Unix sockets are files, outside the simulation")
        if allow_broadcast:
            _refuse("create_datagram_endpoint(allow_broadcast=True)", "broadcast is not simulated")
        process = self._network_process("create_datagram_endpoint()")
        local = remote = None
        if local_addr is not None:
            local = (await self._resolve(local_addr[0], local_addr[1], socket.SOCK_DGRAM, family, proto, flags))[0]
        if remote_addr is not None:
            remote = (await self._resolve(remote_addr[0], remote_addr[1], socket.SOCK_DGRAM, family, proto, 0))[0]
        endpoint = self.udp.bind(process, local, remote)
        return await self._open_datagram(endpoint, protocol_factory)

    async def _datagram_transport(
        self, state: SocketState, process: Process, protocol_factory: Callable[[], Any]
    ) -> tuple[asyncio.DatagramTransport, Any]:
        if state.datagram is None:
            # An unbound socket gets an ephemeral port, as its first send would give it.
            endpoint = self.udp.bind(process, None, None)
        else:
            taken = state.hand_over()
            assert isinstance(taken, UdpEndpoint)
            endpoint = taken
        state.close()
        return await self._open_datagram(endpoint, protocol_factory)

    async def _open_datagram(
        self, endpoint: UdpEndpoint, protocol_factory: Callable[[], Any]
    ) -> tuple[asyncio.DatagramTransport, Any]:
        protocol = protocol_factory()
        transport = SimDatagramTransport(self, endpoint, protocol, context=copy_context())
        try:
            await transport.waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    # -- what leaves the simulation -----------------------------------------------------

    def run_in_executor(self, executor: Any, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> asyncio.Future[T]:
        """Refused: the function would run on another thread, outside the simulation."""
        _refuse("loop.run_in_executor()", "it runs code on another thread, outside the simulation's control")

    def set_default_executor(self, executor: Any) -> None:
        """Refused: no executor runs in a simulation."""
        _refuse("loop.set_default_executor()", "threads run outside the simulation's control")

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Refused: a real file descriptor is outside the simulation."""
        _refuse("loop.add_reader()", "it watches a real file descriptor, outside the simulated network")

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Refused: a real file descriptor is outside the simulation."""
        _refuse("loop.add_writer()", "it watches a real file descriptor, outside the simulated network")

    def remove_reader(self, fd: Any) -> bool:
        """Refused: a real file descriptor is outside the simulation."""
        _refuse("loop.remove_reader()", "no real file descriptor is watched in a simulation")

    def remove_writer(self, fd: Any) -> bool:
        """Refused: a real file descriptor is outside the simulation."""
        _refuse("loop.remove_writer()", "no real file descriptor is watched in a simulation")

    # -- the low-level socket API (looplet/sim/lowlevel.py) ------------------------------

    def _sim_socket(self, sock: Any, call: str) -> SocketState:
        self._network_process(call)
        if self._debug and isinstance(sock, socket.socket) and sock.gettimeout() != 0:
            # What asyncio checks in debug mode: its sock_* calls assume a non-blocking socket.
            raise ValueError("the socket must be non-blocking")
        return adopt(sock, call, self)

    async def sock_recv(self, sock: Any, nbytes: int) -> bytes:
        """Receive up to `nbytes` from a simulated socket; b"" at EOF."""
        state = self._sim_socket(sock, "loop.sock_recv()")
        return await state.when_ready(state.recv, nbytes)

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:
        """Receive into `buf` from a simulated socket; the number of bytes (0 at EOF)."""
        state = self._sim_socket(sock, "loop.sock_recv_into()")
        view = memoryview(buf).cast("B")
        data = await state.when_ready(state.recv, len(view))
        view[: len(data)] = data
        return len(data)

    async def sock_recvfrom(self, sock: Any, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to `bufsize` bytes; (data, source address)."""
        state = self._sim_socket(sock, "loop.sock_recvfrom()")
        return await state.when_ready(state.recvfrom, bufsize)

    async def sock_recvfrom_into(self, sock: Any, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into `buf` (at most `nbytes`); (size, source address)."""
        state = self._sim_socket(sock, "loop.sock_recvfrom_into()")
        view = memoryview(buf).cast("B")
        if nbytes < 0 or nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, source = await state.when_ready(state.recvfrom, nbytes or len(view))
        view[: len(data)] = data
        return len(data), source

    async def sock_sendall(self, sock: Any, data: Any) -> None:
        """Send all of `data` on a connected simulated socket; return once the
        simulated kernel holds it all (in flight or in the send buffer)."""
        state = self._sim_socket(sock, "loop.sock_sendall()")
        view = memoryview(data).cast("B")
        offset = 0
        while offset < len(view):
            # A full send buffer drains as the peer's window opens.
            offset += await state.when_ready(state.send, view[offset:])

    async def sock_sendto(self, sock: Any, data: Any, address: Any) -> int:
        """Send one datagram to `address` (a host's name or address, and a port)."""
        state = self._sim_socket(sock, "loop.sock_sendto()")
        return state.sendto(data, address)

    async def sock_connect(self, sock: Any, address: Any) -> None:
        """Connect a socket over the simulated network: a TCP handshake, or a UDP
        socket's remote address. The socket can then be used with the other sock_*
        calls, or given to create_connection(sock=...) (as aiohttp's client does)."""
        state = self._sim_socket(sock, "loop.sock_connect()")
        if state.kind == socket.SOCK_STREAM:
            await state.connect_stream(address)
        else:
            state.connect(address)

    async def sock_accept(self, sock: Any) -> tuple[Any, Any]:
        """Accept a connection on a listening simulated socket; (socket, address),
        the socket non-blocking, as asyncio's sock_accept gives it."""
        state = self._sim_socket(sock, "loop.sock_accept()")
        conn, address = await state.when_ready(state.accept)
        conn.setblocking(False)
        return conn, address

    async def sock_sendfile(self, sock: Any, file: Any, *args: Any, **kwargs: Any) -> int:
        """Refused: a real file is outside the simulation."""
        _refuse("loop.sock_sendfile()", "it reads a real file; send its bytes with loop.sock_sendall() instead")

    async def sendfile(self, transport: Any, file: Any, *args: Any, **kwargs: Any) -> int:
        """Refused: a real file is outside the simulation."""
        _refuse("loop.sendfile()", "it reads a real file; write its bytes to the transport instead")

    async def start_tls(  # type: ignore[override]
        self,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrade a simulated connection to TLS (asyncio's own TLS layer)."""
        return await start_tls(
            self,
            transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> tuple[asyncio.Transport, Any]:
        """Refused: Unix sockets are files, outside the simulation."""
        _refuse("loop.create_unix_connection()", "Unix sockets are files, outside the simulated network")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        """Refused: Unix sockets are files, outside the simulation."""
        _refuse("loop.create_unix_server()", "Unix sockets are files, outside the simulated network")

    async def connect_accepted_socket(
        self, protocol_factory: Callable[[], Any], sock: Any, *, ssl: Any = None, **kwargs: Any
    ) -> tuple[asyncio.Transport, Any]:
        """A transport for a connection accepted with loop.sock_accept() (plain TCP)."""
        state = state_of(sock)
        if state is None or state.stream is None:
            _refuse("loop.connect_accepted_socket()", "it takes a socket accepted over the simulated network")
        if ssl:
            _refuse("loop.connect_accepted_socket(ssl=...)", "TLS on an accepted socket is not simulated")
        self._network_process("connect_accepted_socket()")
        endpoint = state.hand_over()
        assert isinstance(endpoint, TcpEndpoint)
        return await self._make_transport(endpoint, protocol_factory)

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Refused: a pipe is outside the simulation."""
        _refuse("loop.connect_read_pipe()", "a pipe is a real file descriptor, outside the simulation")

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Refused: a pipe is outside the simulation."""
        _refuse("loop.connect_write_pipe()", "a pipe is a real file descriptor, outside the simulation")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:  # type: ignore[override]
        """Refused: a child process runs outside the simulation."""
        _refuse("loop.subprocess_exec()", "a child process runs outside the simulation's control")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:  # type: ignore[override]
        """Refused: a child process runs outside the simulation."""
        _refuse("loop.subprocess_shell()", "a child process runs outside the simulation's control")

    async def _make_subprocess_transport(self, *args: Any, **kwargs: Any) -> Any:
        _refuse("loop.subprocess_exec()", "a child process runs outside the simulation's control")

    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts) -> None:
        """Refused: signals come from outside the simulation."""
        _refuse("loop.add_signal_handler()", "signals come from outside the simulation")

    def remove_signal_handler(self, sig: int) -> bool:
        """No handler is ever installed in a simulation: False."""
        return False
