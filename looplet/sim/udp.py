"""Simulated UDP: datagram endpoints, what reaches them, and what the kernel answers.

Datagrams cross the network unreliably: a link's `loss` drops them, `duplicate` sends
some twice, a latency range reorders them, a partition drops them, a hold keeps them
until released. A datagram for a port nobody is bound to is dropped, and the kernel
answers with ICMP port unreachable, which a connected sender's protocol hears as
error_received(ConnectionRefusedError), as on Linux. A connected endpoint takes
datagrams from its peer only.

The invariant owned here: a datagram reaches at most the one endpoint bound to its
destination when it arrives, whole, and only while that endpoint is open.
"""

from __future__ import annotations

import errno
import socket
from functools import partial
from typing import Protocol

from looplet.sim.host import ANY, LOOPBACK, Host, Process
from looplet.sim.network import Network, Packet
from looplet.sim.sockets import Address, SimSocket


class DatagramUser(Protocol):
    """What an endpoint tells its transport."""

    def datagram_arrived(self, data: bytes, source: Address) -> None:
        """A datagram for the endpoint arrived from `source`."""

    def error_arrived(self, exc: OSError) -> None:
        """The network answered with an error (ICMP port unreachable)."""

    def crash(self) -> None:
        """The endpoint's process died."""


class UdpEndpoint(SimSocket):
    """A bound datagram socket: its addresses and the transport it feeds."""

    def __init__(self, udp: Udp, process: Process, local: Address, remote: Address | None) -> None:
        super().__init__(socket.SOCK_DGRAM, local, remote)
        self.udp = udp
        self.process = process
        self.host = process.host
        self.user: DatagramUser | None = None

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self.user = None
        table = self.host.udp_ports
        if table.get(self.local) is self:
            del table[self.local]
        self.process.datagrams.pop(self, None)

    def send(self, data: bytes, address: Address) -> None:  # type: ignore[override]
        """Send one datagram to `address` (dropped at once if no host has that address)."""
        self.udp.send(self, data, address)


class Udp:
    """The simulation's UDP: binding endpoints and carrying datagrams between them."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def bind(self, process: Process, local: Address | None, remote: Address | None) -> UdpEndpoint:
        """Bind an endpoint for `process` (an ephemeral port where `local` gives none).

        Raises:
            OSError: `local` cannot be bound (EADDRNOTAVAIL, EADDRINUSE).
        """
        host = process.host
        table = host.udp_ports
        if local is None:
            ip = LOOPBACK if remote is not None and remote[0] == LOOPBACK else ANY
            local = (ip, 0)
        ip, port = local
        if port == 0:
            port = host.free_port(table)
        host.check_bind(table, ip, port)
        endpoint = UdpEndpoint(self, process, (ip, port), remote)
        table[(ip, port)] = endpoint
        process.datagrams[endpoint] = None
        return endpoint

    def send(self, endpoint: UdpEndpoint, data: bytes, address: Address) -> None:
        src_host = endpoint.host
        ip, port = address
        dst = src_host if src_host.owns(ip) else self.network.by_ip.get(ip)
        if dst is None:
            return
        local_ip, local_port = endpoint.local
        if local_ip == ANY:
            local_ip = LOOPBACK if ip == LOOPBACK else src_host.ip
        source = (local_ip, local_port)
        deliver = partial(self._arrived, dst, (ip, port), source, data, endpoint)
        self.network.transmit(Packet(src_host, dst, "datagram", len(data), deliver, reliable=False))

    def _arrived(self, host: Host, address: Address, source: Address, data: bytes, sender: UdpEndpoint) -> None:
        ip, port = address
        target = host.udp_ports.get((ip, port)) or host.udp_ports.get((ANY, port))
        if target is None or target.closed:
            # ICMP port unreachable: a connected sender hears it as ECONNREFUSED.
            if sender.remote is not None:
                self.network.transmit(
                    Packet(host, sender.host, "icmp", 0, partial(self._unreachable, sender), reliable=False)
                )
            return
        if target.remote is not None and target.remote != source:
            return
        if target.user is not None:
            target.user.datagram_arrived(data, source)

    def _unreachable(self, sender: UdpEndpoint) -> None:
        if sender.user is not None and not sender.closed:
            sender.user.error_arrived(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
