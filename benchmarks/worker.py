"""One measurement in a fresh process: ``python -m benchmarks.worker --loop NAME ...``.

Role: import the loop module, run one workload on loops made by its
``new_event_loop()``, and write one JSON result: the value, or the error with its
traceback, and in both cases the classes of the loops that actually ran. The harness
starts one worker per measurement; ``--workload NAME`` is there for running one by
hand (``python -m benchmarks.worker --loop looplet --workload timers``).

Invariant owned here: the worker always writes a result, ``ok`` or ``failed``, unless
the process itself dies (the harness then reports the exit status and stderr); the
exit status is 0 exactly when the result is ``ok``.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import inspect
import json
import os
import platform
import resource
import sys
import traceback
from asyncio import events
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# LOOPLET_BENCH_INSTALLED=1: measure the installed looplet (a compiled wheel, say), not
# the source tree the harness puts first on PYTHONPATH; this package stays importable.
if os.environ.get("LOOPLET_BENCH_INSTALLED") == "1":
    _REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _REPO] + [_REPO]

from benchmarks.workloads import base
from benchmarks.workloads.base import Context, Measurement


def loop_version(name: str, module: Any) -> str:
    if name == "asyncio":
        return platform.python_version()
    try:
        # looplet is distributed as looplet-asyncio (`looplet` on PyPI is another project).
        version = metadata.version("looplet-asyncio" if name == "looplet" else name)
    except metadata.PackageNotFoundError:
        version = str(getattr(module, "__version__", "?"))
    # looplet may run compiled (mypyc) or pure: two very different loops, one version.
    compiled = getattr(module, "COMPILED", None)
    if isinstance(compiled, bool):
        version += " (compiled)" if compiled else " (pure)"
    return version


def resolve(target: str) -> Callable[..., Any]:
    module, _, function = target.partition(":")
    resolved: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return resolved


def describe(exc: BaseException) -> str:
    """``Type: message``; for a bare exception (``NotImplementedError()``), where it came from."""
    if str(exc):
        return f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (raised in {frames[-1].name}, {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}{where}"


UNSUPPORTED = "unsupported"


def _raised_by_abstract_loop(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename == events.__file__ and frames[-1].name != "<module>"


def rusage() -> dict[str, int]:
    """This process's page faults so far (every thread; children are not included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"minflt": usage.ru_minflt, "majflt": usage.ru_majflt}


def measure(loop: str, target: str, n: int, params: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Run the workload; the result as the harness reads it."""
    ctx: Context | None = None
    try:
        module = importlib.import_module(loop)
        ctx = Context(module.new_event_loop, quick)
        function = resolve(target)
        context = ctx
        if inspect.iscoroutinefunction(function):
            result = ctx.run(lambda: function(context, n, **params))
        else:
            result = function(ctx, n, **params)
        if not isinstance(result, Measurement):
            raise TypeError(f"{target} returned {result!r}, not a Measurement")
        return {
            "status": "ok",
            "value": result.value,
            "amount": result.amount,
            "seconds": result.seconds,
            "details": result.details,
            "loop_classes": sorted(ctx.loop_classes),
            "loop_errors": ctx.loop_errors,
            "loop_version": loop_version(loop, module),
            # Whole-process counts, start-up included: a tool that runs n and 2n
            # operations (benchmarks.syscalls) takes the difference.
            "rusage": rusage(),
        }
    except base.Unsupported as exc:
        # The workload measures a feature this loop does not have (looplet's tools).
        return {"status": UNSUPPORTED, "error": describe(exc), "loop_classes": sorted(ctx.loop_classes) if ctx else []}
    except NotImplementedError as exc:
        if not _raised_by_abstract_loop(exc):
            raise
        # The loop does not implement this API at all (AbstractEventLoop's default body):
        # nothing to measure, and not a failure of the loop.
        return {"status": UNSUPPORTED, "error": describe(exc), "loop_classes": sorted(ctx.loop_classes) if ctx else []}
    except Exception as exc:
        error = describe(exc)
        if ctx and ctx.loop_errors:
            error += "\nloop exception handler: " + "\nloop exception handler: ".join(ctx.loop_errors)
        return {
            "status": "failed",
            "error": error,
            "traceback": traceback.format_exc(),
            "loop_classes": sorted(ctx.loop_classes) if ctx else [],
        }


def parse_cpus(text: str) -> set[int]:
    return {int(cpu) for cpu in text.split(",") if cpu.strip()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--loop", required=True, help="module with new_event_loop(): looplet, asyncio, uvloop, ...")
    parser.add_argument("--workload", help="a registered workload (sets --target, --n and --params)")
    parser.add_argument("--target", help="module:function of the workload")
    parser.add_argument("--n", type=int, help="amount of work")
    parser.add_argument("--params", default="{}", help="keyword arguments of the workload, as JSON")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    parser.add_argument("--cpus", help="pin the worker (and what it starts) to these CPUs, e.g. 0 or 0,1")
    parser.add_argument("--client-cpus", help="pin the client processes to these CPUs")
    parser.add_argument(
        "--timeout", type=float, default=0, help="dump every thread's stack and exit after this many seconds (0: never)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workload:
        from benchmarks.registry import BY_NAME

        if args.workload not in BY_NAME:
            parser.error(f"unknown workload {args.workload!r}")
        workload = BY_NAME[args.workload]
        target, n, params = workload.target, workload.size(args.quick), dict(workload.params)
    elif args.target and args.n is not None:
        target, n, params = args.target, args.n, json.loads(args.params)
    else:
        parser.error("give --workload, or --target and --n")
    if args.cpus:
        os.sched_setaffinity(0, parse_cpus(args.cpus))
    if args.client_cpus:
        base.CLIENT_CPUS = parse_cpus(args.client_cpus)
    if args.timeout > 0:
        # A hang shows where it hangs: the harness puts this stderr in the failure.
        faulthandler.dump_traceback_later(args.timeout, exit=True)
    result = measure(args.loop, target, n, params, args.quick)
    text = json.dumps(result, default=str)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    else:
        print(text)
    sys.stdout.flush()
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
