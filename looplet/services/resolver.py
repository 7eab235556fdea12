"""Name resolution: `getaddrinfo` without blocking the loop, and the resolve step of
connecting and binding.

The invariant owned here: numeric addresses never go to a thread. `getaddrinfo`
first asks the C library with AI_NUMERICHOST, which answers from the string alone,
and only a real name is resolved in the executor; `ensure_resolved` takes asyncio's
shortcut for a numeric host before that, so the port reaches connect() and bind()
exactly as the caller gave it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from looplet._asyncio import ipaddr_info

logger = logging.getLogger("asyncio")

AddrInfo = list[tuple[Any, Any, int, str, Any]]


async def getaddrinfo(
    loop: asyncio.AbstractEventLoop, host: Any, port: Any, family: int, type: int, proto: int, flags: int
) -> AddrInfo:
    """socket.getaddrinfo in the loop's default executor, unless the host is numeric."""
    debug = loop.get_debug()
    if not debug:
        infos = resolve_numeric(host, port, family, type, proto, flags)
        if infos is not None:
            return infos
    func = getaddrinfo_debug if debug else socket.getaddrinfo
    return await loop.run_in_executor(None, func, host, port, family, type, proto, flags)  # type: ignore[arg-type]


async def ensure_resolved(
    loop: asyncio.AbstractEventLoop,
    address: Any,
    *,
    family: int = 0,
    type: int = socket.SOCK_STREAM,
    proto: int = 0,
    flags: int = 0,
) -> AddrInfo:
    """The addresses to try for `address` (host, port[, flowinfo, scope_id])."""
    host, port = address[:2]
    # asyncio's shortcut for a numeric host: the port reaches connect()/bind() as
    # given, and they refuse one outside 0-65535 (getaddrinfo wraps 70000 to 4464).
    info = ipaddr_info(host, port, family, type, proto, *address[2:])
    if info is not None:
        return [info]
    infos: AddrInfo = await loop.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
    if infos and len(address) > 2:
        # IPv6 flowinfo and scope id are not part of the name: keep the caller's.
        fam, typ, pro, canon, sa = infos[0]
        infos = [(fam, typ, pro, canon, (sa[0], sa[1], *address[2:]))]
    return infos


def _numeric_port(port: object) -> bool:
    return port is None or isinstance(port, int) or (isinstance(port, (str, bytes)) and port.isdigit())


def resolve_numeric(host: object, port: object, family: int, type: int, proto: int, flags: int) -> AddrInfo | None:
    """getaddrinfo for a numeric host and port, or None if either needs a lookup."""
    if not isinstance(host, (str, bytes)) or not host or not _numeric_port(port) or not isinstance(flags, int):
        return None
    try:
        # int(), not the IntFlag: `-1 | socket.AI_NUMERICHOST` is IntFlag 2047, every
        # known flag, which the C library accepts where asyncio's call refuses -1.
        return socket.getaddrinfo(host, port, family, type, proto, int(flags) | int(socket.AI_NUMERICHOST))  # type: ignore[arg-type]
    except socket.gaierror:
        return None  # a name, or a numeric form the C library wants to see in full


def getaddrinfo_debug(host: Any, port: Any, family: int, type: int, proto: int, flags: int) -> AddrInfo:
    """getaddrinfo that logs the query and its duration (asyncio's debug mode)."""
    msg = [f"{host}:{port!r}"]
    if family:
        msg.append(f"family={family!r}")
    if type:
        msg.append(f"type={type!r}")
    if proto:
        msg.append(f"proto={proto!r}")
    if flags:
        msg.append(f"flags={flags!r}")
    text = ", ".join(msg)
    logger.debug("Get address info %s", text)
    t0 = time.monotonic()
    addrinfo = socket.getaddrinfo(host, port, family, type, proto, flags)
    dt = time.monotonic() - t0
    level = logging.INFO if dt >= 0.1 else logging.DEBUG
    logger.log(level, "Getting address info %s took %.3f ms: %r", text, dt * 1e3, addrinfo)
    return addrinfo
