"""Datagram endpoint setup: `create_datagram_endpoint` (UDP and Unix datagram sockets).

asyncio's `base_events.create_datagram_endpoint`, as a plain async function taking
the engine's `Io` first, with asyncio's checks and messages on each Python version.
The transport is looplet's (transports/datagram.py).

The invariant owned here: of the sockets tried for the (family, proto) pairs the
addresses resolve to, exactly one survives, handed to the transport; every other
one is closed, and the transport is closed if it never became ready.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from looplet.endpoints.connect import PY313
from looplet.endpoints.serve import remove_stale_unix_socket, set_reuseport
from looplet.services.errors import logger
from looplet.services.resolver import ensure_resolved
from looplet.transports.datagram import DatagramTransport

if TYPE_CHECKING:
    from looplet.engine.io import Io

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)

#: ((family, proto), (local address, remote address)): one way to set up the endpoint.
_AddrPair = tuple[tuple[int, int], tuple[Any, Any]]


def _check_given_socket(
    sock: socket.socket,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
    reuse_port: bool | None,
    allow_broadcast: bool | None,
) -> None:
    if PY313:
        # 3.13 takes any non-stream socket (raw sockets, e.g. CAN bus: gh-114887).
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f"A datagram socket was expected, got {sock!r}")
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError(f"A UDP Socket was expected, got {sock!r}")
    if local_addr or remote_addr or family or proto or flags or reuse_port or allow_broadcast:
        opts = {
            "local_addr": local_addr,
            "remote_addr": remote_addr,
            "family": family,
            "proto": proto,
            "flags": flags,
            "reuse_port": reuse_port,
            "allow_broadcast": allow_broadcast,
        }
        problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
        raise ValueError(f"socket modifier keyword arguments can not be used when sock is specified. ({problems})")


async def _address_pairs(
    io: Io, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
) -> Sequence[_AddrPair]:
    """The (family, proto) pairs for which every address given resolved, in resolution order."""
    loop = io.loop
    if not (local_addr or remote_addr):
        if family == 0:
            raise ValueError("unexpected address family")
        return (((family, proto), (None, None)),)
    if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
        for addr in (local_addr, remote_addr):
            if addr is not None and not isinstance(addr, str):
                raise TypeError("string is expected")
        # A file left by a dead endpoint would make bind() fail; abstract names have none.
        if local_addr and local_addr[0] not in (0, "\x00"):
            remove_stale_unix_socket(local_addr)
        return (((family, proto), (local_addr, remote_addr)),)

    addr_infos: dict[tuple[int, int], list[Any]] = {}
    for idx, addr in ((0, local_addr), (1, remote_addr)):
        if addr is None:
            continue
        if not (isinstance(addr, tuple) and len(addr) == 2):
            raise TypeError("2-tuple is expected")
        infos = await ensure_resolved(loop, addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        for fam, _, pro, _, address in infos:
            addr_infos.setdefault((fam, pro), [None, None])[idx] = address
    # A pair is usable only if it has an address for each address given.
    pairs = [
        (key, (pair[0], pair[1]))
        for key, pair in addr_infos.items()
        if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
    ]
    if not pairs:
        raise ValueError("can not get address information")
    return pairs


async def create_datagram_endpoint(
    io: Io,
    protocol_factory: Callable[[], _ProtocolT],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    reuse_port: bool | None = None,
    allow_broadcast: bool | None = None,
    sock: socket.socket | None = None,
) -> tuple[asyncio.DatagramTransport, _ProtocolT]:
    """asyncio's `loop.create_datagram_endpoint` (3.11+: no `reuse_address`, it was removed)."""
    loop = io.loop
    r_addr = None
    if sock is not None:
        _check_given_socket(sock, local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast)
        sock.setblocking(False)
    else:
        exceptions: list[OSError] = []
        for (fam, pro), (local_address, remote_address) in await _address_pairs(
            io, local_addr, remote_addr, family, proto, flags
        ):
            sock = None
            r_addr = None
            try:
                sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                if reuse_port:
                    set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                if remote_addr:
                    # A broadcasting socket stays unconnected: it sends to many addresses.
                    if not allow_broadcast:
                        await loop.sock_connect(sock, remote_address)
                    r_addr = remote_address
            except OSError as exc:
                if sock is not None:
                    sock.close()
                exceptions.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
            else:
                break
        else:
            raise exceptions[0]

    protocol = protocol_factory()
    waiter: asyncio.Future[None] = loop.create_future()
    transport = DatagramTransport(io, sock, protocol, r_addr, waiter)
    if io.debug:
        if local_addr:
            logger.info(
                "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                local_addr,
                remote_addr,
                transport,
                protocol,
            )
        else:
            logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)", remote_addr, transport, protocol)
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    return transport, protocol
