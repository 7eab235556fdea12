"""Load: looplet holds up at scale where stock asyncio does.

Four workloads, each run on stock asyncio and on looplet (the `loop` fixture, which also
fails the test on a leaked fd, thread or child process):

- 10,000 TCP connections on 127.0.0.1, all open at once, each echoing one message: the
  server sees 10,000 simultaneous connections, every client gets its own bytes back.
- 1,000,000 timers (call_later, delays spread over 10 ms), 90% cancelled: the rest fire
  exactly once each, in deadline order, and the cancelled ones are freed.
- 100,000 tasks alive at once, all awaiting one future, then released with the right results.
- call_soon_threadsafe from 8 threads at once, 50,000 callbacks each: every callback runs
  exactly once, each thread's in the order it scheduled them.

Memory is measured at the moment of peak load, as RSS and as a count of live allocations
(see `Footprint`), per connection, timer, task or callback, against limits stated with
the figures they were picked from; after the run, the allocations must be given back.

The full-size runs are `@pytest.mark.load`. Each also runs at a small size without the
mark, so CI's debug-mode and per-reactor reruns cover the same paths; memory is asserted
at full size only, where it stands well above the noise of pages and arenas.

This file is also a script: `python test_load.py clients KIND PORT N MAX_IN_FLIGHT` is the
client side of the connection test, run in a child process when the fd limit allows one
end of 10,000 connections per process but not both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import itertools
import json
import os
import random
import resource
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import pytest
from support import join, wait_for

import looplet

HOST: Final = "127.0.0.1"
TESTS_DIR: Final = os.path.dirname(os.path.abspath(__file__))

# Connection test. One message per connection, unique to it; the byte after the echo tells
# the server that the client has checked its echo (so "all acknowledged" means every client
# holds a verified, still-open connection).
N_CONNECTIONS: Final = 10_000
MSG_LEN: Final = 64
ACK: Final = b"!"
# Connections whose handshake or echo is still under way, at most (fewer if
# net.core.somaxconn is below twice this): the kernel queues finished handshakes for
# accept() in a queue capped by the listen backlog and somaxconn; beyond it, handshakes
# are dropped and retried a second later.
MAX_IN_FLIGHT: Final = 1000
# fds beyond the connections' own: the interpreter's, pytest's, the loop's. Added to the
# highest fd open now (RLIMIT_NOFILE caps fd numbers, not a count).
FD_MARGIN: Final = 256
# Per connection end (a socket, its transport, stream reader and writer, and the task
# that serves it) in one process at peak. Measured at 10,000 (server here, clients in a
# child process; 2-CPU machine, Python 3.11-3.13): asyncio 4.7-5.8 KiB and 50-52
# allocations per server end, 5.8-6.7 KiB and 53-55 per client end; looplet 4.6-5.4 KiB
# and 48-49, 6.3-6.5 KiB and 50-52. Both ends in one process (9,000 connections, by hand):
# 5.4-6.3 KiB and 49-53 on both loops. The limits are 3x asyncio's highest.
MAX_BYTES_PER_CONNECTION_END: Final = 20 * 1024
MAX_ALLOCATIONS_PER_CONNECTION_END: Final = 165
# Connections served before the measured run: the first connections on a loop pay one-time
# costs (lazy imports, first-use caches) that would otherwise count as retained.
WARM_UP_CONNECTIONS: Final = 20

# Timer test: call_later delays spread over SPREAD seconds (real clock, so kept short).
# 1 in 10 is kept; of the 9 in 10 cancelled, 4 have their deadline inside the window,
# mixed in the heap with the kept ones, and 5 an hour out: those are freed only if the
# loop drops cancelled timers before their deadline.
N_TIMERS: Final = 1_000_000
SPREAD: Final = 0.010
FAR: Final = 3600.0
# Per timer scheduled, at peak: the handle, its args tuple and context copy, the heap
# entry, and the test's list of handles (8 bytes). Measured at 1,000,000: asyncio 308-324
# bytes and 5 allocations, looplet 415-431 bytes and 7 (its heap entries are
# (deadline, sequence, handle) tuples, compared in C). The limits are 3x asyncio's.
MAX_BYTES_PER_TIMER: Final = 1000
MAX_ALLOCATIONS_PER_TIMER: Final = 15

# Task test.
N_TASKS: Final = 100_000
TOKEN: Final = 7
# Per task parked on a future: the Task, its coroutine and frame, the future's callback
# entry. Measured at 100,000: asyncio 831-903 bytes, looplet 763-833 (it drives asyncio's
# own Task); 10 allocations on both. The limits are 3x asyncio's.
MAX_BYTES_PER_TASK: Final = 2700
MAX_ALLOCATIONS_PER_TASK: Final = 30

# Thread test.
N_THREADS: Final = 8
PER_THREAD: Final = 50_000
# How often (in each thread's callbacks) the loop samples its footprint: about 200 samples,
# between which the run queue changes by a few thousand handles at most.
SAMPLE_EVERY: Final = 2048
# Per callback scheduled, at the peak of the run queue. How far the queue grows depends on
# how fast the threads add to it. On asyncio each call writes a byte to the wake-up
# socket, a syscall that lets the loop keep up: measured 0-91 bytes and 0-1.8 allocations
# per callback. looplet writes only when the loop is not already awake, so the threads
# run ahead and the queue holds nearly all 400,000 at its peak: 139-235 bytes and 3.7-3.9
# allocations (a handle, its args tuple, the seq int, the context copy). The limits are
# 3x a queue that holds every callback at once.
MAX_BYTES_PER_THREADSAFE_CALL: Final = 720
MAX_ALLOCATIONS_PER_THREADSAFE_CALL: Final = 12

# After a run, of the allocations made at peak, at most this fraction (or this many, if
# more) may be still alive: a leak of one allocation per connection, timer, task or
# callback exceeds both. Measured on both loops: 31-40 after the timers and the tasks,
# 100-210 after the callbacks, 30-310 after the connections (free lists, such as the C
# Future's iterator cache, and hash tables that keep the size they grew to). A loop that
# kept the 500,000 far-deadline cancelled timers would retain 2.5 million.
MAX_RETAINED_FRACTION: Final = 0.001
MAX_RETAINED_FLOOR: Final = 1000

load = pytest.mark.load


# -- measuring -------------------------------------------------------------------------


def _rss() -> int:
    """This process's resident set size now, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None  # not glibc
    return trim


