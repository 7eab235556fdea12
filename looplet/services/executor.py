"""Blocking work off the loop: the default executor.

The invariants owned here: the loop creates at most one default executor, lazily, and
once `shutdown_default_executor()` or `close()` has run, no new work reaches it; every
job run through the loop, and the thread that joins the default executor, is in the
loop's `outside` set from its start until its result reached the loop, or nobody
waits for it any more (what a virtual clock needs to know not to jump past it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from looplet._asyncio import set_result_unless_cancelled

if TYPE_CHECKING:
    from looplet.engine.io import Io

logger = logging.getLogger("asyncio")


class DefaultExecutor:
    """The loop's default executor: made on first use, shut down once."""

    def __init__(self, io: Io) -> None:
        self._loop = io.loop
        self._outside = io.outside
        self.default: concurrent.futures.ThreadPoolExecutor | None = None
        #: Set by shutdown_default_executor() and close(): no new default executor.
        self.shutdown_called: bool = False

    def run(
        self, executor: concurrent.futures.Executor | None, func: Callable[..., Any], args: tuple[Any, ...]
    ) -> asyncio.Future[Any]:
        if executor is None:
            if self.shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self.default
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self.default = executor
        job = executor.submit(func, *args)
        future = asyncio.wrap_future(job, loop=self._loop)
        self._outside.add(job)
        # Dropped on the loop's thread once the result is here (or nobody waits for it
        # any more): a discard from the worker thread could not wake a loop that waits
        # for real because of the job.
        future.add_done_callback(functools.partial(_discard, self._outside, job))
        return future

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
        self._outside.add(thread)
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
        finally:
            self._outside.discard(thread)

    def _join(self, executor: concurrent.futures.ThreadPoolExecutor, future: asyncio.Future[None]) -> None:
        loop = self._loop
        try:
            executor.shutdown(wait=True)
            if not loop.is_closed():
                loop.call_soon_threadsafe(set_result_unless_cancelled, future, None)
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


def _discard(outside: set[object], token: object, future: asyncio.Future[Any]) -> None:
    outside.discard(token)
