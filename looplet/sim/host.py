"""Hosts and their processes: who is running where, and the context that says so.

A `Host` is a machine of the simulation: a name, an IPv4 address, and the async
function that is its software. Each start of that software is a `Process`: the
host's first start, then one more per `Simulation.bounce`. Everything a process does
runs in a context where `current_process` names it, set once in the context its main
task is made in; tasks and callbacks copy their context from whoever made them, so
they carry it without being told.

The invariant owned here: a process's tasks and timers are kept in the order they
were made (dicts and lists, never sets), so a crash cancels them in an order that is
the same run after run; once a process is dead it never becomes alive again (a
bounce makes a new one).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
from collections.abc import Awaitable, Callable
from typing import Any, Final

#: The process whose code is running now; None outside every host (the test's own code
#: around `Simulation.run`).
current_process: contextvars.ContextVar[Process | None] = contextvars.ContextVar("looplet_sim_process", default=None)

#: The wildcard address ("every address of this host") and the loopback address.
ANY: Final = "0.0.0.0"
LOOPBACK: Final = "127.0.0.1"

#: Linux's default ephemeral range, 49152-65535 (net.ipv4.ip_local_port_range differs
#: by distribution; this is IANA's).
_EPHEMERAL_COUNT: Final = 65536 - 49152

#: What a host runs: called with no arguments at each start, and awaited.
HostMain = Callable[[], Awaitable[Any]]


class Host:
    """A simulated machine: its name, its address, its software, and its current process."""

    def __init__(self, name: str, ip: str, main: HostMain, *, client: bool) -> None:
        self.name = name
        self.ip = ip
        self.main = main
        #: A client's return ends the simulation's wait for it; a server runs until torn down.
        self.client = client
        #: The running (or last) process; None before the simulation starts it.
        self.process: Process | None = None
        #: Starts so far: 1 after the first start, 2 after the first bounce, ...
        self.incarnations = 0
        #: The whole machine is down (`crash(machine=True)`): no kernel answers.
        self.down = False
        #: The next ephemeral port handed out (Linux's default range starts here).
        self.next_port = 49152
        #: What is bound to each (address, port), TCP and UDP apart, as in a kernel: a
        #: listening socket, a datagram endpoint. "0.0.0.0" is every address of the host.
        #: (tcp.py's Listener and udp.py's UdpEndpoint, which import this module.)
        self.tcp_ports: dict[tuple[str, int], Any] = {}
        self.udp_ports: dict[tuple[str, int], Any] = {}

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ip}>"

    def alive(self) -> bool:
        """Whether the host's software is running (started, not crashed)."""
        return self.process is not None and self.process.alive

    def owns(self, ip: str) -> bool:
        """Whether `ip` is one of this host's addresses (its own, or loopback)."""
        return ip in (self.ip, LOOPBACK)

    def free_port(self, table: dict[tuple[str, int], Any]) -> int:
        """An ephemeral port nothing in `table` is bound to, the next one in turn."""
        for _ in range(_EPHEMERAL_COUNT):
            port = self.next_port
            self.next_port = port + 1 if port < 65535 else 49152
            if not any(bound_port == port for _, bound_port in table):
                return port
        raise OSError(errno.EADDRINUSE, "Address already in use")

    def check_bind(self, table: dict[tuple[str, int], Any], ip: str, port: int) -> None:
        """Raise as bind() would if (`ip`, `port`) cannot be bound in `table`.

        Raises:
            OSError: EADDRNOTAVAIL (not this host's address), EADDRINUSE (taken).
        """
        if ip != ANY and not self.owns(ip):
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        for bound_ip, bound_port in table:
            if bound_port == port and (bound_ip == ip or ANY in (ip, bound_ip)):
                raise OSError(errno.EADDRINUSE, "Address already in use")


class Process:
    """One run of a host's software: its tasks, timers, sockets and listeners."""

    def __init__(self, host: Host, incarnation: int) -> None:
        self.host = host
        self.incarnation = incarnation
        self.alive = True
        #: The context every task of this process descends from: a fresh one, so that
        #: nothing of the code that started the process (a bounce from a client) leaks in.
        self.context = contextvars.Context()
        self.context.run(current_process.set, self)
        #: Tasks made inside this process, oldest first (values unused: an ordered set).
        self.tasks: dict[asyncio.Task[Any], None] = {}
        #: Timers made inside this process, oldest first; pruned as they fire or are
        #: cancelled. A list: timer handles compare equal by deadline and callback.
        self.timers: list[asyncio.TimerHandle] = []
        self._timers_pruned_at = 0
        #: Open stream endpoints, listening sockets and datagram endpoints, oldest first
        #: (tcp.py's TcpEndpoint and Listener, udp.py's UdpEndpoint).
        self.endpoints: dict[Any, None] = {}
        self.listeners: dict[Any, None] = {}
        self.datagrams: dict[Any, None] = {}
        #: The main task, once started.
        self.main_task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else "dead"
        return f"<Process {self.host.name}#{self.incarnation} {state}>"

    def add_task(self, task: asyncio.Task[Any]) -> None:
        """Count `task` as this process's until it is done."""
        self.tasks[task] = None
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(task, None)
        if not self.alive and not task.cancelled():
            # What a dying process's task raised is part of its death (see
            # SimLoop.call_exception_handler): not "never retrieved".
            task.exception()

    def add_timer(self, timer: asyncio.TimerHandle, now: float) -> None:
        """Count `timer` as this process's, so that a crash cancels it."""
        self.timers.append(timer)
        if len(self.timers) > 2 * self._timers_pruned_at + 64:
            # A handle does not say when it has run: one whose deadline has passed has
            # run (or is about to, in this tick), and cancelling it then changes nothing.
            self.timers = [t for t in self.timers if not t.cancelled() and t.when() >= now]
            self._timers_pruned_at = len(self.timers)
