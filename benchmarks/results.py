"""From samples to results: medians, spreads, ratios, and which loops are comparable.

Role: the arithmetic of the harness, kept free of processes and printing so it can be
tested on made-up samples. A ``Sample`` is one measurement (one worker process); a
``Cell`` is one workload on one loop over all repetitions; a ``Report`` is the grid.

Invariant owned here: a cell is ``ok`` only if every measurement of it succeeded, and
a ratio exists only between two ``ok`` cells; a failure is never averaged away. A
workload's further metrics (p99 latency beside requests/s) become rows of their own,
read from the details of the very samples of the workload's row, so both rows of a
loop have the same status and come from the same measurements.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.registry import Metric, Workload, metric_rows

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
#: the loop does not implement the API the workload measures (uvloop's loop.sendfile)
UNSUPPORTED = "unsupported"
# The loops every other loop is compared with, in this order; a pair of baselines is
# shown once (uvloop/asyncio, not also asyncio/uvloop).
BASELINES: tuple[str, ...] = ("asyncio", "uvloop")


@dataclass(frozen=True)
class Sample:
    """One measurement: one workload, one loop, one fresh worker process."""

    workload: str
    loop: str
    repetition: int
    value: float | None = None
    #: why the measurement failed (None: it did not)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: the loop lacks the API measured: an `error` that is not a failure
    unsupported: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Cell:
    """One workload on one loop, over every repetition."""

    status: str
    values: tuple[float, ...] = ()
    #: the first failure, or why the loop was skipped
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.status == OK and self.values else None

    @property
    def spread(self) -> float | None:
        """Half the range of the samples, relative to the median (0.05: ±5%)."""
        median = self.median
        if median is None or median == 0:
            return None
        return (max(self.values) - min(self.values)) / 2 / abs(median)


def ratio(cell: Cell, baseline: Cell) -> float | None:
    """``cell``'s median over ``baseline``'s, when both are ok."""
    a, b = cell.median, baseline.median
    return None if a is None or b is None or b == 0 else a / b


def ratio_pairs(loops: Sequence[str]) -> list[tuple[str, str]]:
    """(loop, baseline) pairs to show: every loop against each baseline present."""
    pairs = []
    for rank, base in enumerate(BASELINES):
        if base not in loops:
            continue
        for loop in loops:
            if loop == base or loop in BASELINES[:rank]:
                continue
            pairs.append((loop, base))
    return pairs


def check_loop_classes(loop: str, classes: Iterable[str]) -> str | None:
    """Why the loops that ran are not ``loop``'s (None: they are).

    A loop module's loops are classes of that module's package (``looplet.loop.EventLoop``,
    ``uvloop.Loop``, ``asyncio.unix_events._UnixSelectorEventLoop``).
    """
    classes = sorted(classes)
    if not classes:
        return "no event loop ran the workload"
    root = loop.split(".")[0]
    wrong = [c for c in classes if c.split(".")[0] != root]
    if wrong:
        return f"ran on {', '.join(wrong)}, not on a {loop} loop"
    return None


def summarize_cell(samples: Sequence[Sample]) -> Cell:
    unsupported = [s for s in samples if s.unsupported]
    if unsupported:
        return Cell(UNSUPPORTED, (), unsupported[0].error, unsupported[0].details)
    failures = [s for s in samples if not s.ok]
    values = tuple(s.value for s in samples if s.ok and s.value is not None)
    if failures:
        return Cell(FAILED, values, failures[0].error, failures[0].details)
    if not values:
        return Cell(SKIPPED, error="not measured")
    return Cell(OK, values, None, samples[-1].details)


@dataclass
class Report:
    """The grid: workloads x loops, in the order they were asked for."""

    workloads: list[Workload]
    loops: list[str]
    cells: dict[tuple[str, str], Cell]
    #: loop -> why it was not run
    skipped: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)

    def cell(self, workload: str, loop: str) -> Cell:
        return self.cells[workload, loop]

    def failures(self) -> list[tuple[str, str, str]]:
        """(workload, loop, error) of every failed cell, in table order.

        A metric row whose workload's row failed is not listed again: its error is that one.
        """
        return [
            (w.name, loop, cell.error or "")
            for w in self.workloads
            for loop in self.loops
            if (cell := self.cells[w.name, loop]).status == FAILED
            and not (w.metric_of and self.cells[w.metric_of, loop].status == FAILED)
        ]

    @property
    def ok(self) -> bool:
        return not self.failures()


def metric_sample(sample: Sample, metric: Metric, row: str) -> Sample:
    """``sample`` as a sample of its workload's ``metric`` row (named ``row``)."""
    if not sample.ok:
        return Sample(row, sample.loop, sample.repetition, error=sample.error, unsupported=sample.unsupported)
    value = sample.details.get(metric.key)
    if not isinstance(value, int | float):
        error = f"the measurement reported no {metric.key!r}"
        return Sample(row, sample.loop, sample.repetition, error=error, details=sample.details)
    return Sample(row, sample.loop, sample.repetition, value=float(value), details=sample.details)


def with_metric_rows(workloads: Sequence[Workload], samples: Iterable[Sample]) -> tuple[list[Workload], list[Sample]]:
    """Every workload followed by its metric rows; the samples with those rows' samples."""
    samples = list(samples)
    rows: list[Workload] = []
    extra: list[Sample] = []
    for workload in workloads:
        rows.append(workload)
        for metric, row in zip(workload.metrics, metric_rows(workload), strict=True):
            rows.append(row)
            extra += [metric_sample(s, metric, row.name) for s in samples if s.workload == workload.name]
    return rows, samples + extra


def summarize(
    workloads: Sequence[Workload],
    loops: Sequence[str],
    samples: Iterable[Sample],
    skipped: dict[str, str],
    meta: dict[str, Any] | None = None,
) -> Report:
    workloads, samples = with_metric_rows(workloads, samples)
    by_cell: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        by_cell.setdefault((sample.workload, sample.loop), []).append(sample)
    cells = {}
    for workload in workloads:
        for loop in loops:
            if loop in skipped:
                cells[workload.name, loop] = Cell(SKIPPED, error=skipped[loop])
            else:
                cells[workload.name, loop] = summarize_cell(by_cell.get((workload.name, loop), []))
    return Report(list(workloads), list(loops), cells, dict(skipped), dict(meta or {}))
