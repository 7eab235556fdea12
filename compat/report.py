"""Human-readable tables of a compat run.

Role: format per-module counts, per-tier totals and scores as text.  Pure
formatting: it decides nothing, so the table and the JSON can never
disagree about what passed.

Invariant owned here: every column is derived from
:meth:`compat.results.ModuleResult.count`, and totals are sums of the rows
shown, per tier.
"""

from __future__ import annotations

from compat import results, score, tiers

COLUMNS = (
    ("run", "run"),
    ("pass", "passed"),
    ("fail", "failed"),
    ("err", "error"),
    ("skip", "skipped"),
    ("xfail", "expected-failure"),
    ("xpass", "unexpected-success"),
    ("t/o", "timeout"),
    ("crash", "crash"),
    ("lut", "exercised"),
)


def _row(label: str, counts: dict[str, int], status: str, seconds: float) -> str:
    cells = "".join(f"{counts.get(key, 0):>7}" for _, key in COLUMNS)
    return f"{label:<28}{cells}  {seconds:>7.1f}s  {status}"


def _header() -> str:
    cells = "".join(f"{title:>7}" for title, _ in COLUMNS)
    return f"{'module':<28}{cells}  {'time':>8}  status"


def table(run: results.RunResult) -> list[str]:
    lines = [
        f"loop {run.loop} ({run.loop_type or '?'}), Python {run.python}, "
        f"structure {run.structure}, wall {run.duration:.1f}s",
        "lut = tests during which the loop under test actually ran",
    ]
    injected = sum(1 for module in run.modules.values() if module.injected)
    lines.append(f"injection check passed in {injected} of {len(run.modules)} module workers")
    if run.check:
        lines.append(
            f"  asyncio.run() ran {run.check.get('asyncio.run()', '?')}; "
            f"running-loop hook: {run.check.get('running-loop hook', '?')}; "
            f"signal state after check: {run.check.get('signal state after check', '?')}"
        )
    lines.extend(f"shim: {shim}" for shim in run.shims)
    for tier in tiers.TIERS:
        modules = [m for m in run.modules.values() if m.tier == tier]
        if not modules:
            continue
        lines.append("")
        lines.append(f"[{tier}]")
        lines.append(_header())
        total: dict[str, int] = {}
        seconds = 0.0
        for module in sorted(modules, key=lambda m: m.name):
            counts = module.count()
            status = module.status
            if module.restarts:
                status += f" (restarts: {module.restarts})"
            if counts["not-run"]:
                status += f" (not run: {counts['not-run']})"
            lines.append(_row(module.name, counts, status, module.duration))
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
            seconds += module.duration
        incomplete = sum(1 for m in modules if not m.complete)
        lines.append(_row(f"TOTAL {tier}", total, f"{incomplete} module(s) incomplete" if incomplete else "", seconds))
    return lines


def score_lines(run: results.RunResult, baseline: results.RunResult) -> list[str]:
    lines = [f"score vs stock asyncio (Python {baseline.python}, baseline wall {baseline.duration:.1f}s):"]
    for tier in tiers.TIERS:
        if not any(m.tier == tier for m in run.modules.values()):
            continue
        result = score.score(run, baseline, tier)
        lines.append(
            f"  {tier:<15} {result.loop_passed}/{result.baseline_passed} "
            f"= {100 * result.ratio:.1f}%   (fail under stock asyncio too: "
            f"{len(result.environment)}, pass only under {run.loop}: "
            f"{len(result.loop_only)}, not run: {len(result.missing)})"
        )
        lines.extend(f"    environment: {test_id}" for test_id in result.environment)
    return lines


def failures(run: results.RunResult, limit: int = 0) -> list[str]:
    lines: list[str] = []
    for test_id, (_, record) in sorted(run.records().items()):
        if results.is_fail(record.outcome):
            lines.append(f"  {record.outcome:<8} {test_id}: {results.summary_line(record)}")
    if limit and len(lines) > limit:
        lines = [*lines[:limit], f"  ... and {len(lines) - limit} more (see --json)"]
    return lines
