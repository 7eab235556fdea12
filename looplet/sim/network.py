"""The simulated network: links between hosts, what they do to packets, and when packets arrive.

Every packet (a TCP segment, a datagram) goes through `Network.transmit`, which
decides its fate from the link's settings (latency, loss, bandwidth, duplication)
and schedules its arrival with `loop.call_at`; at arrival, a partition or a hold on
the link stops it (a datagram across a partition is lost; everything else waits for
`repair`/`release`). Streams put their segments back in order themselves
(looplet/sim/tcp.py), so the network may deliver them in any order.

The invariant owned here: every random choice is drawn from the one `random.Random`
made from the simulation's seed, in the order packets are sent, and packets that
arrive at the same time arrive in the order they were scheduled (the loop's timer
queue breaks ties by a sequence number); nothing here iterates a set or a dict keyed
by `id()`. So one seed gives one history.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

from looplet.loop import EventLoop
from looplet.sim.host import Host

#: A latency: a fixed number of seconds, or (low, high) drawn uniformly for each packet.
Latency: TypeAlias = float | tuple[float, float]

#: How long a lost TCP segment waits before it is sent again: Linux's minimum
#: retransmission timeout (TCP_RTO_MIN, 200 ms).
RETRANSMIT_DELAY: Final = 0.2

#: Draws of "lost again" per segment stop here, so that loss=1.0 delays instead of hanging.
_MAX_RETRANSMITS: Final = 15

#: The loop's own call_at, for what belongs to no process (see Network._call_at).
_loop_call_at: Final = EventLoop.call_at


@dataclass(frozen=True)
class LinkConfig:
    """What a link does to the packets it carries, in one direction and the other."""

    #: Seconds from send to arrival: fixed, or (low, high) drawn for each packet.
    latency: Latency = 0.001
    #: The chance each packet is lost: a datagram is gone, a TCP segment is sent again
    #: after `RETRANSMIT_DELAY` (and may be lost again).
    loss: float = 0.0
    #: Bytes per second each direction carries, or None for no limit; packets queue
    #: behind each other on the link.
    bandwidth: float | None = None
    #: The chance a datagram arrives twice (TCP removes duplicates: none are made).
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        latency = self.latency
        if isinstance(latency, tuple):
            low, high = latency
            if not 0 <= low <= high:
                raise ValueError(f"latency range must be 0 <= low <= high, not {latency!r}")
        elif not latency >= 0:
            raise ValueError(f"latency must be >= 0, not {latency!r}")
        for name in ("loss", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {value!r}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 bytes/s or None, not {self.bandwidth!r}")


class Packet:
    """One thing a link carries: who sent it to whom, its size, and what its arrival does."""

    __slots__ = ("deliver", "dst", "kind", "nbytes", "reliable", "sender", "src")

    def __init__(
        self,
        src: Host,
        dst: Host,
        kind: str,
        nbytes: int,
        deliver: Callable[[], None],
        *,
        reliable: bool,
        sender: Sender | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        #: For the log: "syn", "data", "fin", "rst", "datagram", ...
        self.kind = kind
        self.nbytes = nbytes
        self.deliver = deliver
        #: A TCP segment (retransmitted, never lost) or a datagram (may be lost).
        self.reliable = reliable
        #: Who retransmits it, told when it is stopped and when it crosses again.
        self.sender = sender


class Sender(Protocol):
    """What retransmits a stopped packet (a TCP endpoint), and gives up in the end."""

    def stalled(self) -> None:
        """One of its packets was stopped by a partition or a hold."""

    def unstalled(self) -> None:
        """Its stopped packets cross again."""


class Link:
    """One direction between two hosts: its queue on the wire and what waits to cross it."""

    __slots__ = ("busy_until", "waiting")

    def __init__(self) -> None:
        #: When the last packet queued on the wire finishes leaving (bandwidth).
        self.busy_until = 0.0
        #: Packets stopped by a partition or a hold, oldest first, sent again when both lift.
        self.waiting: list[Packet] = []


#: One entry of the network's log: (loop time, event, from, to, kind, bytes).
LogEntry: TypeAlias = tuple[float, str, str, str, str, int]


class Network:
    """Links, partitions and holds between the simulation's hosts."""

    def __init__(self, seed: int, default: LinkConfig, *, log: bool = False) -> None:
        # A string seed is hashed (SHA-512) by random: the network's draws do not
        # follow the same sequence as the loop's shuffle, made from the int seed.
        self.random = random.Random(f"looplet.sim.network:{seed}")
        self.default = default
        self.loop: EventLoop | None = None
        self.hosts: dict[str, Host] = {}
        self.by_ip: dict[str, Host] = {}
        #: Link settings set by `configure`, by (name, name) in both orders.
        self._configs: dict[tuple[str, str], LinkConfig] = {}
        #: The directed links with state, made on first use.
        self._links: dict[tuple[str, str], Link] = {}
        #: Directed (from, to) pairs cut or held; values unused (ordered sets).
        self.partitions: dict[tuple[str, str], None] = {}
        self.holds: dict[tuple[str, str], None] = {}
        #: What happened to each packet, if asked for (Simulation(log=True)).
        self.log: list[LogEntry] | None = [] if log else None
        # Arrivals run in a context of their own, no process's: what they run for a
        # process (a protocol's data_received) enters that process's context itself.
        self._context = contextvars.Context()

    # -- hosts and links ------------------------------------------------------------

    def add_host(self, host: Host) -> None:
        self.hosts[host.name] = host
        self.by_ip[host.ip] = host

    def host(self, name: str) -> Host:
        """The host named `name`.

        Raises:
            KeyError: no host has that name.
        """
        try:
            return self.hosts[name]
        except KeyError:
            raise KeyError(f"no host named {name!r} in the simulation") from None

    def configure(self, a: str, b: str, config: LinkConfig) -> None:
        """Use `config` for the link between `a` and `b` (both directions)."""
        self.host(a)
        self.host(b)
        self._configs[(a, b)] = config
        self._configs[(b, a)] = config

    def config(self, src: Host, dst: Host) -> LinkConfig:
        return self._configs.get((src.name, dst.name), self.default)

    def _link(self, src: Host, dst: Host) -> Link:
        key = (src.name, dst.name)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = Link()
        return link

    def blocked(self, src: Host, dst: Host) -> bool:
        """Whether packets from `src` to `dst` are stopped now (partition, hold, or
        `dst` down)."""
        key = (src.name, dst.name)
        return key in self.partitions or key in self.holds or dst.down

    def host_down(self, host: Host) -> None:
        """The machine `host` went down: what it was retransmitting is gone with it."""
        host.down = True
        for (src, _), link in self._links.items():
            if src == host.name:
                link.waiting = []

    def host_up(self, host: Host) -> None:
        """The machine `host` is back: what waited for it arrives (its new kernel
        answers segments of connections it no longer knows with resets)."""
        host.down = False
        for src, dst in list(self._links):
            if dst == host.name:
                self._flush(src, dst, False)

    # -- faults ---------------------------------------------------------------------

    def partition(self, a: str, b: str, *, both: bool = True) -> None:
        self.host(a)
        self.host(b)
        self.partitions[(a, b)] = None
        if both:
            self.partitions[(b, a)] = None

    def repair(self, a: str, b: str, *, both: bool = True) -> None:
        self.host(a)
        self.host(b)
        self.partitions.pop((a, b), None)
        if both:
            self.partitions.pop((b, a), None)
        self._flush(a, b, both)

    def hold(self, a: str, b: str, *, both: bool = True) -> None:
        self.host(a)
        self.host(b)
        self.holds[(a, b)] = None
        if both:
            self.holds[(b, a)] = None

    def release(self, a: str, b: str, *, both: bool = True) -> None:
        self.host(a)
        self.host(b)
        self.holds.pop((a, b), None)
        if both:
            self.holds.pop((b, a), None)
        self._flush(a, b, both)

    def _flush(self, a: str, b: str, both: bool) -> None:
        # What waited crosses now, as if sent again, in the order it was stopped.
        for src, dst in [(a, b), (b, a)] if both else [(a, b)]:
            link = self._links.get((src, dst))
            if link is None or not link.waiting or self.blocked(self.hosts[src], self.hosts[dst]):
                continue
            waiting, link.waiting = link.waiting, []
            for packet in waiting:
                self._record("resent", packet)
                if packet.sender is not None:
                    packet.sender.unstalled()
                self._schedule(packet, self.config(packet.src, packet.dst))

    def forget(self, sender: Sender) -> None:
        """Drop the stopped packets of `sender`, which gave up on them."""
        for link in self._links.values():
            link.waiting = [p for p in link.waiting if p.sender is not sender]

    # -- packets --------------------------------------------------------------------

    def transmit(self, packet: Packet) -> None:
        """Send `packet`: decide its fate by its link's settings and schedule its arrival."""
        if packet.src is packet.dst:
            # The loopback interface: no latency, no loss, no partition; still a
            # callback of its own, as a real loopback send wakes the reader later.
            self._record("sent", packet)
            self._call_at(self._now(), self._arrive, packet)
            return
        config = self.config(packet.src, packet.dst)
        self._record("sent", packet)
        if not packet.reliable and config.loss and self.random.random() < config.loss:
            self._record("lost", packet)
            return
        self._schedule(packet, config)
        if not packet.reliable and config.duplicate and self.random.random() < config.duplicate:
            self._record("duplicated", packet)
            self._schedule(packet, config)

    def _schedule(self, packet: Packet, config: LinkConfig) -> None:
        now = self._now()
        when = now
        if config.bandwidth is not None:
            link = self._link(packet.src, packet.dst)
            start = max(now, link.busy_until)
            link.busy_until = start + packet.nbytes / config.bandwidth
            when = link.busy_until
        when += self._draw_latency(config.latency)
        if packet.reliable and config.loss:
            for _ in range(_MAX_RETRANSMITS):
                if self.random.random() >= config.loss:
                    break
                self._record("retransmitted", packet)
                when += RETRANSMIT_DELAY
        self._call_at(when, self._arrive, packet)

    def _draw_latency(self, latency: Latency) -> float:
        if isinstance(latency, tuple):
            low, high = latency
            return self.random.uniform(low, high)
        return latency

    def _arrive(self, packet: Packet) -> None:
        if packet.src is not packet.dst and self.blocked(packet.src, packet.dst):
            if not packet.reliable and ((packet.src.name, packet.dst.name) in self.partitions or packet.dst.down):
                self._record("lost", packet)
                return
            self._record("stopped", packet)
            self._link(packet.src, packet.dst).waiting.append(packet)
            if packet.sender is not None:
                packet.sender.stalled()
            return
        self._record("arrived", packet)
        packet.deliver()

    # -- the loop -------------------------------------------------------------------

    def _now(self) -> float:
        assert self.loop is not None, "the network is used before the simulation runs"
        return self.loop.time()

    def _call_at(self, when: float, callback: Callable[[Packet], None], packet: Packet) -> None:
        assert self.loop is not None, "the network is used before the simulation runs"
        # A packet belongs to no process, so SimLoop's bookkeeping of a process's timers
        # has nothing to do: the loop's own call_at, a frame less per packet.
        _loop_call_at(self.loop, when, callback, packet, context=self._context)

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """A timer of the network's own (a kernel's timeout), outside every process."""
        assert self.loop is not None, "the network is used before the simulation runs"
        return self.loop.call_at(self._now() + delay, callback, context=self._context)

    def _record(self, event: str, packet: Packet) -> None:
        if self.log is not None:
            self.log.append((self._now(), event, packet.src.name, packet.dst.name, packet.kind, packet.nbytes))
