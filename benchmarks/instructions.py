"""Instructions per operation, counted by callgrind: a view of the loops without the noise.

Role: ``python -m benchmarks.instructions --loops looplet,asyncio,uvloop --workloads call_soon_chain``
runs each workload's worker under ``valgrind --tool=callgrind`` twice, with ``n`` and
``2n`` operations, and reports ``(I(2n) - I(n)) / n``: the user-space instructions one
operation costs, start-up, imports and set-up cancelling out. On a shared virtual
machine the wall-clock harness (``python -m benchmarks``) spreads by tens of percent
between repetitions; these counts repeat to within a fraction of a percent, so they
show small changes to the hot path that the clock cannot.

What they do not show: time in the kernel (system calls, the loopback network stack,
context switches), cache misses and the client process (callgrind traces only the
worker, not what it starts). For the I/O workloads the count is the server's
user-space work per exchange, not the exchange's cost.

Invariant owned here: a count is reported only when both runs of the worker succeeded
and reported ``ok``; anything else is an error for that cell, never a number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.registry import Workload, select

REPO = Path(__file__).resolve().parents[1]
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def parse_collected(stderr: str) -> int:
    """The total ``Ir`` callgrind prints at exit ("Collected : N")."""
    found = _COLLECTED.findall(stderr)
    if not found:
        raise ValueError("callgrind printed no 'Collected' total")
    return int(found[-1])


def per_op(count_n: int, count_2n: int, n: int) -> float:
    """Instructions per operation from runs of ``n`` and ``2n`` operations."""
    if n <= 0:
        raise ValueError(f"n must be positive, not {n}")
    return (count_2n - count_n) / n


def count(loop: str, workload: Workload, n: int, python: str = sys.executable) -> int:
    """Instructions callgrind counts for one worker run of ``n`` operations."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/callgrind.out",
            python,
            "-m",
            "benchmarks.worker",
            "--loop",
            loop,
            "--target",
            workload.target,
            "--n",
            str(n),
            "--params",
            json.dumps(workload.params),
        ]
        env = dict(os.environ)
        # The worker moves the repository behind the installed looplet itself when
        # LOOPLET_BENCH_INSTALLED=1, as under the wall-clock harness.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f"worker printed no result (exit {proc.returncode}): {proc.stderr[-2000:]}") from None
        if result.get("status") != "ok":
            raise RuntimeError(f"worker reported {result.get('status')}: {result.get('error')}")
        return parse_collected(proc.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description="User-space instructions per operation, counted by callgrind (n and 2n runs).",
    )
    parser.add_argument("--loops", default="looplet,asyncio,uvloop")
    parser.add_argument("--workloads", default="scheduling")
    parser.add_argument("--n", type=int, help="operations in the smaller run (default: a tenth of the registry's n)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count with", file=sys.stderr)
        return 2
    try:
        workloads = select([w.strip() for w in args.workloads.split(",") if w.strip()])
    except ValueError as exc:
        parser.error(str(exc))
    loops = [name.strip() for name in args.loops.split(",") if name.strip()]
    failed = False
    print(f"{'workload':28} " + " ".join(f"{loop:>12}" for loop in loops) + "   (instructions per operation)")
    for workload in workloads:
        n = args.n or max(1, workload.n // 10)
        cells = []
        for loop in loops:
            try:
                cells.append(f"{per_op(count(loop, workload, n), count(loop, workload, 2 * n), n):12.0f}")
            except Exception as exc:  # one cell's failure is reported, not fatal
                failed = True
                cells.append(f"{'FAILED':>12}")
                print(f"{workload.name} on {loop}: {exc}", file=sys.stderr)
        print(f"{workload.name:28} " + " ".join(cells), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
