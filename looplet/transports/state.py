"""TransportState: a transport's per-connection state, as one record its methods read.

The transports must stay instances of asyncio's transport classes, so they are
regular Python classes even in the compiled build (base.py says why not native
ones), and there every `self._x` is a generic attribute lookup: a type's MRO walk
and an instance-dictionary probe, some 250 instructions. A read and a write touch a
dozen such fields per message. Kept in this record instead, a native class in the
compiled build, the fields are struct slots: a method fetches the record once
(`state = self._state`) and reads the rest at the cost of a C field access. In the
pure build it is an ordinary object with the same fields, in slots.

The invariant owned here: a transport's state lives only in its record, never also
on the transport, so nothing can read a stale copy; the record refers to no
transport, so it adds no reference cycle.
"""

from __future__ import annotations

import asyncio
from contextvars import Context
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looplet.engine.io import Io


class TransportState:
    """The fields a transport's reads, writes and lifecycle read and change."""

    # Slots: the pure build's record takes no dictionary per connection.
    __slots__ = (
        "buffer",
        "buffer_size",
        "buffered",
        "closing",
        "conn_lost",
        "context",
        "empty_waiter",
        "eof",
        "fd",
        "file",
        "io",
        "paused",
        "protocol",
        "protocol_connected",
        "read_buffer",
    )

    def __init__(self, io: Io, context: Context | None) -> None:
        self.io: Io = io
        #: The context every callback of the transport runs in (3.15+: a copy of the
        #: connecting caller's, or of the server's for an accepted connection); None:
        #: each registration copies the context current then, as asyncio did before.
        self.context: Context | None = context
        #: The file object (socket or pipe) and its fd; `file` is None once closed.
        self.file: Any = None
        self.fd: int = -1
        self.protocol: Any = None
        #: Whether connection_lost is due to `protocol` (set_protocol makes it so).
        self.protocol_connected: bool = False
        #: A stream's protocol is an `asyncio.BufferedProtocol`: it reads into its own buffer.
        self.buffered: bool = False
        #: Counts writes after the connection was lost; nonzero once it is lost.
        self.conn_lost: int = 0
        self.closing: bool = False
        self.paused: bool = False
        #: The loop's read buffer (engine/io.py), fetched once: reads go through it.
        self.read_buffer: memoryview = io.read_buffer
        #: Pending writes (a deque of pieces, or a pipe's bytearray), and their length.
        self.buffer: Any = None
        self.buffer_size: int = 0
        #: A stream's write_eof() was called: EOF follows the buffered data.
        self.eof: bool = False
        #: Set by a stream's sendfile: resolves when the write buffer has drained.
        self.empty_waiter: asyncio.Future[None] | None = None
