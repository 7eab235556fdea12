"""The loop's low-level socket operations: `sock_recv` ... `sock_accept`.

Every operation follows one pattern: try the syscall at once, and only when it would
block, wait for readiness (`wait_ready`) and try again. The invariant owned here: an
operation holds a reader or writer registration only while it waits, and drops it in
the same tick it resumes; with the reactor's lazy interest (reactor/base.py) a loop of
`sock_recv` calls therefore costs no epoll_ctl at all while data keeps arriving.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from looplet.engine.reactor import READ, WRITE
from looplet.services.resolver import ensure_resolved

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from looplet.engine.io import Io

_T = TypeVar("_T")

_RECV = socket.socket.recv
_RECVFROM = socket.socket.recvfrom


def check_socket(io: Io, sock: socket.socket) -> None:
    """Reject SSL sockets always and blocking sockets in debug mode, as asyncio does."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if io.debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def _set_ready(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_ready(io: Io, fd: int, direction: int) -> None:
    """Wait until `fd` is ready in `direction`: the one place a sock_* call waits."""
    io.check_unclaimed(fd)
    fut = io.loop.create_future()
    handle = io.add(fd, direction, _set_ready, fut)
    try:
        await fut
    finally:
        # A handle cancelled meanwhile was replaced by someone else's: not ours to remove.
        if not handle._cancelled:
            io.remove(fd, direction)


async def _retry(io: Io, sock: socket.socket, direction: int, attempt: Callable[[], _T]) -> _T:
    fd = sock.fileno()
    while True:
        await wait_ready(io, fd, direction)
        try:
            # `attempt` looks the method up on every try, as asyncio does: the socket
            # may be a wrapper whose methods change between tries.
            return attempt()
        except (BlockingIOError, InterruptedError):
            continue


def _fits(view: memoryview, n: object, method: object, plain: object) -> bool:
    # The read buffer serves a size it can hold, on a socket whose method is the
    # socket's own. Anything else (0, negative, too large, not an int; a socket class
    # that overrides the method, or no socket at all) calls the method, which reads or
    # raises as under asyncio: recv_into would take 0 to mean "the whole buffer".
    return method is plain and type(n) is int and 0 < n <= len(view)


def _recv(sock: socket.socket, view: memoryview, n: int) -> bytes:
    # Read into the loop's buffer and copy out what arrived, in one step: nothing else
    # can run in between and reuse the buffer.
    nbytes = sock.recv_into(view, n)
    return view[:nbytes].tobytes()


def _recvfrom(sock: socket.socket, view: memoryview, n: int) -> tuple[bytes, Any]:
    nbytes, address = sock.recvfrom_into(view, n)
    return view[:nbytes].tobytes(), address


async def sock_recv(io: Io, sock: socket.socket, n: int) -> bytes:
    check_socket(io, sock)
    view = io.read_buffer
    if not _fits(view, n, getattr(type(sock), "recv", None), _RECV):
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            return await _retry(io, sock, READ, lambda: sock.recv(n))
    try:
        return _recv(sock, view, n)
    except (BlockingIOError, InterruptedError):
        return await _retry(io, sock, READ, lambda: _recv(sock, view, n))


async def sock_recv_into(io: Io, sock: socket.socket, buf: Any) -> int:
    check_socket(io, sock)
    try:
        return sock.recv_into(buf)
    except (BlockingIOError, InterruptedError):
        return await _retry(io, sock, READ, lambda: sock.recv_into(buf))


async def sock_recvfrom(io: Io, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
    check_socket(io, sock)
    view = io.read_buffer
    if not _fits(view, bufsize, getattr(type(sock), "recvfrom", None), _RECVFROM):
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            return await _retry(io, sock, READ, lambda: sock.recvfrom(bufsize))
    try:
        return _recvfrom(sock, view, bufsize)
    except (BlockingIOError, InterruptedError):
        return await _retry(io, sock, READ, lambda: _recvfrom(sock, view, bufsize))


async def sock_recvfrom_into(io: Io, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
    check_socket(io, sock)
    if not nbytes:
        nbytes = len(buf)
    try:
        return sock.recvfrom_into(buf, nbytes)
    except (BlockingIOError, InterruptedError):
        return await _retry(io, sock, READ, lambda: sock.recvfrom_into(buf, nbytes))


async def sock_sendall(io: Io, sock: socket.socket, data: Any) -> None:
    check_socket(io, sock)
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
        await wait_ready(io, fd, WRITE)
        try:
            n += sock.send(view[n:])
        except (BlockingIOError, InterruptedError):
            continue


async def sock_sendto(io: Io, sock: socket.socket, data: Any, address: Any) -> int:
    check_socket(io, sock)
    try:
        return sock.sendto(data, address)
    except (BlockingIOError, InterruptedError):
        return await _retry(io, sock, WRITE, lambda: sock.sendto(data, 0, address))


async def sock_connect(io: Io, sock: socket.socket, address: Any) -> None:
    check_socket(io, sock)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        infos = await ensure_resolved(io.loop, address, family=sock.family, type=sock.type, proto=sock.proto)
        address = infos[0][4]
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    # The connection goes on in the background; writability says it ended, SO_ERROR how.
    await wait_ready(io, sock.fileno(), WRITE)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, f"Connect call failed {address}")


def _accept(sock: socket.socket) -> tuple[socket.socket, Any]:
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address


async def sock_accept(io: Io, sock: socket.socket) -> tuple[socket.socket, Any]:
    check_socket(io, sock)
    fd = sock.fileno()
    while True:
        try:
            return _accept(sock)
        except (BlockingIOError, InterruptedError):
            await wait_ready(io, fd, READ)