_MALLOC_TRIM: Final = _malloc_trim()


@dataclass(frozen=True)
class Footprint:
    """Memory above a baseline: RSS in bytes, and live allocations (`sys.getallocatedblocks`).

    The two cover each other's blind spot. RSS counts bytes, but small objects may land in
    pymalloc pages that an earlier test freed and that stayed resident, so it can read low
    after a heavy test in the same process (large buffers come from malloc, which
    `malloc_trim` empties before the baseline). The allocation count is exact whatever the
    allocator keeps, but blind to sizes. A limit on each catches both kinds of growth.
    """

    rss: int = 0
    blocks: int = 0


class Meter:
    """Measures `Footprint`s from a baseline taken at creation."""

    def __init__(self) -> None:
        gc.collect()
        if _MALLOC_TRIM is not None:
            # Free heap memory back to the kernel: memory freed by earlier tests and kept by
            # malloc for reuse would otherwise absorb this test's growth unseen.
            _MALLOC_TRIM(0)
        self.base = Footprint(_rss(), sys.getallocatedblocks())
        #: The largest footprint `sample` has seen.
        self.peak = Footprint()

    def now(self) -> Footprint:
        return Footprint(_rss() - self.base.rss, sys.getallocatedblocks() - self.base.blocks)

    def sample(self) -> None:
        now = self.now()
        self.peak = Footprint(max(self.peak.rss, now.rss), max(self.peak.blocks, now.blocks))

    def settled(self) -> Footprint:
        """The footprint once garbage is collected: what is still held."""
        gc.collect()
        return self.now()


def _check_footprint(
    what: str, peak: Footprint, units: int, max_bytes: int, max_allocations: int, retained: Footprint | None = None
) -> None:
    # The figures the README quotes: shown by `pytest -rP` (captured output of passed tests).
    print(
        f"{what}: {peak.rss / units:.0f} bytes and {peak.blocks / units:.1f} allocations each at peak over {units}"
        f" (limits {max_bytes}, {max_allocations})"
        + ("" if retained is None else f"; {retained.blocks} allocations still alive after")
    )
    assert peak.rss / units <= max_bytes, f"{peak.rss / units:.0f} bytes per {what}"
    assert peak.blocks / units <= max_allocations, f"{peak.blocks / units:.1f} allocations per {what}"
    if retained is not None:
        # Given back: all but a sliver of the allocations made at peak.
        allowed = max(MAX_RETAINED_FRACTION * peak.blocks, MAX_RETAINED_FLOOR)
        assert retained.blocks <= allowed, (
            f"{retained.blocks} of the {peak.blocks} allocations made for {units} x {what} still alive"
        )


