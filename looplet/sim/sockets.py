"""SimSocket: what a simulated endpoint shows of itself as a socket object.

Transports hand out their socket as `get_extra_info("socket")`, and asyncio's Server
holds its listening sockets and shows them as `server.sockets`; programs read them
(`getsockname()` for the port a server got) and set options on them (aiohttp sets
TCP_NODELAY). A SimSocket answers those calls from the endpoint's addresses and keeps
the options set; it has no file descriptor (`fileno()` is -1, as for a closed socket),
and every call that would move data refuses, naming itself: the transport owns the
connection, as asyncio's does its socket. (The socket objects a program makes itself
and uses with the loop's `sock_*` calls are another thing: looplet/sim/lowlevel.py.)

The invariant owned here: a SimSocket never touches the operating system.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from looplet.sim.errors import NotSimulatedError

#: An IPv4 socket address: (host, port).
Address = tuple[str, int]


class SimSocket:
    """The socket-object face of a simulated endpoint (stream, listening, or datagram)."""

    family = socket.AF_INET

    def __init__(self, kind: int, local: Address, remote: Address | None = None) -> None:
        self.type = kind
        self.proto = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP
        self.local = local
        self.remote = remote
        self.closed = False
        #: Options set by setsockopt, by (level, option); the defaults a fresh socket reports are 0.
        self._options: dict[tuple[int, int], Any] = {}

    def __repr__(self) -> str:
        kind = "stream" if self.type == socket.SOCK_STREAM else "datagram"
        state = " closed" if self.closed else ""
        remote = f" -> {self.remote[0]}:{self.remote[1]}" if self.remote else ""
        return f"<SimSocket {kind} {self.local[0]}:{self.local[1]}{remote}{state}>"

    def fileno(self) -> int:
        return -1

    def getsockname(self) -> Address:
        return self.local

    def getpeername(self) -> Address:
        if self.remote is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self.remote

    def setsockopt(self, level: int, option: int, value: Any, optlen: int | None = None) -> None:
        self._options[(level, option)] = value

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> Any:
        value = self._options.get((level, option), 0)
        return int(value) if isinstance(value, bool) else value

    def setblocking(self, flag: bool) -> None:
        # Simulated endpoints never block the thread: nothing to change.
        pass

    def gettimeout(self) -> float | None:
        return 0.0

    def listen(self, backlog: int = 128) -> None:
        raise NotSimulatedError("SimSocket.listen(): only a simulated server's listening socket listens")

    def close(self) -> None:
        self.closed = True

    def _refuse(self, name: str) -> NotSimulatedError:
        return NotSimulatedError(
            f"socket.{name}() on a transport's socket is not available in a simulation: "
            "the transport owns the connection; read and write through the transport"
        )

    def send(self, *args: Any) -> Any:
        raise self._refuse("send")

    def sendall(self, *args: Any) -> Any:
        raise self._refuse("sendall")

    def sendto(self, *args: Any) -> Any:
        raise self._refuse("sendto")

    def recv(self, *args: Any) -> Any:
        raise self._refuse("recv")

    def recv_into(self, *args: Any) -> Any:
        raise self._refuse("recv_into")

    def recvfrom(self, *args: Any) -> Any:
        raise self._refuse("recvfrom")

    def accept(self) -> Any:
        raise self._refuse("accept")

    def connect(self, *args: Any) -> Any:
        raise self._refuse("connect")
