"""`python -m benchmarks.trace_cost` runs and reports what the README quotes from it."""

from __future__ import annotations

import re

import pytest

from benchmarks import trace_cost


def test_trace_cost_reports_events_bytes_and_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_cost.main(["--steps", "500"]) == 0
    out = capsys.readouterr().out
    match = re.fullmatch(r"(\d+) events, (\d+) bytes each while recording, written in ([0-9.]+) s\n", out)
    assert match, out
    assert int(match.group(1)) > 500 and int(match.group(2)) > 0
