"""Result data model of a compat run, and its JSON form.

Role: the types every other part exchanges (per-test, per-module, per-run
results), the outcome vocabulary, and loading/saving results as JSON, which
doubles as the cached baseline format.

Invariant owned here: an outcome is one of :data:`OUTCOMES` and belongs to
exactly one of :data:`PASSING`, :data:`FAILING` or skipped; everything that
counts or scores goes through :func:`is_pass` / :func:`is_fail`, so a
"pass" means the same thing in the table, the score and ``--check``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compat import variants

SCHEMA = 1

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"
EXPECTED_FAILURE = "expected-failure"
UNEXPECTED_SUCCESS = "unexpected-success"
TIMEOUT = "timeout"
CRASH = "crash"
OUTCOMES = (PASSED, FAILED, ERROR, SKIPPED, EXPECTED_FAILURE, UNEXPECTED_SUCCESS, TIMEOUT, CRASH)
# unittest's own verdict: an expected failure is success, an unexpected
# success is not.
PASSING = frozenset({PASSED, EXPECTED_FAILURE})
FAILING = frozenset({FAILED, ERROR, UNEXPECTED_SUCCESS, TIMEOUT, CRASH})

EXERCISED_LUT = "loop-under-test"
EXERCISED_OTHER = "other-loop"
EXERCISED_NONE = "no-loop"
# A test killed by the supervisor never reported which loops it ran.
EXERCISED_UNKNOWN = "unknown"

# Module statuses.
COMPLETED = "completed"
MODULE_SKIPPED = "skipped"
MODULE_TIMEOUT = "timeout"
MODULE_CRASH = "crash"
IMPORT_ERROR = "import-error"
INJECTION_FAILED = "injection-failed"


def is_pass(outcome: str) -> bool:
    return outcome in PASSING


def is_fail(outcome: str) -> bool:
    return outcome in FAILING


@dataclass
class TestRecord:
    outcome: str
    exercised: str = EXERCISED_NONE
    loops: list[str] = field(default_factory=list)
    duration: float = 0.0
    detail: str = ""


@dataclass
class ModuleResult:
    name: str
    tier: str
    status: str = COMPLETED
    duration: float = 0.0
    restarts: int = 0
    detail: str = ""
    reference: str | None = None
    planned: int = 0
    # The worker's startup injection check passed (see compat.inject).
    injected: bool = False
    tests: dict[str, TestRecord] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status in (COMPLETED, MODULE_SKIPPED)

    def count(self) -> dict[str, int]:
        counts = {name: 0 for name in OUTCOMES}
        exercised = 0
        for record in self.tests.values():
            counts[record.outcome] = counts.get(record.outcome, 0) + 1
            if record.exercised == EXERCISED_LUT:
                exercised += 1
        counts["run"] = len(self.tests)
        counts["exercised"] = exercised
        counts["not-run"] = max(0, self.planned - len(self.tests)) if not self.complete else 0
        return counts


@dataclass
class RunResult:
    python: str
    loop: str
    loop_type: str = ""
    structure: str = variants.STRUCTURE_STOCK
    tier: str = "behavioural"
    shims: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    modules: dict[str, ModuleResult] = field(default_factory=dict)

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def references(self) -> dict[str, str | None]:
        return {name: module.reference for name, module in self.modules.items()}

    def canonical(self, test_id: str) -> str | None:
        return variants.canonical_id(test_id, self.structure, self.references())

    def records(self, tier: str | None = None) -> dict[str, tuple[str, TestRecord]]:
        """test id -> (module, record), optionally for one tier only."""
        out: dict[str, tuple[str, TestRecord]] = {}
        for name, module in self.modules.items():
            if tier is not None and module.tier != tier:
                continue
            for test_id, record in module.tests.items():
                out[test_id] = (name, record)
        return out


def to_json(run: RunResult) -> dict[str, Any]:
    data = asdict(run)
    data["schema"] = SCHEMA
    return data


def from_json(data: dict[str, Any]) -> RunResult:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"unsupported compat results schema {data.get('schema')!r}")
    modules = {}
    for name, raw in data["modules"].items():
        tests = {tid: TestRecord(**rec) for tid, rec in raw.pop("tests").items()}
        modules[name] = ModuleResult(tests=tests, **raw)
    fields = {k: v for k, v in data.items() if k not in ("modules", "schema")}
    return RunResult(modules=modules, **fields)


def save(run: RunResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(run), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load(path: str | Path) -> RunResult:
    return from_json(json.loads(Path(path).read_text(encoding="utf-8")))


_TRACE_FRAME_RE = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')


def _hang_site(detail: str) -> str:
    """Innermost frame of the thread running the test, from faulthandler."""
    for block in detail.split("\n\n"):
        if "_callTestMethod" not in block:
            continue
        match = _FRAME_RE.search(block)
        if match:
            path, line, func = match.groups()
            return f"{path.rsplit('/', 1)[-1]}:{line} in {func}"
    return ""


def summary_line(record: TestRecord) -> str:
    """One line saying why a test did not pass (for reasons and reports)."""
    if record.outcome in (TIMEOUT, CRASH):
        what = "timed out" if record.outcome == TIMEOUT else "worker crashed"
        where = _hang_site(record.detail)
        return f"{what} at {where}" if where else what
    if record.outcome == UNEXPECTED_SUCCESS:
        return "unexpected success"
    lines = [line.strip() for line in record.detail.splitlines() if line.strip()]
    # The exception line of a traceback is its last line not starting with
    # "File"/"^" decoration; unittest puts it last.
    frames = _TRACE_FRAME_RE.findall(record.detail)
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~", "...")):
            if ":" not in line and frames:
                # A bare exception name says little; name where it was raised.
                path, func = frames[-1]
                line = f"{line} in {path.rsplit('/', 1)[-1]}:{func}"
            return line[:120]
    return record.outcome
