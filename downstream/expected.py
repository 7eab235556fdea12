"""The expectation file: downstream tests allowed to pass on asyncio and fail on looplet.

Role: read `downstream/expected.txt`, whose lines are

    PROJECT TEST-ID  # REASON

and match them against a run's regressions. Only a test that inspects asyncio's private
internals belongs there (a looplet bug never does: it is reported and left failing).

Invariant owned here: every entry has a reason, names a known project, and is used:
an entry whose test passes on looplet (or no longer passes on asyncio, or was not run)
is reported as stale, and a stale entry fails the run as a regression does, so the file
stays minimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

EXPECTED_FILE: Final = Path(__file__).resolve().parent / "expected.txt"


@dataclass(frozen=True)
class Expectation:
    project: str
    nodeid: str
    reason: str
    line: int


def parse(text: str, known_projects: set[str]) -> list[Expectation]:
    """The entries of an expectation file; ValueError names the first bad line."""
    entries: list[Expectation] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body, sep, reason = line.partition(" # ")
        reason = reason.strip()
        if not sep or not reason:
            raise ValueError(f"line {number}: no ' # reason' after the test id: {raw!r}")
        project, _, nodeid = body.strip().partition(" ")
        nodeid = nodeid.strip()
        if project not in known_projects:
            raise ValueError(f"line {number}: unknown project {project!r}")
        if not nodeid:
            raise ValueError(f"line {number}: no test id: {raw!r}")
        if (project, nodeid) in seen:
            raise ValueError(f"line {number}: {project} {nodeid} is listed twice")
        seen.add((project, nodeid))
        entries.append(Expectation(project, nodeid, reason, number))
    return entries


def load(known_projects: set[str], path: Path = EXPECTED_FILE) -> list[Expectation]:
    return parse(path.read_text(encoding="utf-8"), known_projects) if path.exists() else []
