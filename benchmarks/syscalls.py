"""System calls and page faults per message: ``python -m benchmarks.syscalls``.

Role: show what one message costs the server in kernel crossings, by name, where the
wall clock only shows a total. ``python -m benchmarks.syscalls --loops looplet,asyncio,uvloop
--workloads echo_tcp_protocol_1k_x1`` runs the workload's worker under
``strace -f -c -b execve`` twice, with ``n`` and ``2n`` messages, and prints
``(calls(2n) - calls(n)) / n`` for every system call (``recvfrom``, ``sendto``,
``epoll_wait``, ``mmap``, ``munmap``, ``madvise``, ``brk``, ...), start-up, imports
and set-up cancelling out, and the same difference of the worker's minor page faults
(``getrusage``, which the worker reports).

What is counted: the worker process, every one of its threads, and nothing of the
client process it starts: ``-f`` follows the threads and the client's fork, and
``-b execve`` lets go of the client when it execs (the few calls between its fork and
exec are set-up, the same in both runs). Under strace the server runs several times
slower than the client, so reads may find more data waiting than they would untraced:
the counts are exact for the traced run and a close guide to an untraced one.

Invariant owned here: a cell is a number only when both runs of the worker ended
``ok`` on the requested loop and strace wrote its summary; anything else is that
cell's error, never a number.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import runner
from benchmarks.registry import Workload, select
from benchmarks.results import check_loop_classes

#: shown whatever their count: the allocator's traffic with the kernel, which a read
#: path that allocates a fresh buffer per read turns into system calls
ALWAYS: tuple[str, ...] = ("mmap", "munmap", "madvise", "brk")
# A system call made less often than this per message is start-up noise, not a row.
SHOWN_FROM: float = 0.005
FAULTS_ROW: str = "minor faults"
TIMEOUT: float = 900.0


@dataclass(frozen=True)
class Counts:
    """One traced worker run: calls and failed calls by system call, and page faults."""

    calls: Mapping[str, int]
    errors: Mapping[str, int]
    minor_faults: int


def _columns(rule: str) -> list[tuple[int, int]]:
    """The (start, end) of each column: the runs of dashes of strace's rule line."""
    spans = []
    start = None
    for i, char in enumerate(rule + " "):
        if char == "-" and start is None:
            start = i
        elif char != "-" and start is not None:
            spans.append((start, i))
            start = None
    return spans


def parse_strace_summary(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """(calls, errors) by system call from ``strace -c``'s table; the total row is left out.

    The columns are cut where the rule line's dashes are: an empty cell (no errors, or
    no usecs/call in some versions' total row) leaves no token to count by.
    """
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.lstrip().startswith("% time")), None)
    if header is None or header + 1 >= len(lines):
        raise ValueError(f"not a strace -c summary:\n{text[:500]}")
    spans = _columns(lines[header + 1])

    def cut(line: str) -> list[str]:
        # The last column (the name) is left-aligned and may be longer than its rule.
        return [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0] :].strip()]

    names = cut(lines[header])
    try:
        calls_at, errors_at, name_at = names.index("calls"), names.index("errors"), names.index("syscall")
    except ValueError:
        raise ValueError(f"strace -c header without calls, errors and syscall columns: {lines[header]!r}") from None
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    for line in lines[header + 2 :]:
        if not line.strip() or set(line.strip()) <= {"-", " "}:
            continue
        cells = cut(line)
        name = cells[name_at]
        if name == "total":
            continue
        calls[name] = int(cells[calls_at])
        errors[name] = int(cells[errors_at] or 0)
    if not calls:
        raise ValueError(f"strace -c summary with no system call:\n{text[:500]}")
    return calls, errors


def per_message(small: Counts, big: Counts, n: int) -> dict[str, tuple[float, float]]:
    """(calls, errors) per message from runs of ``n`` and ``2n`` messages."""
    if n <= 0:
        raise ValueError(f"n must be positive, not {n}")
    names = set(small.calls) | set(big.calls)
    return {
        name: (
            (big.calls.get(name, 0) - small.calls.get(name, 0)) / n,
            (big.errors.get(name, 0) - small.errors.get(name, 0)) / n,
        )
        for name in names
    }


