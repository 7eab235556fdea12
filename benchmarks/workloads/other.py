"""Other workloads: executor, getaddrinfo, subprocesses, pipes, loop start-up.

Role: the loop services that are neither scheduling nor sockets. The subprocess
workloads need the loop's subprocess and pipe support; a loop without it fails them
(the harness shows FAILED with the loop's own error), it does not crash the run.

Invariant owned here: one-time set-up that is not the subject (the executor's first
thread, the path lookup of ``true`` and ``cat``) happens before the clock starts, and
every child's exit status and every byte through a pipe is checked.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time

from benchmarks.workloads.base import Context, Measurement

PIPE_CHUNK: int = 64 * 1024
# Read size of the pipe reader: a few pipe buffers (64 KiB each on Linux) at a time.
PIPE_READ: int = 256 * 1024
MIB: int = 1024 * 1024


def _nothing() -> None:
    pass


async def run_in_executor(ctx: Context, n: int) -> Measurement:
    """``n`` sequential ``run_in_executor(None, f)`` of a function that does nothing."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _nothing)  # the pool's first thread is not the subject
    t0 = time.perf_counter()
    for _ in range(n):
        await loop.run_in_executor(None, _nothing)
    return Measurement.rate(n, time.perf_counter() - t0)


async def getaddrinfo_numeric(ctx: Context, n: int) -> Measurement:
    """``n`` sequential ``getaddrinfo('127.0.0.1', 80)``: a numeric host, no DNS."""
    loop = asyncio.get_running_loop()
    want = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    t0 = time.perf_counter()
    for _ in range(n):
        got = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    elapsed = time.perf_counter() - t0
    if not want or got != want:
        raise AssertionError(f"getaddrinfo answered {got!r}, first {want!r}")
    return Measurement.rate(n, elapsed)


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not on PATH")
    return path


async def subprocess_spawn(ctx: Context, n: int) -> Measurement:
    """``n`` sequential ``create_subprocess_exec('true')`` + ``wait()``."""
    true = _which("true")
    t0 = time.perf_counter()
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(true)
        if await proc.wait() != 0:
            raise AssertionError(f"true exited with {proc.returncode}")
    return Measurement.rate(n, time.perf_counter() - t0)


async def subprocess_pipe(ctx: Context, n: int) -> Measurement:
    """``n`` MiB written to a ``cat`` child's stdin and read back from its stdout."""
    cat = _which("cat")
    proc = await asyncio.create_subprocess_exec(cat, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    chunk = bytes(PIPE_CHUNK)

    async def write() -> None:
        for _ in range(n * MIB // PIPE_CHUNK):
            stdin.write(chunk)
            await stdin.drain()
        stdin.close()
        await stdin.wait_closed()

    async def read() -> int:
        got = 0
        while data := await stdout.read(PIPE_READ):
            got += len(data)
        return got

    t0 = time.perf_counter()
    _, got = await asyncio.gather(write(), read())
    elapsed = time.perf_counter() - t0
    if await proc.wait() != 0 or got != n * MIB:
        raise AssertionError(f"cat exited with {proc.returncode} after {got} of {n * MIB} bytes")
    return Measurement.rate(n, elapsed)


def loop_startup(ctx: Context, n: int) -> Measurement:
    """``n`` times: ``new_event_loop()``, run a trivial coroutine, ``close()``."""

    async def trivial() -> None:
        ctx.note_loop()

    t0 = time.perf_counter()
    for _ in range(n):
        loop = ctx.factory()
        try:
            loop.run_until_complete(trivial())
        finally:
            loop.close()
    return Measurement.rate(n, time.perf_counter() - t0)
