"""sendfile, in one place: `sock_sendfile` on a socket, `sendfile` on a transport.

Each tries the zero-copy path first (os.sendfile) and falls back to copying through
a buffer when the file cannot be sent that way: a socket's fallback reads the file in
the executor and sends with sock_sendall; a transport's writes through the transport,
under a stand-in protocol that waits on the transport's flow control.

`loop.sendfile` is asyncio's own method (`_asyncio.base_sendfile`), which calls the
loop's `_sendfile_native` (here `transport_sendfile_native`) when the transport
allows it, else the loop's `_sendfile_fallback` (here `transport_sendfile_fallback`).
The zero-copy steps of `sock_sendfile` are asyncio's own (`_asyncio.SockSendfileStep`).

The invariants owned here: the file position tells the caller how many bytes went
out, whatever happened; a fallback gives the application's protocol back, in the
state it found it, even when the copy fails half-way.
"""

from __future__ import annotations

import asyncio
import os
import socket
from io import UnsupportedOperation
from typing import TYPE_CHECKING, Any

from looplet._asyncio import (
    SENDFILE_ALWAYS_SETS_POSITION,
    SENDFILE_FALLBACK_READBUFFER_SIZE,
    FlowControlMixin,
    SockSendfileStep,
)
from looplet.services.sockio import check_socket, sock_sendall

if TYPE_CHECKING:
    from looplet.engine.io import Io
    from looplet.transports.stream import SocketTransport

# asyncio's transport-level sendfile fallback reads this much at a time (not the
# 256 KiB sock_sendfile uses): a write larger than the high-water mark would pause
# the protocol on every chunk anyway.
_FALLBACK_BLOCKSIZE = 16384


def check_sendfile_params(sock: socket.socket, file: Any, offset: Any, count: Any) -> None:
    """asyncio's argument checks for sendfile, with its messages."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


async def sock_sendfile(io: Io, sock: socket.socket, file: Any, offset: int, count: int | None, fallback: bool) -> int:
    if io.debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    check_socket(io, sock)
    check_sendfile_params(sock, file, offset, count)
    try:
        return await _sendfile_native(io, sock, file, offset, count)
    except asyncio.SendfileNotAvailableError:
        if not fallback:
            raise
    return await _sendfile_fallback(io, sock, file, offset, count)


async def _sendfile_native(io: Io, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
    """Zero-copy `os.sendfile`; SendfileNotAvailableError before any byte is sent."""
    if not hasattr(os, "sendfile"):
        raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
    # A closed file's ValueError is the caller's error, not a reason to fall back.
    try:
        fileno = file.fileno()
    except (AttributeError, UnsupportedOperation) as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    try:
        fsize = os.fstat(fileno).st_size
    except OSError as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    blocksize = count if count else fsize
    if not blocksize:
        return 0
    fut: asyncio.Future[int] = io.loop.create_future()
    SockSendfileStep(io.loop.add_writer, io.loop.remove_writer).start(fut, sock, fileno, offset, count, blocksize)
    return await fut


async def _sendfile_fallback(io: Io, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
    """Read the file in an executor and send it with sock_sendall."""
    if offset or (SENDFILE_ALWAYS_SETS_POSITION and hasattr(file, "seek")):
        file.seek(offset)
    blocksize = min(count, SENDFILE_FALLBACK_READBUFFER_SIZE) if count else SENDFILE_FALLBACK_READBUFFER_SIZE
    buf = bytearray(blocksize)
    total = 0
    try:
        while True:
            if count:
                blocksize = min(count - total, blocksize)
                if blocksize <= 0:
                    break
            view = memoryview(buf)[:blocksize]
            read = await io.loop.run_in_executor(None, file.readinto, view)
            if not read:
                break
            await sock_sendall(io, sock, view[:read])
            total += read
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)


async def transport_sendfile_native(io: Io, transp: SocketTransport, file: Any, offset: int, count: int | None) -> int:
    """Zero-copy sendfile on a stream transport: hand its socket to sock_sendfile.

    The transport stops reading and drains its buffer, and does not claim its fd
    meanwhile, so that sock_* may use it.
    """
    fd = transp._state.fd
    io.release(fd)
    resume_reading = transp.is_reading()
    transp.pause_reading()
    await transp._make_empty_waiter()
    try:
        sock = transp._state.file
        assert sock is not None
        return await sock_sendfile(io, sock, file, offset, count, False)
    finally:
        transp._reset_empty_waiter()
        if resume_reading:
            transp.resume_reading()
        io.claim(fd, transp)


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


async def transport_sendfile_fallback(
    loop: asyncio.AbstractEventLoop, transp: Any, file: Any, offset: int, count: int | None
) -> int:
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