def trace(loop: str, workload: Workload, n: int, pin: str, strace: str = "strace") -> Counts:
    """One worker run of ``n`` messages under ``strace -f -c``: what it counted."""
    with tempfile.TemporaryDirectory(prefix="looplet-bench-") as directory:
        out = Path(directory) / "result.json"
        summary = Path(directory) / "strace.txt"
        worker = runner.worker_command(replace(workload, n=n), loop, quick=False, out=out, timeout=TIMEOUT, pin=pin)
        command = [strace, "-f", "-c", "-b", "execve", "-o", str(summary), *worker]
        proc = subprocess.run(
            command,
            cwd=directory,
            env=runner.worker_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT + runner.KILL_GRACE,
            check=False,
        )
        if not out.exists():
            raise RuntimeError(f"worker exited with status {proc.returncode} and no result:\n{proc.stderr[-2000:]}")
        result = json.loads(out.read_text())
        if result.get("status") != "ok":
            raise RuntimeError(f"worker reported {result.get('status')}: {result.get('error')}")
        problem = check_loop_classes(loop, result.get("loop_classes", []))
        if problem:
            raise RuntimeError(f"loop check: {problem}")
        if not summary.exists():
            raise RuntimeError(f"strace wrote no summary (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        calls, errors = parse_strace_summary(summary.read_text())
    return Counts(calls, errors, int(result["rusage"]["minflt"]))


def format_table(cells: Mapping[str, Mapping[str, tuple[float, float]] | str]) -> str:
    """Rows of system calls (and minor faults), a column per loop; a failed loop says so.

    A cell is calls per message, with the failed ones among them (EAGAIN and the like)
    in parentheses when there are any.
    """
    loops = list(cells)
    measured = [c for c in cells.values() if not isinstance(c, str)]
    names = {
        name for c in measured for name, (calls, _) in c.items() if abs(calls) >= SHOWN_FROM and name != FAULTS_ROW
    }
    names |= set(ALWAYS)

    def busiest(name: str) -> float:
        return max((c.get(name, (0.0, 0.0))[0] for c in measured), default=0.0)

    rows = [*sorted(names, key=lambda name: (-busiest(name), name)), "total", FAULTS_ROW]

    def cell(loop: str, name: str) -> str:
        counts = cells[loop]
        if isinstance(counts, str):
            return "FAILED"
        if name == "total":
            calls = sum(c for key, (c, _) in counts.items() if key != FAULTS_ROW)
            errors = sum(e for key, (_, e) in counts.items() if key != FAULTS_ROW)
        else:
            calls, errors = counts.get(name, (0.0, 0.0))
        # Below SHOWN_FROM a difference is noise between the two runs (a futex more or
        # less): shown as 0, never as -0.00 or as a failed call.
        text = f"{calls:.2f}" if abs(calls) >= SHOWN_FROM else "0.00"
        return text + (f" ({errors:.2f} failed)" if errors >= SHOWN_FROM else "")

    table = [["per message", *loops], *([name, *(cell(loop, name) for loop in loops)] for name in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for i, row in enumerate(table):
        lines.append(
            "| "
            + " | ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
            + " |"
        )
        if i == 0:
            lines.append(
                "| " + " | ".join("-" * w if j == 0 else "-" * (w - 1) + ":" for j, w in enumerate(widths)) + " |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.syscalls",
        description="System calls and minor page faults per message of the server, counted by strace (n and 2n runs).",
    )
    parser.add_argument("--loops", default="looplet,asyncio,uvloop")
    parser.add_argument("--workloads", default="echo_tcp_protocol_1k_x1", help="names or globs, as for the harness")
    parser.add_argument("--n", type=int, help="messages in the smaller run (default: the registry's n)")
    parser.add_argument("--pin", choices=("shared", "split", "none"), default="shared", help="as for the harness")
    args = parser.parse_args(argv)
    try:
        workloads = select([w.strip() for w in args.workloads.split(",") if w.strip()])
    except ValueError as exc:
        parser.error(str(exc))
    timed = [w.name for w in workloads if w.n_is_seconds]
    if timed:
        parser.error(f"{', '.join(timed)} run for a time, not a number of messages: nothing to divide by")
    loops = [name.strip() for name in args.loops.split(",") if name.strip()]
    strace = shutil.which("strace")
    if strace is None:
        print("strace is not installed (apt-get install strace): nothing to count with", file=sys.stderr)
        return 2
    failed = False
    for workload in workloads:
        n = args.n or workload.n
        cells: dict[str, dict[str, tuple[float, float]] | str] = {}
        for loop in loops:
            try:
                small, big = trace(loop, workload, n, args.pin, strace), trace(loop, workload, 2 * n, args.pin, strace)
            except Exception as exc:  # one cell's failure is reported, not fatal
                failed = True
                cells[loop] = str(exc)
                print(f"{workload.name} on {loop}: {exc}", file=sys.stderr)
                continue
            counts = per_message(small, big, n)
            counts[FAULTS_ROW] = ((big.minor_faults - small.minor_faults) / n, 0.0)
            cells[loop] = counts
        print(f"{workload.name}: the server's system calls per message (runs of {n} and {2 * n}, --pin {args.pin})")
        print(format_table(cells), flush=True)
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
