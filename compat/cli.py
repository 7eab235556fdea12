"""Command line of the compat runner: ``python -m compat --loop NAME``.

Role: parse options, choose the test modules, run them (and the stock
asyncio baseline when asked or needed), print the tables and score, write
JSON, and apply ``--check`` / ``--update-expected``.

Invariant owned here: the exit status is non-zero whenever the run cannot be
trusted or does not match expectations: 3 if the injection check failed in
any worker (the loop under test may not be what ran), 1 if ``--check`` found
an unexpected result, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from compat import expected, report, results, score, supervisor, tiers, variants

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INJECTION = 3
RUN_BASELINE = "run"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compat", description="Run CPython's own asyncio test suite against an event loop."
    )
    parser.add_argument(
        "--loop",
        default="looplet",
        help="importable module with new_event_loop() (looplet, uvloop, asyncio, ...); default looplet",
    )
    parser.add_argument("--tier", default=tiers.BEHAVIOURAL, choices=[*tiers.TIERS, "all"])
    parser.add_argument(
        "--modules", default="", help="comma-separated test modules, e.g. test_tasks,test_futures (overrides --tier)"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test module (default 600)")
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=60.0,
        help="seconds without progress before a test counts as hung; the module then resumes after it (default 60)",
    )
    parser.add_argument(
        "--memory-limit",
        type=int,
        default=4096,
        metavar="MIB",
        help="address-space limit of each worker in MiB (default 4096, 0: none)",
    )
    parser.add_argument("--json", metavar="PATH", help="write results as JSON")
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="do not run tests: report/check/update from a saved --json run of --loop",
    )
    parser.add_argument(
        "--baseline",
        nargs="?",
        const=RUN_BASELINE,
        metavar="JSON",
        help="score against stock asyncio: run it now (no value) or load a cached `--loop asyncio --json` file",
    )
    parser.add_argument("--save-baseline", metavar="PATH", help="write the baseline run's JSON here")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the expectation file; exit 1 on any unexpected result (runs the baseline if none given)",
    )
    parser.add_argument("--update-expected", action="store_true", help="rewrite the expectation file from this run")
    parser.add_argument("--expected", metavar="PATH", help="expectation file (default compat/expected/<X.Y>.txt)")
    parser.add_argument(
        "--show-failures", type=int, default=40, metavar="N", help="list at most N failing tests (0: none)"
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="keep worker logs and streams in DIR")
    return parser


def select_modules(tier: str, requested: str) -> list[str]:
    available = tiers.installed_modules()
    if not requested:
        return tiers.modules_for(tier, available)
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise SystemExit(f"compat: no such module in test.test_asyncio: {unknown}")
    # Named modules run whatever their tier; each is still scored in its own.
    return names


def execute(loop: str, modules: list[str], args: argparse.Namespace, workdir: Path, tier: str) -> results.RunResult:
    limits = supervisor.Limits(
        module_timeout=args.timeout, test_timeout=args.test_timeout, memory_limit_mib=args.memory_limit
    )
    total = len(modules)
    finished = 0

    def progress(module: results.ModuleResult) -> None:
        nonlocal finished
        finished += 1
        counts = module.count()
        print(
            f"[{loop} {finished}/{total}] {module.name}: {module.status}, "
            f"{counts['run']} run, {counts['passed'] + counts['expected-failure']} "
            f"passed ({module.duration:.1f}s)",
            file=sys.stderr,
            flush=True,
        )

    started = time.monotonic()
    modules_done, header = supervisor.run_modules(
        sys.executable,
        loop,
        modules,
        jobs=args.jobs,
        limits=limits,
        workdir=workdir / loop.replace(".", "_"),
        progress=progress,
    )
    return results.RunResult(
        python=header.get("python", sys.version.split()[0]),
        loop=loop,
        loop_type=header.get("loop_type", ""),
        structure=header.get(
            "structure", variants.STRUCTURE_STOCK if loop == "asyncio" else variants.STRUCTURE_LOOP_UNDER_TEST
        ),
        tier=tier,
        shims=header.get("shims", []),
        check=header.get("check", {}),
        duration=round(time.monotonic() - started, 2),
        modules=modules_done,
    )


def injection_failures(run: results.RunResult) -> list[str]:
    return [
        f"{name}: {module.detail}"
        for name, module in sorted(run.modules.items())
        if module.status == results.INJECTION_FAILED
    ]


def load_baseline(path: str) -> results.RunResult:
    try:
        baseline = results.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"compat: cannot read baseline {path}: {exc}") from exc
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if baseline.loop != "asyncio":
        raise SystemExit(f"compat: baseline {path} is a run of {baseline.loop!r}, not asyncio")
    if baseline.python_minor != here:
        raise SystemExit(f"compat: baseline {path} is from Python {baseline.python}, this is {here}")
    return baseline


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modules = select_modules(args.tier, args.modules)
    if not modules:
        print("compat: no test modules selected", file=sys.stderr)
        return EXIT_USAGE
    workdir = Path(args.keep_logs) if args.keep_logs else Path(tempfile.mkdtemp(prefix="compat-"))
    try:
        return _main(args, modules, workdir)
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


def _main(args: argparse.Namespace, modules: list[str], workdir: Path) -> int:
    if args.from_json:
        run = results.load(args.from_json)
        if run.loop != args.loop or run.python_minor != f"{sys.version_info.major}.{sys.version_info.minor}":
            print(f"compat: {args.from_json} is a {run.loop} run on Python {run.python}", file=sys.stderr)
            return EXIT_USAGE
        run.modules = {name: module for name, module in run.modules.items() if name in modules}
    else:
        run = execute(args.loop, modules, args, workdir, args.tier)
    broken = injection_failures(run)
    if broken:
        print(
            "\n".join(
                ["", "=" * 72, f"INJECTION CHECK FAILED: results below do NOT measure {args.loop!r}", *broken, "=" * 72]
            ),
            file=sys.stderr,
        )
    baseline: results.RunResult | None = None
    wants_baseline = args.baseline or args.check or args.update_expected
    if args.loop == "asyncio" and wants_baseline and args.baseline in (None, RUN_BASELINE):
        baseline = run
    elif args.baseline not in (None, RUN_BASELINE):
        baseline = load_baseline(args.baseline)
    elif wants_baseline:
        print("compat: running the stock asyncio baseline", file=sys.stderr)
        baseline = execute("asyncio", modules, args, workdir, args.tier)
    if args.save_baseline and baseline is not None:
        results.save(baseline, args.save_baseline)

    print("\n".join(report.table(run)))
    if baseline is not None:
        print()
        print("\n".join(report.score_lines(run, baseline)))
    if args.show_failures:
        lines = report.failures(run, args.show_failures)
        if lines:
            print(f"\nfailing tests under {args.loop}:")
            print("\n".join(lines))
    if args.json:
        results.save(run, args.json)
    if broken:
        return EXIT_INJECTION
    return _expectations(args, run, baseline)


def _expectations(args: argparse.Namespace, run: results.RunResult, baseline: results.RunResult | None) -> int:
    if not (args.check or args.update_expected):
        return 0
    path = Path(args.expected) if args.expected else expected.default_path(run.python_minor)
    current = expected.read(path)
    if current.loop not in (None, run.loop) and not args.expected:
        print(
            f"compat: {path} holds expectations for {current.loop!r}, not {run.loop!r}; pass --expected PATH",
            file=sys.stderr,
        )
        return EXIT_USAGE
    environment = score.environment_failures(run, baseline)
    if args.update_expected:
        updated = expected.update(run, current, environment)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected.render(updated, run.python_minor), encoding="utf-8")
        todo = sum(1 for r in updated.entries.values() if r.startswith(expected.PLACEHOLDER))
        print(f"\nwrote {path}: {len(updated.entries)} entries, {todo} awaiting triage")
        current = updated
    if args.check:
        outcome = expected.check(run, current, environment)
        print(f"\ncheck against {path}:")
        print("\n".join(outcome.lines()))
        if baseline is None:
            print("note: no baseline, environment failures are counted as the loop's")
        return 0 if outcome.ok else EXIT_CHECK_FAILED
    return 0
