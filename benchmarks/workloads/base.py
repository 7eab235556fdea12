"""What every workload gets and gives: `Context` in, `Measurement` out.

Role: the seam between a workload and the worker process. A workload never chooses
its loop: it runs its coroutine through `Context.run` (or makes loops with
`Context.factory`, for the start-up workload), and `Context` records the class of every
loop that actually ran it. Client processes are started through `ClientProcess`, so
they are the same program, with the same arguments, whatever the loop under test.

Invariant owned here: `Context.loop_classes` names every loop any of the workload's
coroutines ran on; the worker reports it and the harness refuses a measurement whose
loops are not the requested ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# Enough of a failing client's stderr to show its traceback, not a flood.
_STDERR_TAIL = 3000
#: CPUs the client processes are pinned to (None: wherever the OS puts them); the
#: worker sets it from ``--client-cpus`` before any workload runs.
CLIENT_CPUS: set[int] | None = None


class Unsupported(Exception):
    """The loop under test lacks what the workload measures: its cell says so, not FAILED."""


@dataclass(frozen=True)
class Measurement:
    """One workload's result: ``value`` in the registry's unit, plus how it was got."""

    value: float
    #: the amount of work done (operations, MiB, ...), when the value is a rate
    amount: float | None = None
    #: the timed interval, when the value is a rate
    seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def rate(cls, amount: float, seconds: float, **details: Any) -> Measurement:
        if seconds <= 0:
            raise ValueError(f"non-positive timed interval {seconds!r}: the work size is too small to time")
        return cls(amount / seconds, amount, seconds, details)


class Context:
    """The loop under test, as a workload sees it."""

    def __init__(self, factory: Callable[[], asyncio.AbstractEventLoop], quick: bool) -> None:
        #: ``module.new_event_loop`` of the loop under test
        self.factory = factory
        #: tiny sizes: the run only checks that the workload works
        self.quick = quick
        #: ``module.qualname`` of every loop class seen running a workload coroutine
        self.loop_classes: set[str] = set()
        #: what reached the loops' exception handlers: a server-side error is often
        #: seen by the workload only as a client's failure, this says what it was
        self.loop_errors: list[str] = []

    def note_loop(self) -> None:
        """Record the class of the running loop (call from inside a coroutine)."""
        cls = type(asyncio.get_running_loop())
        self.loop_classes.add(f"{cls.__module__}.{cls.__qualname__}")

    def _record_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.loop_errors.append(f"{context.get('message')}: {exc!r}" if exc else str(context.get("message")))
        loop.default_exception_handler(context)

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main()`` to completion on a new loop of the loop under test."""

        async def observed() -> T:
            self.note_loop()
            asyncio.get_running_loop().set_exception_handler(self._record_error)
            return await main()

        with asyncio.Runner(loop_factory=self.factory) as runner:
            return runner.run(observed())


class ClientProcess:
    """A load-generating client process (``python -m benchmarks.clients ...`` or wrk).

    The process starts at once and runs on its own; ``result()`` waits for it from the
    loop under test without any loop-specific process API (a thread does the waiting),
    so it works the same on every loop, including one without subprocess support.
    ``close()`` kills it if it is still running; use it as a context manager.
    """

    def __init__(self, argv: Sequence[str], *, hold_stdin: bool = False) -> None:
        self.argv = list(argv)
        #: how errors name it: the client kind, or the program
        self.name = self.argv[3] if self.argv[1:3] == ["-m", "benchmarks.clients"] else os.path.basename(self.argv[0])
        # Set once a thread is in communicate(): close() must then not call it again.
        self._collecting = False
        # A holding client runs until its stdin closes, which result() does.
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if hold_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if CLIENT_CPUS is not None:
            # Set before the client has done anything worth measuring: it is still
            # importing its modules at this point.
            os.sched_setaffinity(self._proc.pid, CLIENT_CPUS)

    @classmethod
    def python(cls, kind: str, *args: object, hold_stdin: bool = False) -> ClientProcess:
        return cls([sys.executable, "-m", "benchmarks.clients", kind, *map(str, args)], hold_stdin=hold_stdin)

    async def output(self) -> str:
        """Wait for the process to exit 0 and return its stdout."""
        loop = asyncio.get_running_loop()
        self._collecting = True
        out, err = await loop.run_in_executor(None, self._proc.communicate)
        if self._proc.returncode != 0:
            tail = err.decode(errors="replace")[-_STDERR_TAIL:]
            raise RuntimeError(f"client {self.name!r} exited with status {self._proc.returncode}:\n{tail}")
        return str(out.decode())

    async def result(self) -> dict[str, Any]:
        """The JSON report a ``benchmarks.clients`` process prints last."""
        lines = (await self.output()).strip().splitlines()
        if not lines:
            raise RuntimeError(f"client {self.name!r} printed no report")
        report: dict[str, Any] = json.loads(lines[-1])
        return report

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        if self._collecting:
            self._proc.wait()  # the collecting thread closes the pipes when it returns
        else:
            self._proc.communicate()

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def first_error(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await all; the first failure is raised at once instead of waiting for the rest.

    A server-side failure must not leave the worker waiting for a client that will
    never finish (and the other way round); the caller's cleanup then kills the rest.
    """
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*futures))
    finally:
        for future in futures:
            future.cancel()
