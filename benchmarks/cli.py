"""Command line of the harness: ``python -m benchmarks --loops looplet,asyncio,uvloop``.

Role: choose the workloads and loops, run the interleaved plan (one fresh worker
process per measurement), print the table, write the JSON, set the exit status.

Interleaving: repetition by repetition, workload by workload, every loop in turn
(A B C A B C ...), so the loops being compared are measured minutes, not a whole
run, apart, and a drift in the machine's speed (another process, thermal state)
shows up as spread in every loop instead of as a difference between loops.

Invariant owned here: the exit status is 0 only if every workload ran on every
loop that could be imported; a failure is 1 (its later repetitions are not run:
the first error is the one reported), a usage error 2. A loop that is not importable
is skipped, and says so, without failing the run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from benchmarks import report, runner
from benchmarks.registry import WORKLOADS, Workload, select, with_duration
from benchmarks.results import Sample, summarize

DEFAULT_LOOPS = "looplet,asyncio,uvloop"
DEFAULT_REPEAT = 5
# Per measurement; a normal one takes about a second, so these only catch hangs.
TIMEOUT = 120.0
QUICK_TIMEOUT = 60.0
PIN_MODES = ("shared", "split", "none")
EXIT_FAILED = 1
EXIT_USAGE = 2

Measure = Callable[[Workload, str, int], Sample]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark event loops, each measurement in a fresh process, interleaved.",
    )
    parser.add_argument(
        "--loops",
        default=DEFAULT_LOOPS,
        help=f"comma-separated modules with new_event_loop() (default {DEFAULT_LOOPS})",
    )
    parser.add_argument(
        "--workloads",
        default="",
        help="comma-separated workload names, areas (scheduling, io, other) or globs (echo_tcp_*); default all",
    )
    parser.add_argument("--repeat", type=int, help=f"measurements per workload and loop (default {DEFAULT_REPEAT})")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, 1 repetition: only checks every workload runs on every loop"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--timeout",
        type=float,
        help=f"seconds per measurement before it counts as hung (default {TIMEOUT:.0f}, quick {QUICK_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--pin",
        choices=PIN_MODES,
        default="shared",
        help="CPU placement of each measurement's processes: all on one CPU (shared, the default), "
        "clients on other CPUs than the loop (split), or left to the OS (none); see docs/benchmarks.md",
    )
    parser.add_argument(
        "--duration",
        type=int,
        metavar="SECONDS",
        help="seconds of load for the workloads driven by wrk (http_wrk_*); default 3, quick 1",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser


def split_names(text: str) -> list[str]:
    """'a, b,,a' -> ['a', 'b']: order kept, duplicates and blanks dropped."""
    return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def plan(workloads: Sequence[Workload], loops: Sequence[str], repeat: int) -> list[tuple[int, Workload, str]]:
    """The measurement order: repetitions, then workloads, then loops, innermost."""
    return [(rep, workload, loop) for rep in range(repeat) for workload in workloads for loop in loops]


def run_plan(
    workloads: Sequence[Workload],
    loops: Sequence[str],
    repeat: int,
    measure: Measure,
    log: TextIO,
) -> list[Sample]:
    """Measure everything in plan order; a workload that failed on a loop is not retried."""
    failed: set[tuple[str, str]] = set()
    samples = []
    for rep, workload, loop in plan(workloads, loops, repeat):
        if (workload.name, loop) in failed:
            continue
        t0 = time.monotonic()
        sample = measure(workload, loop, rep)
        wall = time.monotonic() - t0
        samples.append(sample)
        if sample.ok and sample.value is not None:
            outcome = f"{report.format_value(sample.value)} {workload.unit}"
        elif sample.unsupported:
            failed.add((workload.name, loop))  # no point asking again
            outcome = "unsupported by this loop: " + report.summarize_error(sample.error or "")
        else:
            failed.add((workload.name, loop))
            outcome = "FAILED: " + report.summarize_error(sample.error or "")
        print(f"[{rep + 1}/{repeat}] {workload.name} on {loop}: {outcome} ({wall:.1f} s)", file=log, flush=True)
    return samples


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def source_state() -> dict[str, Any]:
    """The commit measured, and whether looplet/ differed from it (read-only git)."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=runner.REPO, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return proc.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "looplet")
    return {"commit": commit, "looplet_modified": bool(changes)}


def machine_meta(argv: Sequence[str]) -> dict[str, Any]:
    return {
        "command": " ".join(["python -m benchmarks", *argv]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        # Knobs that change what is measured, recorded so a surprising run explains itself.
        "env": {k: os.environ[k] for k in ("LOOPLET_REACTOR", "PYTHONASYNCIODEBUG") if k in os.environ},
        "source": source_state(),
    }


def _loop_versions(samples: Sequence[Sample], loops: Sequence[str]) -> dict[str, str]:
    versions = {}
    for loop in loops:
        for sample in samples:
            if sample.loop == loop and "loop_version" in sample.details:
                versions[loop] = str(sample.details["loop_version"])
                break
    return versions


def main(
    argv: Sequence[str] | None = None,
    *,
    workloads: Sequence[Workload] = WORKLOADS,
    measure: Measure | None = None,
    out: TextIO | None = None,
    log: TextIO | None = None,
) -> int:
    """Run the command; ``workloads`` and ``measure`` are replaceable for tests."""
    out = out or sys.stdout
    log = log or sys.stderr
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.list:
        for w in workloads:
            also = "".join(f", {m.suffix} in {m.unit}" for m in w.metrics)
            print(f"{w.name:32} {w.area:11} {w.unit}{also}", file=out)
        return 0
    loops = split_names(args.loops)
    if not loops:
        parser.error("--loops names no loop")
    try:
        chosen = select(split_names(args.workloads) or ["*"], workloads)
    except ValueError as exc:
        print(f"python -m benchmarks: {exc}", file=log)
        return EXIT_USAGE
    if args.duration is not None:
        if args.duration < 1:
            parser.error("--duration must be at least 1 (wrk counts whole seconds)")
        chosen = with_duration(chosen, args.duration)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else DEFAULT_REPEAT)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    timeout = args.timeout or (QUICK_TIMEOUT if args.quick else TIMEOUT)
    if not args.timeout and args.duration is not None:
        # A long wrk run is not a hang: the load time plus its warm-up and set-up.
        timeout = max(timeout, 2 * args.duration + QUICK_TIMEOUT)
    try:
        runner.pinning(args.pin)
    except ValueError as exc:
        parser.error(str(exc))
    measure = measure or functools.partial(runner.measure, quick=args.quick, timeout=timeout, pin=args.pin)

    skipped = {loop: reason for loop in loops if (reason := runner.unavailable(loop))}
    for loop, reason in skipped.items():
        print(f"skipping {loop}: {reason}", file=log, flush=True)
    runnable = [loop for loop in loops if loop not in skipped]
    meta = machine_meta(argv)  # before the run: the source state is the one measured
    t0 = time.monotonic()
    samples = run_plan(chosen, runnable, repeat, measure, log)
    meta.update(
        quick=args.quick,
        repeat=repeat,
        pin=args.pin,
        wall_seconds=round(time.monotonic() - t0, 1),
        loop_versions=_loop_versions(samples, runnable),
    )
    result = summarize(chosen, loops, samples, skipped, meta)
    print(report.format_header(meta), file=out)
    print("", file=out)
    print(report.format_table(result), file=out, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report.to_json(result), handle, indent=2, default=str)
            handle.write("\n")
    return 0 if result.ok else EXIT_FAILED
