"""The transport classes the loop instantiates, kept interpreted on purpose.

`SocketTransport` adds nothing to `stream.SocketTransportCore` but what an interpreted
class has and a compiled one lacks: in the compiled build, mypyc's classes on CPython
3.12+ cannot be weakly referenced, and asyncio's Server (3.13's `_clients`) and the
loop's fd-to-transport map hold transports weakly. Its methods are the core's,
compiled where the build compiled them. The invariant owned here: every stream
transport the loop creates is an instance of this class.
"""

from __future__ import annotations

from looplet.transports.stream import SocketTransportCore


class SocketTransport(SocketTransportCore):
    """A stream socket transport (TCP or Unix), as `asyncio.Transport`."""


__all__ = ["SocketTransport"]
