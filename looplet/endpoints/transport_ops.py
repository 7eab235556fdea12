"""Operations on an open transport: `start_tls` and sendfile's fallback.

asyncio's `base_events.start_tls`, as a plain async function taking the loop first,
with asyncio's checks and messages: TLS is asyncio's own `SSLProtocol` layered over
the transport. `loop.sendfile` is asyncio's own method (`_asyncio.base_sendfile`),
which uses the loop's zero-copy `_sendfile_native` when the transport allows it
(`_sendfile_compatible`), else the loop's `_sendfile_fallback`: `sendfile_fallback`
here, which reads the file and writes it through the transport.

The invariant owned here: whatever `start_tls` or `sendfile` does to a transport
(swap its protocol, pause its reading) is undone, or the transport is closed,
before the call returns or raises; the fallback gives the application's protocol
back even when the copy fails half-way.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from looplet._asyncio import SENDFILE_ALWAYS_SETS_POSITION, FlowControlMixin, SSLProtocol

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from looplet.loop import EventLoop

# asyncio's transport-level sendfile fallback reads this much at a time (not the
# 256 KiB sock_sendfile uses): a write larger than the high-water mark would pause
# the protocol on every chunk anyway.
_FALLBACK_BLOCKSIZE = 16384


async def start_tls(
    loop: EventLoop,
    transport: Any,
    protocol: asyncio.BaseProtocol,
    sslcontext: Any,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.Transport:
    """asyncio's `loop.start_tls`: upgrade `transport` to TLS; return the transport `protocol` now uses."""
    if _ssl is None:
        raise RuntimeError("Python ssl module is not available")
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")

    waiter: asyncio.Future[None] = loop.create_future()
    ssl_protocol = SSLProtocol(
        loop,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]  # typeshed says int
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        call_connection_made=False,
    )
    # Pause first: data arriving before connection_made() would reach the SSL
    # protocol before it has its transport.
    transport.pause_reading()
    if server_side and isinstance(protocol, asyncio.StreamReaderProtocol):
        # A server's stream may already hold the start of the client's handshake, read
        # before start_tls() was called: it belongs to the TLS layer now, or the
        # handshake waits forever for bytes that already came (asyncio fixed this in
        # 3.14, gh-142352; looplet does it on every version).
        reader = getattr(protocol, "_stream_reader", None)
        if reader is not None and reader._buffer:
            ssl_protocol._incoming.write(reader._buffer)  # type: ignore[attr-defined]  # typeshed omits it
            reader._buffer.clear()
    transport.set_protocol(ssl_protocol)
    conmade_cb = loop.call_soon(ssl_protocol.connection_made, transport)
    resume_cb = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        conmade_cb.cancel()
        resume_cb.cancel()
        raise
    return ssl_protocol._app_transport


class _SendfileFallbackProtocol(asyncio.Protocol):
    """Stands in for the application's protocol while sendfile copies through the transport.

    It holds reading paused (the data would go to the wrong protocol) and turns
    pause_writing/resume_writing into a future `drain()` waits on; `restore()`
    gives the transport back to the application's protocol in the state it found it.
    """

    def __init__(self, transp: Any) -> None:
        # asyncio asks for its _FlowControlMixin for the state read below; looplet's
        # transports keep the same state (`_protocol_paused`, `_loop`) without it.
        if not isinstance(transp, FlowControlMixin) and not hasattr(transp, "_protocol_paused"):
            raise TypeError("transport should be _FlowControlMixin instance")
        # Flow control state is private to _FlowControlMixin: typed Any from here on.
        transport: Any = transp
        self._transport = transport
        self._proto: Any = transport.get_protocol()
        self._should_resume_reading: bool = transport.is_reading()
        self._should_resume_writing: bool = transport._protocol_paused
        transport.pause_reading()
        transport.set_protocol(self)
        self._write_ready_fut: asyncio.Future[bool] | None = (
            transport._loop.create_future() if self._should_resume_writing else None
        )

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        fut = self._write_ready_fut
        if fut is None:
            return
        await fut

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._write_ready_fut is not None:
            # The peer cannot have closed after the whole file went out (we would not be
            # waiting), so a clean close is still an error for the sender.
            if exc is None:
                self._write_ready_fut.set_exception(ConnectionError("Connection is closed by peer"))
            else:
                self._write_ready_fut.set_exception(exc)
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ready_fut is not None:
            return
        self._write_ready_fut = self._transport._loop.create_future()

    def resume_writing(self) -> None:
        if self._write_ready_fut is None:
            return
        self._write_ready_fut.set_result(False)
        self._write_ready_fut = None

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._write_ready_fut is not None:
            # Nobody waits on it any more (the protocol is switched back): cancel
            # rather than leave a pending future behind.
            self._write_ready_fut.cancel()
        if self._should_resume_writing:
            self._proto.resume_writing()


async def sendfile_fallback(loop: EventLoop, transp: Any, file: Any, offset: int, count: int | None) -> int:
    """Read the file in the executor and write it through the transport, draining as we go."""
    if offset or (SENDFILE_ALWAYS_SETS_POSITION and hasattr(file, "seek")):
        file.seek(offset)
    blocksize = min(count, _FALLBACK_BLOCKSIZE) if count else _FALLBACK_BLOCKSIZE
    buf = bytearray(blocksize)
    total_sent = 0
    proto = _SendfileFallbackProtocol(transp)
    try:
        while True:
            if count:
                blocksize = min(count - total_sent, blocksize)
                if blocksize <= 0:
                    return total_sent
            view = memoryview(buf)[:blocksize]
            read = await loop.run_in_executor(None, file.readinto, view)
            if not read:
                return total_sent  # EOF
            await proto.drain()
            transp.write(view[:read])
            total_sent += read
            if transp.get_write_buffer_size():
                # The transport keeps what the kernel did not take as a view of buf
                # (no copy, as asyncio's 3.12+ transports): the next read must not
                # overwrite it, so it goes to a new buffer.
                buf = bytearray(len(buf))
    finally:
        # The file position tells the caller how much went out, even on error.
        if total_sent > 0 and hasattr(file, "seek"):
            file.seek(offset + total_sent)
        await proto.restore()
