"""EventLoop: looplet's `asyncio.AbstractEventLoop`, a facade over its layers.

The loop *has* its parts and delegates to them: the engine (looplet/engine/: the
scheduler with its run queue, timers, reactor and clock; the `Io` driver; `Calls`, the
busiest entry points), the services (looplet/services/: signals, executors, socket
operations, the resolver, the child watcher, error reporting) and the endpoints
(looplet/endpoints/: connections, servers, datagrams, TLS, subprocesses and pipes,
sendfile), which build the transports (looplet/transports/). Each method here checks
its arguments as asyncio does and delegates. The invariant owned here is the
running-loop bookkeeping: while `run_forever` runs, this loop is the thread's running
loop, its async-generator hooks are installed, and `_thread_id` names the thread; all
three are undone when it returns, however it returns.

asyncio's own `Future` and `Task` (C-accelerated where available) are used as they
are: the loop only schedules their callbacks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import Context, copy_context
from typing import Any, TypeVar, TypeVarTuple, Unpack, cast

from looplet._asyncio import (
    DEBUG_STACK_DEPTH,
    SSL_HANDSHAKE_TIMEOUT,
    SSL_SHUTDOWN_TIMEOUT,
    ThreadSafeHandle,
    base_sendfile,
    base_subprocess_exec,
    base_subprocess_shell,
    get_running_loop_or_none,
    is_debug_mode,
    iscoroutinefunction,
    set_running_loop,
    set_task_name,
)
from looplet.endpoints import connect, processes, sendfile, serve, tls
from looplet.endpoints import datagram as datagram_endpoints
from looplet.engine.calls import Calls
from looplet.engine.clock import Clock
from looplet.engine.handles import new_handle as _new_handle
from looplet.engine.handles import new_timer_handle as _new_timer_handle
from looplet.engine.io import IoDriver
from looplet.engine.reactor import READ, WRITE
from looplet.engine.scheduler import Scheduler
from looplet.services import errors, resolver, sockio
from looplet.services.children import ChildWatcher
from looplet.services.executor import DefaultExecutor
from looplet.services.resolver import AddrInfo
from looplet.services.signals import SignalHandlers
from looplet.tools.observe import LoopTools, Statistics
from looplet.transports.pipe import ReadPipeTransport, WritePipeTransport
from looplet.transports.stream import SocketTransport
from looplet.transports.subprocess import SubprocessTransport

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _run_until_complete_cb(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # Let the exception propagate out of run_forever by not stopping here.
            return
    fut.get_loop().stop()


def _trim_source_traceback(obj: object) -> None:
    # Debug mode records where a handle was created; drop the loop's own frame.
    tb = getattr(obj, "_source_traceback", None)
    if tb:
        del tb[-1]


def _check_arguments(clock: object, reactor: object, shuffle_seed: object) -> None:
    # The TypeErrors asyncio's style asks for, before the scheduler's own code (compiled
    # by mypyc, whose messages name C types) sees a wrong type.
    if clock is not None and not isinstance(clock, Clock):
        raise TypeError(f"clock must be a looplet.Clock or None, not {type(clock).__name__}")
    if reactor is not None and not isinstance(reactor, str):
        raise TypeError(f"reactor must be a str (epoll, poll, kqueue) or None, not {type(reactor).__name__}")
    if shuffle_seed is not None and not isinstance(shuffle_seed, int):
        raise TypeError(f"shuffle_seed must be an int or None, not {type(shuffle_seed).__name__}")


class EventLoop(asyncio.AbstractEventLoop):
    """An asyncio event loop on looplet's reactor, scheduler and run queue.

    Args:
        clock: where `time()` comes from; a `looplet.testing.VirtualClock` makes the
            loop jump over idle time instead of sleeping.
        reactor: "epoll", "kqueue" or "poll"; by default `$LOOPLET_REACTOR`, else the
            best the platform has.
        shuffle_seed: run each tick's ready work in an order shuffled by this seed
            (see `set_shuffle`); None, the default, keeps asyncio's FIFO order.
    """

    def __init__(
        self, *, clock: Clock | None = None, reactor: str | None = None, shuffle_seed: int | None = None
    ) -> None:
        # Arguments first, before anything is made: a bad one leaves nothing open, and
        # nothing half set up for __del__ to trip over.
        _check_arguments(clock, reactor, shuffle_seed)
        #: Closed until set up: a loop whose set-up failed has nothing for close() to do.
        self._closed = True
        self._debug = False
        self._scheduler = Scheduler(clock, reactor)
        try:
            self._set_up(shuffle_seed)
        except BaseException:
            # (A RuntimeWarning of LOOPLET_TRACE's, under -W error, say.)
            self._scheduler.close()
            raise
        self._closed = False
        self._bind_calls()

    def _set_up(self, shuffle_seed: int | None) -> None:
        # The scheduler's run queue, timer heap and clock, bound here for call_soon & co.
        self._ready = self._scheduler.ready
        self._timers = self._scheduler.timers
        self._now = self._scheduler._now
        # asyncio's private hook, called by TimerHandle.cancel(): the timer queue's own
        # method, bound here so a cancel costs no extra call.
        self._timer_handle_cancelled = self._timers.cancelled
        self._io = IoDriver(self, self._scheduler)
        self._calls = Calls(self, self._scheduler)
        #: Other threads' way to make a blocked poll return (thread-safe).
        self._wake = self._scheduler.reactor.wakeup.wake
        self._thread_id: int | None = None
        self._exception_handler: errors.ExceptionHandler | None = None
        self._task_factory: Any = None
        self._executors = DefaultExecutor(self._io)
        self._signals = SignalHandlers(self._io)
        #: Made on the first subprocess: most loops never start one.
        self._child_watcher: ChildWatcher | None = None
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._old_agen_hooks: Any = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        self._tools = LoopTools(self, self._scheduler, shuffle_seed)
        self.set_debug(is_debug_mode())
        if type(self).time is not EventLoop.time:
            self._follow_time()

    # asyncio's loop reads self.time() for every timer decision, so replacing time() on
    # a loop (a subclass, or a test's `mock.patch.object(loop, "time", ...)`) moves its
    # timers; looplet reads its clock directly, except after such a replacement, which
    # is seen here when it is made and undone. Nothing else looks: no cost per tick.
    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "time":
            self._follow_time()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        if name == "time":
            self._follow_time()

    def _bind_calls(self) -> None:
        # The busiest entry points (engine/calls.py) are instance attributes while the
        # loop is open and not in debug mode, where lookup finds them first; never over
        # a subclass's own method of that name, nor over what a test patched in. (Not
        # through self.__dict__: making the dict real would slow every attribute read.)
        calls = self._calls
        calls.slow = self._closed or self._debug
        cls = type(self)
        for name in Calls.NAMES:
            found = getattr(self, name)
            if getattr(found, "__self__", None) is calls:
                if calls.slow:
                    object.__delattr__(self, name)
            elif (
                getattr(found, "__func__", None) is getattr(cls, name)  # nothing patched in
                and not calls.slow
                and Calls.BIND
                and getattr(cls, name) is getattr(EventLoop, name)  # no subclass's own
            ):
                object.__setattr__(self, name, getattr(calls, name))

    def _follow_time(self) -> None:
        replaced = "time" in self.__dict__ or type(self).time is not EventLoop.time
        self._scheduler.read_time_from(self.time if replaced else None)
        self._now = self._scheduler._now

    def __repr__(self) -> str:
        return f"<{type(self).__name__} running={self.is_running()} closed={self.is_closed()} debug={self.get_debug()}>"

    # -- running and stopping -----------------------------------------------------

    def run_forever(self) -> None:
        """Run until stop() is called."""
        self._run_forever_setup()
        try:
            tick = self._scheduler.tick
            scheduler = self._scheduler
            while True:
                tick()
                if scheduler.stopping:
                    break
        finally:
            self._run_forever_cleanup()

    def _run_forever_setup(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook)
        set_running_loop(self)

    def _run_forever_cleanup(self) -> None:
        self._scheduler.stopping = False
        self._thread_id = None
        set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def run_until_complete(self, future: Generator[Any, None, T] | Awaitable[T]) -> T:
        """Run until the future (or coroutine, wrapped in a Task) is done; return its result."""
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        fut: asyncio.Future[T] = asyncio.ensure_future(cast("Awaitable[T]", future), loop=self)
        if new_task:
            # Its exception reaches the caller; don't also log "never retrieved".
            fut._log_destroy_pending = False  # type: ignore[attr-defined]
        fut.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(_run_until_complete_cb)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()

    def stop(self) -> None:
        """Stop after the current tick (or, if not running, after the next run's first tick)."""
        self._scheduler.stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the loop: drop pending callbacks, signal handlers, fds and the executor.

        Raises:
            RuntimeError: the loop is running.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            errors.logger.debug("Close %r", self)
        self._closed = True
        self._bind_calls()
        self._io.close()
        self._signals.close()
        if self._child_watcher is not None:
            self._child_watcher.close()
        self._scheduler.close()
        self._executors.close()
        self._tools.close()
        if threading.active_count() > 1:
            # Let a thread that the last callbacks woke (a worker told to stop, which
            # may hold a reference to this loop) take the GIL before close() returns.
            # asyncio's close() gives it the chance by accident, closing its self-pipe
            # and selector; a caller that drops the loop and collects it relies on it.
            time.sleep(0)

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if not getattr(self, "_closed", True):
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if get_running_loop_or_none() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        if self._thread_id is not None and threading.get_ident() != self._thread_id:
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one")

    def _check_callback(self, callback: object, method: str) -> None:
        if asyncio.iscoroutine(callback) or iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    # -- async generators ------------------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator still alive (run by asyncio.run at exit)."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[ag.aclose() for ag in closing], return_exceptions=True)
        for result, agen in zip(results, closing, strict=False):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait (up to `timeout` seconds) for the default executor's threads to finish."""
        await self._executors.shutdown(timeout)

    # -- scheduling callbacks ----------------------------------------------------------

    def call_soon(
        self, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.Handle:
        """Run `callback(*args)` on the next tick, in FIFO order."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle: Any
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle = asyncio.Handle(callback, args, self, context)
            _trim_source_traceback(handle)
        else:
            handle = _new_handle(callback, args, self, copy_context() if context is None else context)
        self._ready.append(handle)
        return handle  # type: ignore[no-any-return]  # looplet's Handle: asyncio's API, not its class

    def call_soon_threadsafe(
        self, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.Handle:
        """Like call_soon(), from any thread: wakes the loop if it is blocked."""
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle: Any
        if ThreadSafeHandle is not None:
            # 3.14+: cancel() from another thread waits while the callback runs.
            handle = ThreadSafeHandle(callback, args, self, context)
            # Its __init__ is a frame of asyncio's more than Handle's to drop.
            _trim_source_traceback(handle)
            _trim_source_traceback(handle)
        elif self._debug:
            handle = asyncio.Handle(callback, args, self, context)
            _trim_source_traceback(handle)
        else:
            handle = _new_handle(callback, args, self, copy_context() if context is None else context)
        # Append before waking: the wake-up must find the work already queued.
        self._ready.append(handle)
        self._wake()
        return handle  # type: ignore[no-any-return]  # looplet's Handle: asyncio's API, not its class

    def _write_to_self(self) -> None:
        # asyncio's name for "wake the loop", used by asyncio.Runner and some libraries.
        self._wake()

    def call_later(
        self, delay: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` after `delay` seconds."""
        if delay is None:
            raise TypeError("delay must not be None")
        if self._debug:
            debug_timer = self.call_at(self._now() + delay, callback, *args, context=context)
            _trim_source_traceback(debug_timer)
            return debug_timer
        # call_at's non-debug path, inlined: timers are made by the hundred thousand.
        when = self._now() + delay
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer = _new_timer_handle(when, callback, args, self, copy_context() if context is None else context)
        self._timers.push(timer)
        return timer  # type: ignore[return-value]  # looplet's TimerHandle: asyncio's API, not its class

    def call_at(
        self, when: float, callback: Callable[[Unpack[Ts]], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` at loop time `when`."""
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        timer: Any
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
            timer = asyncio.TimerHandle(when, callback, args, self, context)
            _trim_source_traceback(timer)
            self._timers.push_other(timer)
        else:
            timer = _new_timer_handle(when, callback, args, self, copy_context() if context is None else context)
            self._timers.push(timer)
        return timer  # type: ignore[no-any-return]  # looplet's TimerHandle: asyncio's API, not its class

    def time(self) -> float:
        """The loop's monotonic clock, in seconds."""
        return self._scheduler.clock_now()

    # -- futures and tasks ---------------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        """Create an asyncio.Future attached to this loop."""
        return asyncio.Future(loop=self)

    if sys.version_info >= (3, 14):

        def create_task(self, coro: Coroutine[Any, Any, T], **kwargs: Any) -> asyncio.Task[T]:
            """Wrap a coroutine in an asyncio Task (or the task factory's kind) and schedule it.

            Every keyword (`name`, `context`, `eager_start`, ...) goes to the task factory
            or to `asyncio.Task` as it is, as asyncio's loop does from 3.14 on.
            """
            if self._closed:
                raise RuntimeError("Event loop is closed")
            if self._task_factory is not None:
                return self._task_factory(self, coro, **kwargs)  # type: ignore[no-any-return]
            task = asyncio.Task(coro, loop=self, **kwargs)
            if self._debug:
                _trim_source_traceback(task)
            return task

    else:

        def create_task(  # type: ignore[override]  # typeshed (3.13) lists 3.14's eager_start
            self,
            coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
            *,
            name: str | None = None,
            context: Context | None = None,
        ) -> asyncio.Task[T]:
            """Wrap a coroutine in an asyncio Task (or the task factory's kind) and schedule it."""
            if self._closed:
                raise RuntimeError("Event loop is closed")
            if self._task_factory is None:
                task = asyncio.Task(coro, loop=self, name=name, context=context)  # type: ignore[arg-type]  # 3.12+ typeshed: coroutines only
                if self._debug:
                    _trim_source_traceback(task)
                return task
            task = (
                self._task_factory(self, coro) if context is None else self._task_factory(self, coro, context=context)
            )
            if name is not None:
                set_task_name(task, name)
            return task  # type: ignore[no-any-return]

    def set_task_factory(self, factory: Any) -> None:
        """Use `factory(loop, coro, **kwargs)` for create_task; None restores the default."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory
        self._calls.task_factory = factory

    def get_task_factory(self) -> Any:
        """Return the task factory, or None if the default one is in use."""
        return self._task_factory

    # -- executors and name resolution ------------------------------------------------------

    def run_in_executor(
        self, executor: concurrent.futures.Executor | None, func: Callable[[Unpack[Ts]], T], *args: *Ts
    ) -> asyncio.Future[T]:
        """Run `func(*args)` in `executor` (the default thread pool if None)."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        return self._executors.run(executor, func, args)

    def set_default_executor(self, executor: Any) -> None:
        """Use `executor` (a ThreadPoolExecutor) for run_in_executor(None, ...)."""
        self._executors.set_default(executor)

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> AddrInfo:
        """socket.getaddrinfo without blocking the loop; numeric hosts never use a thread."""
        return await resolver.getaddrinfo(self, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """socket.getnameinfo in the default executor."""
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # -- fd watching ---------------------------------------------------------------------

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Run `callback(*args)` whenever `fd` is readable."""
        self._io.check_unclaimed(fd)
        self._io.add(fd, READ, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching `fd` for reading; return True if it was watched."""
        self._io.check_unclaimed(fd)
        return self._io.remove(fd, READ)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Run `callback(*args)` whenever `fd` is writable."""
        self._io.check_unclaimed(fd)
        self._io.add(fd, WRITE, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching `fd` for writing; return True if it was watched."""
        self._io.check_unclaimed(fd)
        return self._io.remove(fd, WRITE)

    # -- low-level socket operations ---------------------------------------------------

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receive up to `nbytes` bytes from a non-blocking socket."""
        return await sockio.sock_recv(self._io, sock, nbytes)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into the writable buffer `buf`; return the number of bytes."""
        return await sockio.sock_recv_into(self._io, sock, buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to `bufsize` bytes; return (data, address)."""
        return await sockio.sock_recvfrom(self._io, sock, bufsize)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into `buf`; return (nbytes, address)."""
        return await sockio.sock_recvfrom_into(self._io, sock, buf, nbytes)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of `data`, waiting for the socket to drain as needed."""
        await sockio.sock_sendall(self._io, sock, data)

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send a datagram to `address`; return the number of bytes sent."""
        return await sockio.sock_sendto(self._io, sock, data, address)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect the socket to `address`, resolving a host name without blocking."""
        await sockio.sock_connect(self._io, sock, address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection; return (conn, address), `conn` non-blocking."""
        return await sockio.sock_accept(self._io, sock)

    async def sock_sendfile(
        self, sock: socket.socket, file: Any, offset: int = 0, count: int | None = None, *, fallback: bool | None = True
    ) -> int:
        """Send a file over a socket: zero-copy `os.sendfile` where possible."""
        return await sendfile.sock_sendfile(self._io, sock, file, offset, count, bool(fallback))

    # -- signals ---------------------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts) -> None:
        """Run `callback(*args)` on the loop when signal `sig` arrives (main thread only)."""
        self._signals.add(sig, callback, args)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for `sig`; return True if one was installed."""
        return self._signals.remove(sig)

    # -- pipes and subprocesses (looplet/endpoints/processes.py) -------------------------

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Read from `pipe` (a pipe, FIFO, tty or socket file object) through a protocol.

        Raises:
            ValueError: `pipe` is a regular file or anything else that cannot be polled.
        """
        return await processes.connect_pipe(self._io, ReadPipeTransport, "Read", protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any], pipe: Any) -> tuple[Any, Any]:
        """Write to `pipe` (a pipe, FIFO, character device or socket file object) through a protocol.

        Raises:
            ValueError: `pipe` is a regular file or anything else that cannot be polled.
        """
        return await processes.connect_pipe(self._io, WritePipeTransport, "Write", protocol_factory, pipe)

    async def subprocess_shell(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        cmd: bytes | str,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run `cmd` through the shell; return (SubprocessTransport, protocol).

        Raises:
            ValueError: `cmd` is not a string, or an argument asks for text mode,
                buffering or no shell, as in asyncio.
        """
        return await base_subprocess_shell(  # type: ignore[no-any-return]
            self,
            protocol_factory,
            cmd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=universal_newlines,
            shell=shell,
            bufsize=bufsize,
            encoding=encoding,
            errors=errors,
            text=text,
            **kwargs,
        )

    async def subprocess_exec(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run `program` with `args` (no shell); return (SubprocessTransport, protocol).

        Raises:
            ValueError: an argument asks for text mode, buffering or a shell, as in asyncio.
        """
        return await base_subprocess_exec(  # type: ignore[no-any-return]
            self,
            protocol_factory,
            program,
            *args,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=universal_newlines,
            shell=shell,
            bufsize=bufsize,
            encoding=encoding,
            errors=errors,
            text=text,
            **kwargs,
        )

    # -- connections, servers, datagram endpoints, TLS, sendfile (looplet/endpoints) ------

    async def create_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: Any = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, Any]:
        """Open a stream connection to host:port (or wrap `sock`); return (transport, protocol)."""
        return await connect.create_connection(
            self._io,
            protocol_factory,
            host,
            port,
            ssl=ssl,
            family=family,
            proto=proto,
            flags=flags,
            sock=sock,
            local_addr=local_addr,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=interleave,
            all_errors=all_errors,
        )

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> asyncio.Server:
        """Listen on host(s):port (or on `sock`); return an asyncio Server."""
        return await serve.create_server(
            self._io,
            protocol_factory,
            host,
            port,
            family=family,
            flags=flags,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
            keep_alive=keep_alive,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
        )

    async def create_unix_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        path: str | os.PathLike[str] | None = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, Any]:
        """Open a stream connection to a Unix socket path (or wrap `sock`)."""
        return await connect.create_unix_connection(
            self._io,
            protocol_factory,
            path,
            ssl=ssl,
            sock=sock,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_unix_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        path: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> asyncio.Server:
        """Listen on a Unix socket path (or on `sock`); return an asyncio Server."""
        return await serve.create_unix_server(
            self._io,
            protocol_factory,
            path,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
            cleanup_socket=cleanup_socket,
        )

    async def connect_accepted_socket(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, Any]:
        """Wrap a socket accepted elsewhere in a transport (server side)."""
        return await connect.connect_accepted_socket(
            self._io,
            protocol_factory,
            sock,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], Any],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, Any]:
        """Open a datagram endpoint (UDP or Unix); return (transport, protocol)."""
        return await datagram_endpoints.create_datagram_endpoint(
            self._io,
            protocol_factory,
            local_addr,
            remote_addr,
            family=family,
            proto=proto,
            flags=flags,
            reuse_port=reuse_port,
            allow_broadcast=allow_broadcast,
            sock=sock,
        )

    async def start_tls(  # type: ignore[override]
        self,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrade `transport` to TLS; return the new transport `protocol` now uses."""
        return await tls.start_tls(
            self,
            transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    async def sendfile(  # type: ignore[override]
        self, transport: Any, file: Any, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        """Send a file over a transport: zero-copy where possible; return the bytes sent."""
        return await base_sendfile(self, transport, file, offset, count, fallback=fallback)  # type: ignore[no-any-return]

    # -- what asyncio's own code calls on the loop -------------------------------------
    # asyncio's Server, BaseEventLoop.sendfile and BaseEventLoop.subprocess_exec/shell
    # (all run on this loop) call these by their private names.

    def _start_serving(
        self,
        protocol_factory: Callable[[], Any],
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT,
        context: Context | None = None,
    ) -> None:
        serve.start_serving(
            self._io,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            context,
        )

    def _stop_serving(self, sock: socket.socket) -> None:
        serve.stop_serving(self._io, sock)

    async def _sendfile_native(self, transp: SocketTransport, file: Any, offset: int, count: int | None) -> int:
        return await sendfile.transport_sendfile_native(self._io, transp, file, offset, count)

    async def _sendfile_fallback(self, transp: Any, file: Any, offset: int, count: int | None) -> int:
        return await sendfile.transport_sendfile_fallback(self, transp, file, offset, count)

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
        processes.log_subprocess(msg, stdin, stdout, stderr)

    async def _make_subprocess_transport(  # type: ignore[override]
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Any = None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        self._check_closed()
        watcher = self._child_watcher
        if watcher is None:
            watcher = self._child_watcher = ChildWatcher(self._io)
        return await processes.make_subprocess_transport(
            self._io, watcher, protocol, args, shell, stdin, stdout, stderr, bufsize, extra, **kwargs
        )

    # -- looplet's own: seeing and steering (looplet/tools) -----------------------------

    def statistics(self) -> Statistics:
        """What the loop has done so far (see `looplet.Statistics`)."""
        return self._tools.statistics()

    def enable_timing(self, enabled: bool = True) -> None:
        """Time every callback: fills `statistics()`'s busy time, slowest callbacks and lag.

        Off by default: it costs two clock reads per callback. Turning it on again
        starts from zero.
        """
        self._tools.enable_timing(enabled)

    def get_clock(self) -> Clock:
        """The clock `time()` reads (looplet's own; not part of asyncio's loop API)."""
        return self._scheduler.clock

    def set_clock(self, clock: Clock) -> None:
        """Read time from `clock` from now on (looplet's own; not in asyncio's loop API).

        Timers keep their deadlines, which are loop times: give a virtual clock the
        current `time()` as its start (`VirtualClock(start=loop.time())`) and pending
        timers fire when they would have. Raises `TypeError` for anything not a
        `looplet.Clock`.
        """
        self._tools.set_clock(clock)
        self._now = self._scheduler._now

    def set_shuffle(self, seed: int | None) -> None:
        """Run each tick's ready work in a seeded random order, or (None) in FIFO order.

        For tests that want to shake out code relying on an ordering asyncio does not
        promise between independent callbacks; the same seed gives the same order run
        after run. Off by default: FIFO is asyncio's contract.
        """
        self._tools.set_shuffle(seed)

    # -- errors and debug ------------------------------------------------------------------

    def set_exception_handler(self, handler: errors.ExceptionHandler | None) -> None:  # type: ignore[override]
        """Set `handler(loop, context)` as the loop's exception handler (None: the default)."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def get_exception_handler(self) -> errors.ExceptionHandler | None:  # type: ignore[override]
        """Return the exception handler set, or None for the default."""
        return self._exception_handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log the error described by `context` (see call_exception_handler)."""
        errors.default_exception_handler(self._io, context)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an error no caller can see: to the handler set, or the default one."""
        errors.call_exception_handler(self, self._exception_handler, context)

    def get_debug(self) -> bool:
        """True if the loop is in asyncio debug mode."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn asyncio debug mode on or off (slow callbacks, thread checks, origins)."""
        self._debug = enabled
        self._io.debug = bool(enabled)
        self._scheduler.observe(debug=bool(enabled))
        self._bind_calls()
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    @property
    def slow_callback_duration(self) -> float:
        """In debug mode, callbacks running longer than this many seconds are logged."""
        return self._scheduler.slow_callback_duration

    @slow_callback_duration.setter
    def slow_callback_duration(self, value: float) -> None:
        self._scheduler.slow_callback_duration = value

    @property
    def _current_handle(self) -> Any:
        return self._scheduler.current_handle

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth or 0)
        self._coroutine_origin_tracking_enabled = enabled
