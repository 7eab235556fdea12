"""Simulation: hosts on a simulated network, run on one looplet loop from one seed.

A test declares hosts (servers, the software under test) and clients (the test's
own code, also hosts), then `run()`s: every host's main starts at time 0 on a
`SimLoop` with a virtual clock and the loop's seeded shuffle, and the run lasts until
every client has returned (the results, by name) or one has raised (that exception).
While it runs, the test steers: partitions and holds between hosts, link settings,
crashes and restarts.

A crash is a process dying while its kernel lives on: its sockets are closed as the
kernel closes a dead process's sockets (peers see FIN, or a reset where data was
unread; connects to it are refused), its timers are cancelled, and its tasks are
cancelled, so its coroutines unwind now, deterministically, rather than whenever the
garbage collector finds them; while they unwind, the process's network calls fail
with ENETDOWN and its transports report ConnectionAbortedError. A machine crash
takes the kernel down too: nothing is closed or answered until the bounce. A bounce
starts the host's main again, as a new process at the same address.

The invariant owned here: a run is a function of the seed and the program. The
loop's shuffle and the network's draws both come from the seed; hosts get their
addresses in the order they were declared; every collection iterated is ordered.
The random module is seeded from the seed for the run, for programs that draw
from it (and restored after), and the time module's clocks read the virtual clock
(looplet/sim/intercept.py). So one seed gives one run: the same interleaving, the
same bytes, the same `loop.time()` and `time.time()` at every step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from looplet.sim.errors import SeedFailure, SimulationTimeout
from looplet.sim.host import Host, HostMain, Process, current_process
from looplet.sim.intercept import intercepting
from looplet.sim.loop import SimLoop
from looplet.sim.network import Latency, LinkConfig, LogEntry, Network
from looplet.sim.tcp import DEFAULT_SYN_TIMEOUT, DEFAULT_USER_TIMEOUT, DEFAULT_WINDOW

#: How long teardown lets cancelled tasks unwind before it cancels them again
#: (virtual seconds; a task that ignores cancellation for good is left pending).
_UNWIND_TIME: Final = 60.0
_UNWIND_ROUNDS: Final = 5

#: The wall clock's reading at virtual time 0 unless told: 2025-01-01 00:00:00 UTC.
DEFAULT_EPOCH: Final = 1_735_689_600.0


def current_host() -> str | None:
    """The name of the host whose code is running, or None outside every host."""
    process = current_process.get()
    return None if process is None else process.host.name


class Simulation:
    """Several hosts in one process, on a simulated network, deterministic from `seed`.

    Args:
        seed: decides the loop's shuffle of ready work and every draw of the network.
        latency: seconds a packet takes between two hosts: fixed, or (low, high) drawn
            from the seed for each packet.
        loss: the chance a packet is lost (a datagram is gone; a TCP segment is sent
            again 200 ms later).
        bandwidth: bytes per second each direction of a link carries (None: no limit).
        duplicate: the chance a datagram arrives twice.
        syn_timeout: seconds connect() waits for an answer before TimeoutError
            (Linux's default, 127).
        tcp_timeout: seconds a TCP connection's data may wait at a partition or hold
            before the connection fails with TimeoutError (Linux's default, 924.6).
        tcp_window: bytes a TCP receiver holds unread before its sender has to wait.
        duration: virtual seconds after which an unfinished run fails with
            SimulationTimeout (a run where every client waits forever ends there too).
        epoch: the wall-clock time (seconds since 1970) at virtual time 0: while the
            simulation runs, `time.time()` is `epoch + loop.time()` (see intercept.py).
        log: keep a log of every packet's fate in `network_log`.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        latency: Latency = 0.001,
        loss: float = 0.0,
        bandwidth: float | None = None,
        duplicate: float = 0.0,
        syn_timeout: float = DEFAULT_SYN_TIMEOUT,
        tcp_timeout: float = DEFAULT_USER_TIMEOUT,
        tcp_window: int = DEFAULT_WINDOW,
        duration: float = 3600.0,
        epoch: float = DEFAULT_EPOCH,
        log: bool = False,
    ) -> None:
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if not syn_timeout > 0:
            raise ValueError(f"syn_timeout must be > 0, not {syn_timeout!r}")
        if not tcp_timeout > 0:
            raise ValueError(f"tcp_timeout must be > 0, not {tcp_timeout!r}")
        if not tcp_window > 0:
            raise ValueError(f"tcp_window must be > 0, not {tcp_window!r}")
        if not duration > 0:
            raise ValueError(f"duration must be > 0, not {duration!r}")
        if not isinstance(epoch, (int, float)) or isinstance(epoch, bool) or not 0 <= epoch < 2**33:
            raise ValueError(f"epoch must be seconds since 1970 (a number from 0 to 2**33), not {epoch!r}")
        self.seed = seed
        self.network = Network(
            seed, LinkConfig(latency=latency, loss=loss, bandwidth=bandwidth, duplicate=duplicate), log=log
        )
        self.syn_timeout = syn_timeout
        self.tcp_timeout = tcp_timeout
        self.tcp_window = tcp_window
        self.duration = duration
        self.epoch = float(epoch)
        self._hosts: list[Host] = []
        self._processes: list[Process] = []
        self._loop: SimLoop | None = None
        self._ran = False
        self._result: asyncio.Future[dict[str, Any]] | None = None
        self._returned: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Simulation seed={self.seed} hosts={[h.name for h in self._hosts]}>"

    # -- declaring hosts ------------------------------------------------------------

    def host(self, name: str, main: HostMain) -> str:
        """Add a host named `name` running `main()` (an async function of no
        arguments, called again at each bounce); return its address."""
        return self._add(name, main, client=False)

    def client(self, name: str, main: HostMain) -> str:
        """Add a client: a host whose `main()` is test code; `run()` waits for every
        client to return. Return its address."""
        return self._add(name, main, client=True)

    def _add(self, name: str, main: HostMain, *, client: bool) -> str:
        if self._ran:
            raise RuntimeError("hosts are declared before run()")
        if not isinstance(name, str) or not name:
            raise ValueError(f"a host's name is a non-empty str, not {name!r}")
        if name in self.network.hosts or name == "localhost":
            raise ValueError(f"a host named {name!r} exists already")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            raise ValueError(f"a host's name is not an address: {name!r}")
        if not callable(main):
            raise TypeError(f"a host's main is an async function of no arguments, not {main!r}")
        index = len(self._hosts)
        ip = f"10.0.{index // 254}.{index % 254 + 1}"
        host = Host(name, ip, main, client=client)
        self._hosts.append(host)
        self.network.add_host(host)
        return ip

    def lookup(self, name: str) -> str:
        """The address of the host named `name`."""
        return self.network.host(name).ip

    # -- the network --------------------------------------------------------------

    def partition(self, a: str, b: str) -> None:
        """Cut the link between hosts `a` and `b` both ways: datagrams are lost, TCP
        segments wait (and are retransmitted at `repair`), new connects time out."""
        self.network.partition(a, b)

    def partition_oneway(self, a: str, b: str) -> None:
        """Cut the link from `a` to `b` only."""
        self.network.partition(a, b, both=False)

    def repair(self, a: str, b: str) -> None:
        """Undo `partition(a, b)`: what waited is sent again."""
        self.network.repair(a, b)

    def repair_oneway(self, a: str, b: str) -> None:
        """Undo `partition_oneway(a, b)`."""
        self.network.repair(a, b, both=False)

    def hold(self, a: str, b: str) -> None:
        """Hold every packet between `a` and `b` (both ways) until `release(a, b)`."""
        self.network.hold(a, b)

    def release(self, a: str, b: str) -> None:
        """Deliver what `hold(a, b)` kept, and stop holding."""
        self.network.release(a, b)

    def set_link(
        self,
        a: str,
        b: str,
        *,
        latency: Latency | None = None,
        loss: float | None = None,
        bandwidth: float | None = None,
        duplicate: float | None = None,
    ) -> None:
        """Change the link between `a` and `b` (both ways); settings not given keep
        their current values."""
        current = self.network.config(self.network.host(a), self.network.host(b))
        given = {"latency": latency, "loss": loss, "bandwidth": bandwidth, "duplicate": duplicate}
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        self.network.configure(a, b, dataclasses.replace(current, **changes))

    @property
    def network_log(self) -> list[LogEntry]:
        """Every packet's fate, as (time, event, from, to, kind, bytes); needs `log=True`."""
        if self.network.log is None:
            raise RuntimeError("the network keeps a log only with Simulation(log=True)")
        return self.network.log

    # -- running ------------------------------------------------------------------

    @property
    def loop(self) -> SimLoop:
        """The simulation's loop (made by `run()`)."""
        if self._loop is None:
            raise RuntimeError("the simulation's loop is made by run()")
        return self._loop

    def time(self) -> float:
        """The simulation's virtual time, in seconds from its start."""
        return self.loop.time()

    def run(self) -> dict[str, Any]:
        """Run until every client returns; return their results by name, in the order
        they were declared.

        Raises:
            whatever a client (or a host's main) raised first; SimulationTimeout if the
            clients have not finished within `duration`.
        """
        if self._ran:
            raise RuntimeError("a Simulation runs once; make another for another run")
        if not any(host.client for host in self._hosts):
            raise ValueError("a simulation needs a client: run() returns when the clients do")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            # As asyncio.run() refuses: the running loop's callbacks would wait on this one.
            raise RuntimeError("Simulation.run() cannot be called while another loop is running")
        self._ran = True
        loop = SimLoop(
            self.network,
            tcp_window=self.tcp_window,
            syn_timeout=self.syn_timeout,
            tcp_timeout=self.tcp_timeout,
            shuffle_seed=self.seed,
        )
        self._loop = loop
        self.network.loop = loop
        # Programs that draw from the random module draw the same numbers for one seed;
        # the caller's random state is put back afterwards.
        saved = random.getstate()
        random.seed(f"looplet.sim.program:{self.seed}")
        try:
            # The program's clock readings are the virtual clock's, its time.sleep()
            # refused, its own sockets simulated, until the last of its code has unwound;
            # the loop's close() (which may time.sleep(0) for threads) comes after.
            with intercepting(loop, self.epoch):
                try:
                    return loop.run_until_complete(self._run_clients())
                finally:
                    loop.run_until_complete(self._tear_down())
                    loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            random.setstate(saved)

    async def _run_clients(self) -> dict[str, Any]:
        loop = self.loop
        self._result = loop.create_future()
        for host in self._hosts:
            self._start(host)
        deadline = loop.call_at(self.duration, self._out_of_time)
        try:
            return await self._result
        finally:
            deadline.cancel()

    def _start(self, host: Host) -> None:
        host.incarnations += 1
        process = Process(host, host.incarnations)
        host.process = process
        self._processes.append(process)

        started = process.context.run(host.main)
        main = started if asyncio.iscoroutine(started) else _await(started)
        task = self.loop.create_task(main, name=f"{host.name}#{process.incarnation}", context=process.context)
        process.main_task = task
        task.add_done_callback(lambda t: self._main_done(process, t))

    def _main_done(self, process: Process, task: asyncio.Task[Any]) -> None:
        result = self._result
        host = process.host
        if task.cancelled():
            if process.alive and result is not None and not result.done() and host.client:
                result.set_exception(RuntimeError(f"client {host.name!r} was cancelled"))
            return
        exc = task.exception()
        if result is None or result.done():
            return
        if exc is not None:
            if process.alive:
                result.set_exception(exc)
            return
        if host.client and host.process is process:
            self._returned[host.name] = task.result()
            clients = [h.name for h in self._hosts if h.client]
            if all(name in self._returned for name in clients):
                result.set_result({name: self._returned[name] for name in clients})

    def _out_of_time(self) -> None:
        result = self._result
        if result is not None and not result.done():
            waiting = [h.name for h in self._hosts if h.client and h.name not in self._returned]
            result.set_exception(
                SimulationTimeout(
                    f"the simulation reached its duration ({self.duration} virtual seconds) "
                    f"with clients {waiting} unfinished"
                )
            )

    async def _tear_down(self) -> None:
        for host in self._hosts:
            if host.process is not None and host.process.alive:
                self._kill(host.process)
        current = asyncio.current_task()
        for _ in range(_UNWIND_ROUNDS):
            pending = [t for p in self._processes for t in p.tasks if not t.done()]
            pending += [t for t in self.loop.other_tasks if not t.done() and t is not current]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=_UNWIND_TIME)

    # -- faults ---------------------------------------------------------------------

    def crash(self, name: str, *, machine: bool = False) -> None:
        """Kill host `name`'s process: its kernel closes its sockets (see the module's
        docstring for what peers see).

        With `machine=True` the whole machine goes down instead: no kernel is left to
        close anything or to answer, so peers hear nothing (their data waits and
        their connects go unanswered, and time out) until `bounce`, after which the
        rebooted kernel answers the old connections' segments with resets.

        Raises:
            RuntimeError: the simulation is not running, or the host is not running.
        """
        host = self._running_host(name)
        if host.process is None or not host.process.alive:
            raise RuntimeError(f"host {name!r} is not running")
        self._kill(host.process, machine=machine)

    def bounce(self, name: str) -> None:
        """Start host `name`'s main again as a new process (booting the machine again
        if it went down), crashing the running one first."""
        host = self._running_host(name)
        if host.process is not None and host.process.alive:
            self._kill(host.process)
        if host.down:
            self.network.host_up(host)
        self._start(host)

    def _running_host(self, name: str) -> Host:
        host = self.network.host(name)
        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("crash() and bounce() act on a running simulation")
        return host

    def _kill(self, process: Process, *, machine: bool = False) -> None:
        process.alive = False
        if machine:
            self.network.host_down(process.host)
        for listener in list(process.listeners):
            listener.close(silently=machine)
            if listener.server is not None:
                listener.server.close()
        for endpoint in list(process.endpoints):
            user = endpoint.user
            if machine:
                endpoint.vanish()
            if user is not None:
                user.crash()
            else:
                endpoint.close()
        for datagram in list(process.datagrams):
            if datagram.user is not None:
                datagram.user.crash()
            else:
                datagram.close()
        for timer in process.timers:
            timer.cancel()
        process.timers.clear()
        for task in list(process.tasks):
            task.cancel()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def sweep(test: Callable[[int], object], seeds: Iterable[int]) -> None:
    """Run `test(seed)` for each seed in turn; stop at the first that raises.

    Raises:
        SeedFailure: naming the first failing seed, with its exception as the cause.
    """
    for seed in seeds:
        try:
            test(seed)
        except Exception as exc:
            raise SeedFailure(seed, exc) from exc
