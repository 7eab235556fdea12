"""Expectation files: the behavioural tests a loop is known not to pass yet.

Role: read and write ``compat/expected/<major>.<minor>.txt`` and compare a
run against it, strictly in both directions.

File format: ``#`` comment lines, a ``# loop: NAME`` header line, then one
behavioural test id per line followed by `` # reason``.  New entries written
by ``--update-expected`` get a reason starting with :data:`PLACEHOLDER`, so
untriaged entries are easy to find.  A reason starting with :data:`RACE`
marks a test whose outcome under the loop depends on a race inside the test
itself (it checks private state that may or may not still exist when it
looks): it may pass or fail, and a pass is reported, not counted against.

Invariant owned here: ``--check`` passes only if every behavioural test that
failed is listed (or fails under stock asyncio too), every listed test that
ran did not pass, every listed test of a completed module still exists, and
every module ran to completion.  Anything else is reported and fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from compat import results, tiers

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
PLACEHOLDER = "TODO-triage:"
RACE = "race:"
_LOOP_RE = re.compile(r"^#\s*loop:\s*(\S+)\s*$")


@dataclass
class Expectations:
    loop: str | None = None
    entries: dict[str, str] = field(default_factory=dict)


def default_path(python_minor: str) -> Path:
    return EXPECTED_DIR / f"{python_minor}.txt"


def parse(text: str) -> Expectations:
    found = Expectations()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _LOOP_RE.match(line)
            if match:
                found.loop = match.group(1)
            continue
        test_id, sep, reason = line.partition("#")
        test_id = test_id.strip()
        if not sep or not reason.strip():
            raise ValueError(f"line {number}: {test_id!r} has no '# reason'")
        if " " in test_id or test_id.count(".") < 2:
            raise ValueError(f"line {number}: {test_id!r} is not a test id")
        if test_id in found.entries:
            raise ValueError(f"line {number}: {test_id!r} listed twice")
        found.entries[test_id] = reason.strip()
    return found


def read(path: Path) -> Expectations:
    if not path.exists():
        return Expectations()
    return parse(path.read_text(encoding="utf-8"))


def render(expectations: Expectations, python_minor: str) -> str:
    lines = [
        f"# Behavioural asyncio tests the loop does not pass yet on Python {python_minor}.",
        "# One test id per line, then ' # reason'. Checked strictly by",
        "# `python -m compat --check`; regenerate with --update-expected and",
        f"# replace every '{PLACEHOLDER}' reason after triage.",
        f"# loop: {expectations.loop}",
    ]
    width = max((len(tid) for tid in expectations.entries), default=0)
    lines.extend(
        f"{test_id.ljust(width)}  # {expectations.entries[test_id]}" for test_id in sorted(expectations.entries)
    )
    return "\n".join(lines) + "\n"


def _behavioural(run: results.RunResult) -> dict[str, results.ModuleResult]:
    return {name: module for name, module in run.modules.items() if module.tier == tiers.BEHAVIOURAL}


def update(run: results.RunResult, old: Expectations, environment: set[str]) -> Expectations:
    """Expectations after ``run``: keep old reasons, placeholders for new ids.

    Entries of modules this run did not cover (or did not finish) are kept;
    entries of finished modules are exactly the failing tests now.
    """
    modules = _behavioural(run)
    new = Expectations(loop=run.loop)
    for test_id, reason in old.entries.items():
        module = modules.get(test_id.split(".")[0])
        if module is None or (not module.complete and test_id not in module.tests):
            new.entries[test_id] = reason
    for module in modules.values():
        for test_id, record in module.tests.items():
            if results.is_fail(record.outcome) and test_id not in environment:
                new.entries[test_id] = old.entries.get(test_id, f"{PLACEHOLDER} {results.summary_line(record)}")
    return new


@dataclass
class CheckReport:
    new_failures: dict[str, str] = field(default_factory=dict)
    unexpected_passes: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    incomplete: dict[str, str] = field(default_factory=dict)
    environment: list[str] = field(default_factory=list)
    still_failing: int = 0
    listed_skipped: list[str] = field(default_factory=list)
    racy_passes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.new_failures or self.unexpected_passes or self.stale or self.incomplete)

    def lines(self) -> list[str]:
        out: list[str] = []

        def section(title: str, items: list[str]) -> None:
            if items:
                out.append(f"{title} ({len(items)}):")
                out.extend(f"  {item}" for item in items)

        section(
            "NEW FAILURES (not in the expectation file)",
            [f"{tid}  [{why}]" for tid, why in sorted(self.new_failures.items())],
        )
        section("UNEXPECTED PASSES (listed, but passed: remove them)", sorted(self.unexpected_passes))
        section("STALE ENTRIES (listed, but no such test ran in a finished module)", sorted(self.stale))
        section(
            "INCOMPLETE MODULES (results cannot be checked)",
            [f"{name}: {why}" for name, why in sorted(self.incomplete.items())],
        )
        section("environment failures (fail under stock asyncio too; not counted)", sorted(self.environment))
        section("listed tests that were skipped (not checked)", sorted(self.listed_skipped))
        section(f"listed as '{RACE}' and passed this time (not counted)", sorted(self.racy_passes))
        out.append(f"expected failures still failing: {self.still_failing}")
        out.append("CHECK " + ("PASSED" if self.ok else "FAILED"))
        return out


def check(run: results.RunResult, expected: Expectations, environment: set[str]) -> CheckReport:
    report = CheckReport()
    modules = _behavioural(run)
    for name, module in sorted(modules.items()):
        if not module.complete:
            first = module.detail.splitlines()[0] if module.detail else ""
            report.incomplete[name] = f"{module.status}: {first}".rstrip(": ")
        for test_id, record in module.tests.items():
            listed = test_id in expected.entries
            if test_id in environment and results.is_fail(record.outcome):
                report.environment.append(test_id)
                continue
            if results.is_fail(record.outcome):
                if listed:
                    report.still_failing += 1
                else:
                    report.new_failures[test_id] = results.summary_line(record)
            elif results.is_pass(record.outcome) and listed:
                if expected.entries[test_id].startswith(RACE):
                    report.racy_passes.append(test_id)
                else:
                    report.unexpected_passes.append(test_id)
            elif listed:
                report.listed_skipped.append(test_id)
    for test_id in expected.entries:
        found = modules.get(test_id.split(".")[0])
        if found is not None and found.complete and test_id not in found.tests:
            report.stale.append(test_id)
    return report
