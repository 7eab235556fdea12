"""What a looplet trace costs in memory and in writing: ``python -m benchmarks.trace_cost``.

Role: measure the figures the README gives for ``looplet.trace()``: bytes held per
recorded event (``tracemalloc`` growth over ``--steps`` task steps of ``sleep(0)``,
divided by the events recorded) and the seconds it takes to write them as JSON.

Invariant owned here: the memory figure counts only what the trace holds, read while
the trace is still open and after the loop's own work is done.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any


async def _steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trace_cost", description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args(argv)
    # By name, like the workloads: the harness type-checks on its own.
    looplet: Any = importlib.import_module("looplet")
    write_trace = importlib.import_module("looplet.tools.observe").write_trace
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        with looplet.trace(path) as tracer:
            loop = looplet.new_event_loop()
            tracemalloc.start()
            loop.run_until_complete(_steps(args.steps))
            held, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            loop.close()
            events = len(tracer.events)
        t0 = time.perf_counter()
        write_trace(path, tracer)
        seconds = time.perf_counter() - t0
        print(f"{events} events, {held / events:.0f} bytes each while recording, written in {seconds:.2f} s")
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
