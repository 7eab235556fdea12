"""Reading a run's results and comparing the two loops.

Role: turn the JSON-lines file that downstream/plugin.py wrote for one pytest run into
a `RunResult`, check that the run ran on the loop it was meant to (the swap
verification), and compute, for one project, the tests that pass on asyncio but not on
looplet.

Invariant owned here: a test counts as passing on looplet only if the looplet run
reported it passed; a test missing from the looplet run (a crash, a kill, a
collection difference) is a regression like a failure, never a silent pass.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("passed", "failed", "skipped")


@dataclass
class TestResult:
    nodeid: str
    outcome: str
    message: str
    duration: float
    #: The class of the loop the test's coroutine ran on (`module.qualname`), or None
    #: for a test that has no coroutine of its own (sync tests, unittest cases).
    loop: str | None


@dataclass
class RunResult:
    loop: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    start: dict[str, object] = field(default_factory=dict)
    #: pytest's exit status, or None when the session never finished (killed).
    exitstatus: int | None = None

    def counts(self) -> Counter[str]:
        return Counter(t.outcome for t in self.tests.values())

    def passed(self) -> set[str]:
        return {n for n, t in self.tests.items() if t.outcome == "passed"}


def read_run(path: Path, loop: str) -> RunResult:
    run = RunResult(loop=loop)
    if not path.exists():
        return run
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            # The last line of a killed run may be cut short: it is no result.
            continue
        kind = record.get("kind")
        if kind == "start":
            run.start = record
        elif kind == "test":
            run.tests[record["nodeid"]] = TestResult(
                nodeid=record["nodeid"],
                outcome=record["outcome"],
                message=record.get("message", ""),
                duration=float(record.get("duration", 0.0)),
                loop=record.get("loop"),
            )
        elif kind == "done":
            run.exitstatus = int(record["exitstatus"])
    return run


def is_looplet_loop(name: str) -> bool:
    # looplet's loop class is looplet.loop.EventLoop; a subclass elsewhere in looplet
    # would be looplet's too.
    return name.split(".", 1)[0] == "looplet"


def is_asyncio_loop(name: str) -> bool:
    # asyncio's own loop classes live in asyncio's modules (unix_events on Linux).
    return name.split(".", 1)[0] == "asyncio"


def swap_problems(run: RunResult, venv_prefix: str, repo_looplet: Path) -> list[str]:
    """What says that `run` did not test what it should: empty means the swap held."""
    problems: list[str] = []
    if not run.start:
        return ["the run wrote no start record (pytest did not load downstream.plugin?)"]
    origin = run.start.get("module_origin")
    if not isinstance(origin, str) or not Path(origin).resolve().is_relative_to(Path(venv_prefix).resolve()):
        problems.append(f"{run.start.get('module')} was imported from {origin}, not from the venv {venv_prefix}")
    if run.loop == "looplet":
        looplet_file = run.start.get("looplet_file")
        if not isinstance(looplet_file, str) or not Path(looplet_file).resolve().is_relative_to(repo_looplet):
            problems.append(f"looplet was imported from {looplet_file}, not from {repo_looplet}")
    accept = is_looplet_loop if run.loop == "looplet" else is_asyncio_loop
    seen = [t for t in run.tests.values() if t.loop is not None]
    if not seen:
        problems.append("no test recorded the loop it ran on: the swap is unverified")
    wrong = [t for t in seen if not accept(t.loop or "")]
    if wrong:
        kinds = Counter(t.loop for t in wrong)
        listed = ", ".join(f"{n} x{c}" for n, c in kinds.most_common())
        problems.append(
            f"{len(wrong)} test(s) ran on a loop other than {run.loop}'s ({listed}), e.g. {wrong[0].nodeid}"
        )
    return problems


def regressions(asyncio_run: RunResult, looplet_run: RunResult) -> list[str]:
    """Tests that passed on asyncio and did not pass on looplet, in asyncio's order."""
    return [n for n in asyncio_run.tests if asyncio_run.tests[n].outcome == "passed" and not _passed(looplet_run, n)]


def _passed(run: RunResult, nodeid: str) -> bool:
    test = run.tests.get(nodeid)
    return test is not None and test.outcome == "passed"
