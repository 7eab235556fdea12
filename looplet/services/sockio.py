"""The loop's low-level socket operations: `sock_recv` ... `sock_sendfile`.

Every operation follows one pattern: try the syscall at once, and only when it would
block, wait for readiness (`wait_ready`) and try again. The invariant owned here: an
operation holds a reader or writer registration only while it waits, and drops it in
the same tick it resumes; with the reactor's lazy interest (reactor/base.py) a loop of
`sock_recv` calls therefore costs no epoll_ctl at all while data keeps arriving.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
from typing import TYPE_CHECKING, Any, cast

from looplet._asyncio import SENDFILE_ALWAYS_SETS_POSITION, SENDFILE_FALLBACK_READBUFFER_SIZE, SockSendfileStep
from looplet.engine.reactor import READ, WRITE

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from looplet.loop import EventLoop


def check_socket(loop: EventLoop, sock: socket.socket) -> None:
    """Reject SSL sockets always and blocking sockets in debug mode, as asyncio does."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def _set_ready(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_ready(loop: EventLoop, fd: int, direction: int) -> None:
    """Wait until `fd` is ready in `direction`: the one place a sock_* call waits."""
    loop._ensure_fd_no_transport(fd)
    fut = loop.create_future()
    handle = loop._add_io(fd, direction, _set_ready, fut)
    try:
        await fut
    finally:
        # A handle cancelled meanwhile was replaced by someone else's: not ours to remove.
        if not handle._cancelled:
            loop._remove_io(fd, direction)


async def _retry(loop: EventLoop, sock: socket.socket, direction: int, method: str, *args: Any) -> Any:
    fd = sock.fileno()
    while True:
        await wait_ready(loop, fd, direction)
        try:
            # Looked up on every try, as asyncio does: the socket may be a wrapper
            # whose methods change between tries.
            return getattr(sock, method)(*args)
        except (BlockingIOError, InterruptedError):
            continue


async def sock_recv(loop: EventLoop, sock: socket.socket, n: int) -> bytes:
    check_socket(loop, sock)
    try:
        return sock.recv(n)
    except (BlockingIOError, InterruptedError):
        return cast(bytes, await _retry(loop, sock, READ, "recv", n))


async def sock_recv_into(loop: EventLoop, sock: socket.socket, buf: Any) -> int:
    check_socket(loop, sock)
    try:
        return sock.recv_into(buf)
    except (BlockingIOError, InterruptedError):
        return cast(int, await _retry(loop, sock, READ, "recv_into", buf))


async def sock_recvfrom(loop: EventLoop, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
    check_socket(loop, sock)
    try:
        return sock.recvfrom(bufsize)
    except (BlockingIOError, InterruptedError):
        return cast("tuple[bytes, Any]", await _retry(loop, sock, READ, "recvfrom", bufsize))


async def sock_recvfrom_into(loop: EventLoop, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
    check_socket(loop, sock)
    if not nbytes:
        nbytes = len(buf)
    try:
        return sock.recvfrom_into(buf, nbytes)
    except (BlockingIOError, InterruptedError):
        return cast("tuple[int, Any]", await _retry(loop, sock, READ, "recvfrom_into", buf, nbytes))


async def sock_sendall(loop: EventLoop, sock: socket.socket, data: Any) -> None:
    check_socket(loop, sock)
    try:
        n = sock.send(data)
    except (BlockingIOError, InterruptedError):
        n = 0
    view = memoryview(data).cast("B")
    total = len(view)
    if n == total:
        return
    fd = sock.fileno()
    while n < total:
        await wait_ready(loop, fd, WRITE)
        try:
            n += sock.send(view[n:])
        except (BlockingIOError, InterruptedError):
            continue


async def sock_sendto(loop: EventLoop, sock: socket.socket, data: Any, address: Any) -> int:
    check_socket(loop, sock)
    try:
        return sock.sendto(data, address)
    except (BlockingIOError, InterruptedError):
        return cast(int, await _retry(loop, sock, WRITE, "sendto", data, 0, address))


async def sock_connect(loop: EventLoop, sock: socket.socket, address: Any) -> None:
    check_socket(loop, sock)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        infos = await loop._ensure_resolved(address, family=sock.family, type=sock.type, proto=sock.proto)
        address = infos[0][4]
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    # The connection goes on in the background; writability says it ended, SO_ERROR how.
    await wait_ready(loop, sock.fileno(), WRITE)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, f"Connect call failed {address}")


def _accept(sock: socket.socket) -> tuple[socket.socket, Any]:
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address


async def sock_accept(loop: EventLoop, sock: socket.socket) -> tuple[socket.socket, Any]:
    check_socket(loop, sock)
    fd = sock.fileno()
    while True:
        try:
            return _accept(sock)
        except (BlockingIOError, InterruptedError):
            await wait_ready(loop, fd, READ)


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


async def sock_sendfile(
    loop: EventLoop, sock: socket.socket, file: Any, offset: int, count: int | None, fallback: bool
) -> int:
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    check_socket(loop, sock)
    check_sendfile_params(sock, file, offset, count)
    try:
        return await _sendfile_native(loop, sock, file, offset, count)
    except asyncio.SendfileNotAvailableError:
        if not fallback:
            raise
    return await _sendfile_fallback(loop, sock, file, offset, count)


async def _sendfile_native(loop: EventLoop, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
    """Zero-copy `os.sendfile`; SendfileNotAvailableError before any byte is sent."""
    if not hasattr(os, "sendfile"):
        raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
    # A closed file's ValueError is the caller's error, not a reason to fall back.
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation) as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    try:
        fsize = os.fstat(fileno).st_size
    except OSError as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    blocksize = count if count else fsize
    if not blocksize:
        return 0
    fut: asyncio.Future[int] = loop.create_future()
    SockSendfileStep(loop.add_writer, loop.remove_writer).start(fut, sock, fileno, offset, count, blocksize)
    return await fut


async def _sendfile_fallback(loop: EventLoop, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
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
            read = await loop.run_in_executor(None, file.readinto, view)
            if not read:
                break
            await sock_sendall(loop, sock, view[:read])
            total += read
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)
