"""Name resolution inside the simulation: host names, numeric addresses, ports.

`getaddrinfo` answers as a resolver with an /etc/hosts listing every simulated host
would: a host's name gives its address, "localhost" gives 127.0.0.1, a numeric IPv4
address gives itself, and anything else fails with socket.gaierror (EAI_NONAME), as
for a name no DNS server knows. Answers take no time and never leave the process.

The invariant owned here: the answer depends only on the arguments and the hosts
declared, and lists its entries in a fixed order (stream, datagram, raw, as glibc does).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from looplet.sim.host import ANY, LOOPBACK
from looplet.sim.network import Network

AddrInfo = list[tuple[Any, Any, int, str, Any]]

# glibc's answer for each socket type, in its order.
_KINDS = (
    (socket.SOCK_STREAM, socket.IPPROTO_TCP),
    (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
    (socket.SOCK_RAW, 0),
)


def _no_name() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def resolve_host(network: Network, host: Any, flags: int = 0) -> str:
    """The IPv4 address `host` names in the simulation.

    Raises:
        socket.gaierror: an unknown name, or an IPv6 address (the network is IPv4 only).
    """
    if host is None:
        return ANY if flags & socket.AI_PASSIVE else LOOPBACK
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str):
        raise TypeError(f"getaddrinfo() argument 1 must be string or None, not {type(host).__name__}")
    if host == "localhost":
        return LOOPBACK
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if address.version != 4:
            raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")
        return str(address)
    found = network.hosts.get(host)
    if found is None:
        raise _no_name()
    return found.ip


def resolve_port(port: Any) -> int:
    """A port number from what getaddrinfo takes (None, an int, digits).

    Raises:
        socket.gaierror: a service name (no /etc/services in the simulation).
    """
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")


def getaddrinfo(network: Network, host: Any, port: Any, family: int, type: int, proto: int, flags: int) -> AddrInfo:
    """socket.getaddrinfo's answer within the simulation."""
    if family not in (socket.AF_UNSPEC, socket.AF_INET):
        if family == getattr(socket, "AF_INET6", None):
            resolve_host(network, host, flags)  # an unknown name still fails as one
        raise socket.gaierror(socket.EAI_ADDRFAMILY, "Address family for hostname not supported")
    ip = resolve_host(network, host, flags)
    number = resolve_port(port)
    infos: AddrInfo = []
    for kind, kind_proto in _KINDS:
        if type and type != kind:
            continue
        if proto and proto != kind_proto:
            continue
        infos.append((socket.AF_INET, kind, kind_proto, "", (ip, number)))
    if not infos:
        raise socket.gaierror(socket.EAI_SOCKTYPE, "ai_socktype not supported")
    return infos


def getnameinfo(network: Network, sockaddr: Any) -> tuple[str, str]:
    """socket.getnameinfo's answer within the simulation: a host's name, else the address."""
    ip, port = sockaddr[:2]
    if ip == LOOPBACK:
        return ("localhost", str(port))
    found = network.by_ip.get(ip)
    return (found.name if found is not None else ip, str(port))
