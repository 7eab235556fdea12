"""The two faces of a `Report`: a Markdown table for people, JSON for programs.

Role: formatting only; every number shown comes from `results`. The table has one
row per workload: each loop's median (with the spread of its samples) and the ratio
of each loop to stock asyncio and to uvloop. Failures and skipped loops are named
under it with their reasons.

Invariant owned here: the JSON holds everything the table shows plus every sample,
so a table can always be rebuilt (and checked) from the JSON of the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.results import FAILED, OK, UNSUPPORTED, Cell, Report, ratio, ratio_pairs

# Error text in the list under the table: enough to recognise the failure; the full
# text and traceback are in the JSON.
ERROR_LINES: int = 3
ERROR_LINE_CHARS: int = 200


def format_value(value: float) -> str:
    """Three significant digits with an SI suffix: 1234567 -> '1.23M', 412.3 -> '412'."""
    rounded = float(f"{value:.3g}")
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g}{suffix}"
    return f"{rounded:.3g}"


def format_cell(cell: Cell) -> str:
    if cell.status == FAILED:
        return "FAILED"
    if cell.status == UNSUPPORTED:
        return "unsupported"
    if cell.status != OK or cell.median is None:
        return "skipped"
    text = format_value(cell.median)
    if cell.spread is not None and len(cell.values) > 1:
        text += f" ±{cell.spread * 100:.0f}%"
    return text


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def summarize_error(error: str) -> str:
    """The first line, and the last ones when the error carries a client's traceback."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if len(lines) > ERROR_LINES:
        lines = [lines[0], "...", *lines[-(ERROR_LINES - 1) :]]
    return " | ".join(line[:ERROR_LINE_CHARS] for line in lines)


def _markdown(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return [line(header), line(rule), *map(line, rows)]


def format_table(report: Report) -> str:
    pairs = ratio_pairs([loop for loop in report.loops if loop not in report.skipped])
    header = ["workload", "unit", *report.loops, *(f"{a}/{b}" for a, b in pairs)]
    rows = []
    for workload in report.workloads:
        cells = [report.cell(workload.name, loop) for loop in report.loops]
        ratios = [ratio(report.cell(workload.name, a), report.cell(workload.name, b)) for a, b in pairs]
        rows.append([workload.name, workload.unit, *map(format_cell, cells), *map(format_ratio, ratios)])
    lines = _markdown(header, rows, right=set(range(2, len(header))))
    lines += [
        "",
        "Median of the repetitions, ± half their range; a ratio is one loop's median over the other's.",
        "ops/s, req/s and MiB/s: higher is better;"
        " B/task, B/conn (memory), ms (latency) and us/req (CPU): lower is better.",
    ]
    own_pin = {w.name: w.pin for w in report.workloads if w.pin and not w.metric_of}
    for mode in sorted(set(own_pin.values())):
        names = ", ".join(name for name, pin in own_pin.items() if pin == mode)
        lines.append(f"{names}: always --pin {mode}, whatever the run's --pin.")
    for loop, reason in report.skipped.items():
        lines.append(f"skipped: {loop} ({reason})")
    failures = report.failures()
    if failures:
        lines.append("")
        lines.append(f"FAILED ({len(failures)}):")
        lines += [f"- {name} on {loop}: {summarize_error(error)}" for name, loop, error in failures]
    return "\n".join(lines)


def format_header(meta: dict[str, Any], run: Sequence[str] | None = None) -> str:
    """One line naming the run: when, where, on what, how (``run``: the run's own settings).

    The benchmark table's settings (repetitions, pinning) are the default; the stress
    run passes its own.
    """
    if run is None:
        run = [
            f"{meta.get('repeat', '?')} repetition(s)" + (", quick" if meta.get("quick") else ""),
            f"--pin {meta.get('pin', '?')}",
        ]
    parts = [
        meta.get("date", "?"),
        f"Python {meta.get('python', '?')}",
        f"{meta.get('nproc', '?')} x {meta.get('cpu', '?')}",
        f"Linux {meta.get('kernel', '?')}",
        *run,
    ]
    versions = meta.get("loop_versions") or {}
    if versions:
        parts.append(", ".join(f"{name} {version}" for name, version in versions.items()))
    source = meta.get("source") or {}
    if source:
        parts.append(
            f"commit {source['commit'][:10]}" + (" + local changes to looplet/" if source["looplet_modified"] else "")
        )
    return " | ".join(str(p) for p in parts)


def to_json(report: Report) -> dict[str, Any]:
    quick = bool(report.meta.get("quick"))
    pairs = ratio_pairs([loop for loop in report.loops if loop not in report.skipped])
    workloads = []
    for w in report.workloads:
        results = {}
        for loop in report.loops:
            cell = report.cell(w.name, loop)
            results[loop] = {
                "status": cell.status,
                "median": cell.median,
                "spread": cell.spread,
                "samples": list(cell.values),
                "error": cell.error,
                "details": cell.details,
            }
        workloads.append(
            {
                "name": w.name,
                "area": w.area,
                "unit": w.unit,
                "higher_is_better": w.higher_is_better,
                "n": w.size(quick),
                "params": dict(w.params),
                "metric_of": w.metric_of,
                "results": results,
                "ratios": {f"{a}/{b}": ratio(report.cell(w.name, a), report.cell(w.name, b)) for a, b in pairs},
            }
        )
    return {
        "meta": report.meta,
        "loops": report.loops,
        "skipped": report.skipped,
        "workloads": workloads,
        "failures": [{"workload": n, "loop": loop, "error": e} for n, loop, e in report.failures()],
        "ok": report.ok,
    }