def _loop_kind(loop: asyncio.AbstractEventLoop) -> str:
    return "looplet" if isinstance(loop, looplet.EventLoop) else "asyncio"


# -- 10,000 connections ----------------------------------------------------------------


def _message(i: int) -> bytes:
    return f"{i:0{MSG_LEN}d}".encode()


@dataclass
class ClientReport:
    """What the client side saw."""

    #: Connections whose echo matched their message.
    verified: int = 0
    #: The client process's footprint when the last echo was verified, all connections
    #: open (the server closes none before every client has acked); measured when the
    #: clients have a process of their own.
    peak: Footprint = field(default_factory=Footprint)


async def run_clients(port: int, n: int, max_in_flight: int, meter: Meter | None) -> ClientReport:
    """Open `n` connections to `port`, each sending its message, checking the echo, acking,
    and holding the connection until the server closes it."""
    report = ClientReport()
    in_flight = asyncio.Semaphore(max_in_flight)

    async def client(i: int) -> None:
        msg = _message(i)
        writer: asyncio.StreamWriter | None = None
        try:
            async with in_flight:
                reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(msg)
                echo = await reader.readexactly(MSG_LEN)
            if echo != msg:
                raise AssertionError(f"client {i} got {echo!r} back for {msg!r}")
            report.verified += 1
            if report.verified == n and meter is not None:
                report.peak = meter.now()
            writer.write(ACK)
            rest = await reader.read()
            if rest:
                raise AssertionError(f"client {i} got {rest!r} after its echo")
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    # A TaskGroup: one client failing cancels the others, which would otherwise wait for
    # a release that never comes.
    async with asyncio.TaskGroup() as group:
        for i in range(n):
            group.create_task(client(i))
    return report


async def run_clients_in_child(port: int, n: int, max_in_flight: int, kind: str) -> ClientReport:
    """`run_clients` in a child process running the same kind of loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "clients",
        kind,
        str(port),
        str(n),
        str(max_in_flight),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # This file as a script imports tests/support.py as the test run does.
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [TESTS_DIR, os.environ.get("PYTHONPATH")]))},
    )
    try:
        out, err = await proc.communicate()
    except BaseException:
        # Cancelled because the server failed first: the child's clients would wait forever.
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise AssertionError(f"client process exited {proc.returncode}: {err.decode(errors='replace')[-4000:]}")
    fields = json.loads(out)
    return ClientReport(fields["verified"], Footprint(fields["rss"], fields["blocks"]))


def _client_process_main(argv: list[str]) -> None:
    kind, port, n, in_flight = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    loop = looplet.new_event_loop() if kind == "looplet" else asyncio.SelectorEventLoop()
    try:
        report = loop.run_until_complete(run_clients(port, n, in_flight, Meter()))
    finally:
        loop.close()
    sys.stdout.write(json.dumps({"verified": report.verified, "rss": report.peak.rss, "blocks": report.peak.blocks}))


@dataclass
class EchoServer:
    """Echoes one message per connection, then holds every connection open until all `n`
    clients have acknowledged their echo, then closes them all."""

    n: int
    meter: Meter
    #: Connections being served now, and the most at once.
    active: int = 0
    most: int = 0
    acked: int = 0
    #: This process's footprint when the last ack came in, every connection open.
    peak: Footprint = field(default_factory=Footprint)
    all_acked: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            writer.write(await reader.readexactly(MSG_LEN))
            await writer.drain()
            ack = await reader.readexactly(1)
            if ack != ACK:
                raise AssertionError(f"expected the ack, got {ack!r}")
            self.acked += 1
            if self.acked == self.n:
                self.peak = self.meter.now()
                self.all_acked.set()
            await self.all_acked.wait()
        except Exception as exc:
            # Recorded, not raised: start_server's handler tasks are not awaited by anyone.
            self.errors.append(repr(exc))
            self.failed.set()
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.contextmanager
def _nofile_soft_limit(needed: int) -> Iterator[None]:
    """RLIMIT_NOFILE's soft limit raised to at least `needed` for the body, then restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        yield
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4096  # the kernel's default since 5.4


