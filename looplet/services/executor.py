"""Blocking work off the loop: the default executor and name resolution.

The invariant owned here: the loop creates at most one default executor, lazily, and
once `shutdown_default_executor()` or `close()` has run, no new work reaches it.
Numeric addresses never go to a thread: `getaddrinfo` first asks the C library with
AI_NUMERICHOST, which answers from the string alone, and only a real name is
resolved in the executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from looplet.loop import EventLoop

logger = logging.getLogger("asyncio")

AddrInfo = list[tuple[Any, Any, int, str, Any]]


class Executors:
    """The loop's default executor and its shutdown."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self.default: concurrent.futures.ThreadPoolExecutor | None = None
        #: Set by shutdown_default_executor() and close(): no new default executor.
        self.shutdown_called: bool = False

    def run(
        self, executor: concurrent.futures.Executor | None, func: Callable[..., Any], args: tuple[Any, ...]
    ) -> asyncio.Future[Any]:
        loop = self._loop
        loop._check_closed()
        if loop._debug:
            loop._check_callback(func, "run_in_executor")
        if executor is None:
            if self.shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self.default
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self.default = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=loop)

    def set_default(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self.default = executor

    async def shutdown(self, timeout: float | None) -> None:
        """Join the default executor's threads in a helper thread, up to `timeout`."""
        self.shutdown_called = True
        executor = self.default
        if executor is None:
            return
        loop = self._loop
        future = loop.create_future()
        thread = threading.Thread(target=self._join, args=(executor, future))
        thread.start()
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=3,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    def _join(self, executor: concurrent.futures.ThreadPoolExecutor, future: asyncio.Future[None]) -> None:
        loop = self._loop
        try:
            executor.shutdown(wait=True)
            if not loop.is_closed():
                loop.call_soon_threadsafe(_set_result_unless_cancelled, future)
        except Exception as ex:
            if not loop.is_closed() and not future.cancelled():
                loop.call_soon_threadsafe(future.set_exception, ex)

    def close(self) -> None:
        """The loop is closing: stop the default executor without waiting, as asyncio does."""
        self.shutdown_called = True
        executor = self.default
        if executor is not None:
            self.default = None
            executor.shutdown(wait=False)


def _set_result_unless_cancelled(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.set_result(None)


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