async def _echo_under_load(n: int, clients_in_child: bool) -> tuple[EchoServer, ClientReport]:
    """Serve `n` echo clients at once; returns the server and the clients' report."""
    loop = asyncio.get_running_loop()
    server = EchoServer(n, Meter())
    # The backlog only needs to hold the handshakes in flight, with room to spare; the
    # kernel caps it at somaxconn.
    backlog = min(_somaxconn(), 2 * MAX_IN_FLIGHT)
    in_flight = max(1, min(MAX_IN_FLIGHT, backlog // 2))
    tcp_server = await asyncio.start_server(server.handle, HOST, 0, backlog=backlog)
    port = tcp_server.sockets[0].getsockname()[1]
    if clients_in_child:
        peer = loop.create_task(run_clients_in_child(port, n, in_flight, _loop_kind(loop)))
    else:
        peer = loop.create_task(run_clients(port, n, in_flight, None))
    failed = loop.create_task(server.failed.wait())
    try:
        await asyncio.wait({peer, failed}, return_when=asyncio.FIRST_COMPLETED)
        if server.errors:
            pytest.fail(f"server side: {server.errors[:5]} ({len(server.errors)} errors)")
        report = peer.result()
        await asyncio.gather(*server.handlers)
    finally:
        # On failure, stop the clients (their connections close) and release the handlers
        # rather than cancel them: they finish on their own, as on success.
        peer.cancel()
        failed.cancel()
        server.all_acked.set()
        await asyncio.gather(peer, failed, *server.handlers, return_exceptions=True)
        tcp_server.close()
        await tcp_server.wait_closed()
    server.handlers.clear()
    return server, report


@pytest.mark.parametrize("n", [pytest.param(N_CONNECTIONS, marks=load, id="10000"), pytest.param(100, id="100")])
def test_concurrent_tcp_echo_connections(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n connections open at once, each echoing its own message; memory per connection
    bounded and given back once they close."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    margin = max(int(fd) for fd in os.listdir("/proc/self/fd")) + FD_MARGIN
    if hard == resource.RLIM_INFINITY or hard >= 2 * n + margin:
        clients_in_child, needed = False, 2 * n + margin
    elif hard >= n + margin:
        # Both ends in this process need 2 fds per connection, more than the hard limit
        # allows (raising it takes CAP_SYS_RESOURCE). The clients run in a child process
        # on the same kind of loop: each process then holds one end.
        clients_in_child, needed = True, n + margin
    else:
        pytest.skip(f"{n} connections need {n + margin} fds per process; RLIMIT_NOFILE hard limit is {hard}")

    with _nofile_soft_limit(needed):
        if n == N_CONNECTIONS:
            loop.run_until_complete(_echo_under_load(WARM_UP_CONNECTIONS, False))
        server, report = loop.run_until_complete(_echo_under_load(n, clients_in_child))
    # Measured here, not in the coroutine: until its last step ends, the wake-up call that
    # resumed it holds the gather() future, and so every handler task.
    retained = server.meter.settled()

    assert server.most == n
    assert server.acked == n
    assert report.verified == n
    assert server.active == 0
    if n == N_CONNECTIONS:
        # In one process, the footprint covers both ends of every connection.
        ends = n if clients_in_child else 2 * n
        limits = (MAX_BYTES_PER_CONNECTION_END, MAX_ALLOCATIONS_PER_CONNECTION_END)
        _check_footprint("connection end", server.peak, ends, *limits, retained)
        if clients_in_child:
            _check_footprint("client end", report.peak, n, *limits)


# -- 1,000,000 timers ------------------------------------------------------------------


@pytest.mark.parametrize("n", [pytest.param(N_TIMERS, marks=load, id="1000000"), pytest.param(5000, id="5000")])
def test_timers_mostly_cancelled(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n timers, 90% cancelled: the rest run exactly once, in deadline order; the cancelled
    ones are freed, those due in an hour included."""

    async def main() -> tuple[Footprint, Footprint]:
        rng = random.Random(8)
        fired: list[int] = []
        meter = Meter()
        call_later = loop.call_later
        uniform = rng.random
        fire = fired.append
        handles = [call_later(uniform() * SPREAD + (FAR if i % 2 else 0.0), fire, i) for i in range(n)]
        peak = meter.now()

        # Keep i % 10 == 0: 10%; cancel the rest (odd i: far deadline; even: in the window).
        when_of = {i: handles[i].when() for i in range(0, n, 10)}
        for i, handle in enumerate(handles):
            if i % 10:
                handle.cancel()
        del handles
        # Just after the last kept timer's deadline: when the loop runs this one, every
        # kept timer before it in deadline order has run.
        done: asyncio.Future[None] = loop.create_future()
        sentinel = loop.call_at(max(when_of.values()) + SPREAD, done.set_result, None)
        await done

        assert len(fired) == len(when_of), f"{len(fired)} timers fired, {len(when_of)} kept"
        assert sorted(fired) == sorted(when_of), "a cancelled timer ran or a kept timer did not"
        out_of_order = sum(when_of[a] > when_of[b] for a, b in itertools.pairwise(fired))
        assert out_of_order == 0, f"{out_of_order} timers ran before one with an earlier deadline"
        del fired, fire, when_of, sentinel
        return peak, meter.settled()

    peak, retained = loop.run_until_complete(main())
    if n == N_TIMERS:
        _check_footprint("timer", peak, n, MAX_BYTES_PER_TIMER, MAX_ALLOCATIONS_PER_TIMER, retained)


# -- 100,000 tasks ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [pytest.param(N_TASKS, marks=load, id="100000"), pytest.param(1000, id="1000")])
def test_tasks_alive_at_once(loop: asyncio.AbstractEventLoop, n: int) -> None:
    """n tasks parked on one future at once, then released: each returns its own result;
    memory per task bounded and given back."""

    async def main() -> tuple[Footprint, Footprint]:
        gate: asyncio.Future[int] = loop.create_future()
        all_waiting: asyncio.Future[None] = loop.create_future()
        waiting = 0

        async def worker(i: int) -> int:
            nonlocal waiting
            waiting += 1
            if waiting == n:
                all_waiting.set_result(None)
            return i * 3 + await gate

        meter = Meter()
        tasks = [loop.create_task(worker(i)) for i in range(n)]
        await all_waiting
        peak = meter.now()
        # Alive at once: every one has started and none has finished.
        assert sum(not t.done() for t in tasks) == n
        assert len(asyncio.all_tasks()) == n + 1  # and this one

        gate.set_result(TOKEN)
        # Not gather(): its future holds every task, and the wake-up call that resumes this
        # task holds the future until this step ends, past the measurement below.
        results = [await task for task in tasks]
        assert results == [i * 3 + TOKEN for i in range(n)]
        del tasks, results
        return peak, meter.settled()

    peak, retained = loop.run_until_complete(main())
    assert not asyncio.all_tasks(loop)
    if n == N_TASKS:
        _check_footprint("task", peak, n, MAX_BYTES_PER_TASK, MAX_ALLOCATIONS_PER_TASK, retained)


# -- call_soon_threadsafe from 8 threads -----------------------------------------------


@pytest.mark.parametrize(
    "per_thread", [pytest.param(PER_THREAD, marks=load, id="8x50000"), pytest.param(1000, id="8x1000")]
)
def test_call_soon_threadsafe_from_many_threads(loop: asyncio.AbstractEventLoop, per_thread: int) -> None:
    """8 threads calling call_soon_threadsafe at once: every callback runs exactly once,
    each thread's in its order, and the loop finishes; no thread is left behind."""
    ran = [0] * N_THREADS
    out_of_order = [0] * N_THREADS
    meter = Meter()

    def callback(t: int, seq: int) -> None:
        # A lost, doubled or reordered callback shows as a gap or a repeat.
        if seq != ran[t]:
            out_of_order[t] += 1
        ran[t] = seq + 1
        if seq % SAMPLE_EVERY == 0:
            meter.sample()

    async def main() -> list[threading.Thread]:
        all_done: asyncio.Future[None] = loop.create_future()
        finished: set[int] = set()

        def thread_done(t: int) -> None:
            # Scheduled by thread t after its last callback: with per-thread FIFO, every
            # callback of t has run by now, lost ones included (they never will).
            finished.add(t)
            if len(finished) == N_THREADS:
                all_done.set_result(None)

        start = threading.Barrier(N_THREADS)

        def produce(t: int) -> None:
            wait_for(start, "start")
            call = loop.call_soon_threadsafe
            for seq in range(per_thread):
                call(callback, t, seq)
            call(thread_done, t)

        threads = [threading.Thread(target=produce, args=(t,), name=f"producer-{t}") for t in range(N_THREADS)]
        for thread in threads:
            thread.start()
        await all_done
        return threads

    threads = loop.run_until_complete(main())
    for thread in threads:
        join(thread)
    del threads
    assert ran == [per_thread] * N_THREADS
    assert out_of_order == [0] * N_THREADS
    if per_thread == PER_THREAD:
        limits = (MAX_BYTES_PER_THREADSAFE_CALL, MAX_ALLOCATIONS_PER_THREADSAFE_CALL)
        _check_footprint("call_soon_threadsafe callback", meter.peak, N_THREADS * per_thread, *limits, meter.settled())


if __name__ == "__main__":
    if sys.argv[1:2] != ["clients"]:
        raise SystemExit(f"usage: {sys.argv[0]} clients asyncio|looplet PORT N MAX_IN_FLIGHT")
    _client_process_main(sys.argv[2:])
